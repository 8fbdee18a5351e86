//! Reports over the stored day aggregates (counter maps, see [`crate::records::counter`]):
//! NPS per day or ISO week, and NPS drivers over a date range. Pure: the caller reads
//! the day items by key and passes their summed counters.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::nps::{drivers_from_counts, DriverReport, NpsCounts};
use crate::records::counter;

pub type Counters = BTreeMap<String, i64>;

crate::keyword_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "snake_case")]
    pub enum Granularity ("granularity") {
        Day = "day",
        Week = "week",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NpsPoint {
    /// The day, or the Monday of the ISO week.
    pub period: NaiveDate,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    pub nps: Option<f64>,
    pub feedback: u64,
    /// Mean sentiment of the period's scored feedback.
    pub mean_sentiment: Option<f64>,
}

fn get(c: &Counters, k: &str) -> u64 {
    c.get(k).copied().unwrap_or(0).max(0) as u64
}

pub fn nps_counts(c: &Counters) -> NpsCounts {
    NpsCounts {
        promoters: get(c, counter::PROMOTERS),
        passives: get(c, counter::PASSIVES),
        detractors: get(c, counter::DETRACTORS),
    }
}

pub fn add_into(total: &mut Counters, c: &Counters) {
    for (k, v) in c {
        *total.entry(k.clone()).or_default() += v;
    }
}

/// Every day of `from..=to`.
pub fn days(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    let n = (to - from).num_days().max(-1) + 1;
    (0..n).map(move |i| from + Duration::days(i))
}

pub fn period_of(day: NaiveDate, g: Granularity) -> NaiveDate {
    match g {
        Granularity::Day => day,
        Granularity::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
    }
}

/// One point per period that has any feedback, oldest first.
pub fn nps_series(by_day: &BTreeMap<NaiveDate, Counters>, g: Granularity) -> Vec<NpsPoint> {
    let mut periods: BTreeMap<NaiveDate, Counters> = BTreeMap::new();
    for (day, c) in by_day {
        add_into(periods.entry(period_of(*day, g)).or_default(), c);
    }
    periods
        .into_iter()
        .filter(|(_, c)| get(c, counter::FEEDBACK) > 0)
        .map(|(period, c)| {
            let n = nps_counts(&c);
            let scored =
                get(&c, counter::POSITIVE) + get(&c, counter::NEUTRAL) + get(&c, counter::NEGATIVE);
            NpsPoint {
                period,
                promoters: n.promoters,
                passives: n.passives,
                detractors: n.detractors,
                nps: n.nps(),
                feedback: get(&c, counter::FEEDBACK),
                mean_sentiment: (scored > 0).then(|| {
                    c.get(counter::SENTIMENT_MILLI).copied().unwrap_or(0) as f64
                        / 1000.0
                        / scored as f64
                }),
            }
        })
        .collect()
}

/// Drivers from the summed counters of a range (`th.<theme>.p|pa|d`).
pub fn drivers(total: &Counters) -> DriverReport {
    let mut with: BTreeMap<String, NpsCounts> = BTreeMap::new();
    for (k, v) in total {
        let Some(rest) = k.strip_prefix("th.") else {
            continue;
        };
        let Some((theme, what)) = rest.rsplit_once('.') else {
            continue;
        };
        let e = with.entry(theme.to_owned()).or_default();
        let v = (*v).max(0) as u64;
        match what {
            "p" => e.promoters += v,
            "pa" => e.passives += v,
            "d" => e.detractors += v,
            _ => {}
        }
    }
    with.retain(|_, c| c.total() > 0);
    drivers_from_counts(nps_counts(total), &with)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analyzer;
    use crate::envelope::parse_envelope;
    use crate::nps::{self, NpsCategory, NpsCounts};
    use crate::records::AggregateDelta;
    use crate::sentiment::Mode;
    use crate::themes::Taxonomy;
    use chrono::{TimeZone, Utc};

    /// The aggregates give exactly what `nps::drivers` computes from the individual
    /// responses (each theme counted once per response).
    #[test]
    fn aggregate_reports_equal_the_per_response_computation() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let a = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
        let mut responses: Vec<(NpsCategory, Vec<String>)> = Vec::new();
        let mut per_day: BTreeMap<NaiveDate, NpsCounts> = BTreeMap::new();
        let mut by_day: BTreeMap<NaiveDate, Counters> = BTreeMap::new();
        let texts = [
            "Delivery was late and support ignored me",
            "Lovely staff, fair price",
            "Okay",
            "Broken item, refund took weeks",
        ];
        for i in 0..60u32 {
            let body = format!(
                r#"{{"feedback_id":"f{i}","customer_id":"c{}","kind":"survey","occurred_at":"2026-11-{:02}T10:00:00Z","nps_score":{},"text":"{}"}}"#,
                i % 7,
                1 + i % 20,
                (i * 7) % 11,
                texts[i as usize % 4]
            );
            let af = a
                .analyze(parse_envelope(body.as_bytes(), now).unwrap().feedback)
                .unwrap();
            let category = af.nps_category.unwrap();
            let mut themes: Vec<String> =
                af.analysis.themes.iter().map(|t| t.theme.clone()).collect();
            themes.sort();
            themes.dedup();
            responses.push((category, themes));
            per_day
                .entry(af.feedback.occurred_at.date_naive())
                .or_default()
                .add(category);
            let d = AggregateDelta::from_analyzed(&af, 4);
            add_into(by_day.entry(d.day).or_default(), &d.counters);
        }
        let mut total = Counters::new();
        by_day.values().for_each(|c| add_into(&mut total, c));
        let reference: Vec<nps::Response> = responses
            .iter()
            .map(|(category, themes)| nps::Response {
                category: *category,
                themes: themes.iter().map(String::as_str).collect(),
            })
            .collect();
        assert_eq!(drivers(&total), nps::drivers(&reference));
        let series = nps_series(&by_day, Granularity::Day);
        let expected = per_day;
        assert_eq!(series.len(), expected.len());
        for pt in &series {
            assert_eq!(pt.nps, expected[&pt.period].nps());
        }
        let weeks = nps_series(&by_day, Granularity::Week);
        assert!(weeks
            .iter()
            .all(|w| w.period.weekday() == chrono::Weekday::Mon));
        assert_eq!(weeks.iter().map(|w| w.feedback).sum::<u64>(), 60);
    }
}
