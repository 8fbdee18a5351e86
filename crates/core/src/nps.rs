//! Net Promoter Score and theme-driver analysis.
//!
//! Formulas (also in the README):
//! - category: 9-10 promoter, 7-8 passive, 0-6 detractor;
//! - NPS = 100 x (promoters - detractors) / responses, in -100..=100;
//! - for a theme T over the responses that have an NPS score:
//!   - `detractor_share` = detractors mentioning T / detractors (and likewise promoters),
//!   - `nps_with` = NPS of responses mentioning T, `nps_without` = NPS of the others,
//!   - `impact` = NPS - `nps_without` = (n_T / n) x (`nps_with` - `nps_without`):
//!     how many points T moves the overall score relative to a world where the responses
//!     that mention it scored like the rest. Negative: T costs points; positive: earns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NpsCategory {
    Detractor,
    Passive,
    Promoter,
}

impl NpsCategory {
    pub fn from_score(score: u8) -> NpsCategory {
        match score {
            9..=10 => NpsCategory::Promoter,
            7..=8 => NpsCategory::Passive,
            _ => NpsCategory::Detractor,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NpsCategory::Detractor => "detractor",
            NpsCategory::Passive => "passive",
            NpsCategory::Promoter => "promoter",
        }
    }
}

/// Counts per category; NPS is derived. Adding counts is how aggregates combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NpsCounts {
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
}

impl NpsCounts {
    pub fn add(&mut self, c: NpsCategory) {
        match c {
            NpsCategory::Promoter => self.promoters += 1,
            NpsCategory::Passive => self.passives += 1,
            NpsCategory::Detractor => self.detractors += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.promoters + self.passives + self.detractors
    }

    /// None when there are no responses: an NPS of 0 would be a claim, not a fact.
    pub fn nps(&self) -> Option<f64> {
        let n = self.total();
        (n > 0).then(|| 100.0 * (self.promoters as f64 - self.detractors as f64) / n as f64)
    }
}

/// One NPS response reduced to what driver analysis needs.
#[derive(Debug, Clone)]
pub struct Response<'a> {
    pub category: NpsCategory,
    pub themes: Vec<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
/// One theme's pull on the score (the module header has the formulas).
pub struct Driver {
    pub theme: String,
    /// Responses that mention the theme.
    pub mentions: u64,
    /// Of all detractors, the share that mention the theme.
    pub detractor_share: f64,
    /// Of all promoters, the share that mention the theme.
    pub promoter_share: f64,
    /// NPS of the responses that mention the theme; `None` when none do.
    pub nps_with: Option<f64>,
    /// NPS of the responses that do not; `None` when every response mentions it.
    pub nps_without: Option<f64>,
    /// Points the theme moves the overall NPS: negative costs, positive lifts.
    pub impact: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DriverReport {
    pub responses: NpsCounts,
    pub nps: Option<f64>,
    /// Sorted by impact, most costly first.
    pub drivers: Vec<Driver>,
}

pub fn drivers(responses: &[Response]) -> DriverReport {
    let mut all = NpsCounts::default();
    let mut with: BTreeMap<String, NpsCounts> = BTreeMap::new();
    for r in responses {
        all.add(r.category);
        let mut seen: Vec<&str> = r.themes.clone();
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            with.entry(t.to_owned()).or_default().add(r.category);
        }
    }
    drivers_from_counts(all, &with)
}

/// Drivers from counts alone: all responses by category, and per theme the responses
/// that mention it. This is what the stored daily aggregates hold, so reports over any
/// date range need no scan of individual feedback.
pub fn drivers_from_counts(all: NpsCounts, with: &BTreeMap<String, NpsCounts>) -> DriverReport {
    let overall = all.nps();
    let n = all.total() as f64;
    let mut drivers: Vec<Driver> = with
        .iter()
        .map(|(theme, &w)| {
            let without = NpsCounts {
                promoters: all.promoters.saturating_sub(w.promoters),
                passives: all.passives.saturating_sub(w.passives),
                detractors: all.detractors.saturating_sub(w.detractors),
            };
            let share = |part: u64, whole: u64| {
                if whole == 0 {
                    0.0
                } else {
                    part as f64 / whole as f64
                }
            };
            let (nps_with, nps_without) = (w.nps(), without.nps());
            let impact = match (nps_with, nps_without) {
                (Some(a), Some(b)) => w.total() as f64 / n * (a - b),
                // Every response mentions T: there is no "rest" to compare with.
                _ => 0.0,
            };
            Driver {
                theme: theme.clone(),
                mentions: w.total(),
                detractor_share: share(w.detractors, all.detractors),
                promoter_share: share(w.promoters, all.promoters),
                nps_with,
                nps_without,
                impact,
            }
        })
        .collect();
    drivers.sort_by(|a, b| {
        a.impact
            .total_cmp(&b.impact)
            .then_with(|| a.theme.cmp(&b.theme))
    });
    DriverReport {
        responses: all,
        nps: overall,
        drivers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NpsCategory::*;

    #[test]
    fn categories_and_score() {
        assert_eq!(
            [0, 6, 7, 8, 9, 10].map(NpsCategory::from_score),
            [Detractor, Detractor, Passive, Passive, Promoter, Promoter]
        );
        let mut c = NpsCounts::default();
        for s in [10, 9, 9, 8, 3] {
            c.add(NpsCategory::from_score(s));
        }
        assert_eq!(c.nps(), Some(40.0));
        assert_eq!(NpsCounts::default().nps(), None);
    }

    #[test]
    fn impact_is_the_points_a_theme_moves_the_score() {
        // 10 responses: 4 mention delivery (all detractors), 6 don't (5 promoters, 1 passive).
        let mut rs: Vec<Response> = (0..4)
            .map(|_| Response {
                category: Detractor,
                themes: vec!["delivery"],
            })
            .collect();
        rs.extend((0..5).map(|_| Response {
            category: Promoter,
            themes: vec!["staff"],
        }));
        rs.push(Response {
            category: Passive,
            themes: vec![],
        });
        let report = drivers(&rs);
        assert_eq!(report.nps, Some(10.0));
        let d = &report.drivers[0];
        assert_eq!(d.theme, "delivery");
        assert_eq!(
            (d.nps_with, d.nps_without),
            (Some(-100.0), Some(100.0 * 5.0 / 6.0))
        );
        // overall - without = 10 - 83.33 = -73.33 = 0.4 x (-100 - 83.33)
        assert!((d.impact - (10.0 - 500.0 / 6.0)).abs() < 1e-9);
        assert_eq!((d.detractor_share, d.promoter_share), (1.0, 0.0));
        let s = report.drivers.iter().find(|d| d.theme == "staff").unwrap();
        assert!(s.impact > 0.0);
    }
}
