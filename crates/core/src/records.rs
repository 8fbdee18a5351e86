//! What one processed feedback writes, computed purely: the feedback history record,
//! the new profile, and the increments to the per-day aggregates. Storage adapters
//! turn these into items; nothing here knows DynamoDB.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::analysis::AnalyzedFeedback;
use crate::envelope::{CustomerId, Details, FeedbackId, Kind};
use crate::nps::NpsCategory;
use crate::profile::Profile;
use crate::sentiment::Label;

/// A theme on a stored feedback: id and the aspect sentiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoredTheme {
    pub theme: String,
    pub sentiment: Option<f64>,
}

/// One feedback as kept in a customer's history (no raw text: the excerpt is redacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FeedbackRecord {
    pub customer_id: CustomerId,
    pub feedback_id: FeedbackId,
    pub kind: Kind,
    pub occurred_at: DateTime<Utc>,
    pub channel: Option<crate::envelope::Channel>,
    pub source: Option<String>,
    pub language: String,
    pub compound: Option<f64>,
    pub label: Option<Label>,
    pub skipped: Option<String>,
    /// Set when the text reached the analyser's per-text limits (how many sentences
    /// were scored without the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub nps_score: Option<u8>,
    pub nps_category: Option<NpsCategory>,
    pub csat: Option<u8>,
    pub rating: Option<u8>,
    pub ticket_id: Option<String>,
    pub themes: Vec<StoredTheme>,
    pub excerpt: String,
    /// The follow-up this feedback triggered, committed with it so that a re-delivery
    /// re-enqueues exactly this intent (decided on the profile as it was then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followup: Option<crate::followup::FollowUpIntent>,
}

impl FeedbackRecord {
    /// The record's identity within its customer: time first so history sorts newest
    /// first, then the feedback id. Every field comes from the message body, so every
    /// delivery of a message maps to the same key; that is what makes a re-delivery a
    /// detectable duplicate.
    pub fn history_key(&self) -> String {
        format!(
            "{}#{}",
            self.occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.feedback_id
        )
    }

    pub fn from_analyzed(af: &AnalyzedFeedback) -> FeedbackRecord {
        let f = &af.feedback;
        let mut themes: Vec<StoredTheme> = Vec::new();
        for m in &af.analysis.themes {
            if !themes.iter().any(|t| t.theme == m.theme) {
                themes.push(StoredTheme {
                    theme: m.theme.clone(),
                    sentiment: m.sentiment,
                });
            }
        }
        FeedbackRecord {
            customer_id: f.customer_id.clone(),
            feedback_id: f.feedback_id.clone(),
            kind: f.kind(),
            occurred_at: f.occurred_at,
            channel: f.channel,
            source: f.source.clone(),
            language: af.analysis.language.code.clone(),
            compound: af.compound(),
            label: af.analysis.sentiment.map(|s| s.label),
            skipped: af.analysis.skipped.clone(),
            note: af.analysis.note.clone(),
            nps_score: f.details.nps_score(),
            nps_category: af.nps_category,
            csat: f.details.csat(),
            rating: f.details.rating(),
            ticket_id: match &f.details {
                Details::Ticket { ticket_id, .. } => Some(ticket_id.clone()),
                _ => None,
            },
            themes,
            excerpt: af.excerpt.clone(),
            followup: None,
        }
    }
}

/// Counter increments for one day's aggregate shard. Integers only (sentiment in
/// thousandths) so that any order of application gives bit-identical totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AggregateDelta {
    pub day: NaiveDate,
    pub shard: u16,
    /// How many shards the writer spreads a day over: readers must learn every count
    /// ever used, or changing `AggregateShards` would hide the higher shards' history.
    pub shards: u16,
    pub counters: BTreeMap<String, i64>,
}

/// Counter names, shared by writers and readers of the aggregates.
pub mod counter {
    pub const FEEDBACK: &str = "fb";
    pub const PROMOTERS: &str = "nps.p";
    pub const PASSIVES: &str = "nps.pa";
    pub const DETRACTORS: &str = "nps.d";
    pub const POSITIVE: &str = "sent.pos";
    pub const NEUTRAL: &str = "sent.neu";
    pub const NEGATIVE: &str = "sent.neg";
    pub const SENTIMENT_MILLI: &str = "sent.sum_milli";
    pub const CSAT_SUM: &str = "csat.sum";
    pub const CSAT_COUNT: &str = "csat.n";

    pub fn nps(category: crate::nps::NpsCategory) -> &'static str {
        match category {
            crate::nps::NpsCategory::Promoter => PROMOTERS,
            crate::nps::NpsCategory::Passive => PASSIVES,
            crate::nps::NpsCategory::Detractor => DETRACTORS,
        }
    }

    /// Mentions of a theme, and mentions by NPS category (for the driver analysis).
    pub fn theme(theme: &str, what: &str) -> String {
        format!("th.{theme}.{what}")
    }
}

/// FNV-1a of the feedback id: stable across processes, so a re-delivery hits the same shard.
pub fn shard_of(feedback_id: &str, shards: u16) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in feedback_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % u32::from(shards.max(1))) as u16
}

impl AggregateDelta {
    pub fn from_analyzed(af: &AnalyzedFeedback, shards: u16) -> AggregateDelta {
        use counter::*;
        let mut c: BTreeMap<String, i64> = BTreeMap::new();
        let mut add = |k: &str, v: i64| *c.entry(k.to_owned()).or_default() += v;
        add(FEEDBACK, 1);
        if let Some(s) = af.analysis.sentiment {
            add(
                match s.label {
                    Label::Positive => POSITIVE,
                    Label::Neutral => NEUTRAL,
                    Label::Negative => NEGATIVE,
                },
                1,
            );
            add(SENTIMENT_MILLI, (s.compound * 1000.0).round() as i64);
        }
        if let Some(cat) = af.nps_category {
            add(nps(cat), 1);
        }
        if let Some(csat) = af.feedback.details.csat() {
            add(CSAT_SUM, i64::from(csat));
            add(CSAT_COUNT, 1);
        }
        let mut seen: Vec<&str> = Vec::new();
        for m in &af.analysis.themes {
            if seen.contains(&m.theme.as_str()) {
                continue;
            }
            seen.push(&m.theme);
            add(&theme(&m.theme, "n"), 1);
            if m.sentiment.is_some_and(|s| s <= -0.05) {
                add(&theme(&m.theme, "neg"), 1);
            }
            if let Some(cat) = af.nps_category {
                let short = match cat {
                    NpsCategory::Promoter => "p",
                    NpsCategory::Passive => "pa",
                    NpsCategory::Detractor => "d",
                };
                add(&theme(&m.theme, short), 1);
            }
        }
        AggregateDelta {
            day: af.feedback.occurred_at.date_naive(),
            shard: shard_of(af.feedback.feedback_id.as_str(), shards),
            shards: shards.max(1),
            counters: c,
        }
    }
}

/// Everything one feedback changes, to be written atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    pub profile: Profile,
    pub feedback: FeedbackRecord,
    pub aggregate: AggregateDelta,
}

/// Apply an analysed feedback to the current profile (or a fresh one).
pub fn effects(
    current: Option<Profile>,
    af: &AnalyzedFeedback,
    half_life_days: f64,
    shards: u16,
) -> Effects {
    let mut profile =
        current.unwrap_or_else(|| Profile::new(af.feedback.customer_id.clone(), half_life_days));
    profile.apply(af);
    Effects {
        profile,
        feedback: FeedbackRecord::from_analyzed(af),
        aggregate: AggregateDelta::from_analyzed(af, shards),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analyzer;
    use crate::envelope::parse_envelope;
    use crate::sentiment::Mode;
    use crate::themes::Taxonomy;
    use chrono::TimeZone;

    #[test]
    fn effects_of_a_detractor_survey() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
        let env = br#"{"feedback_id":"f1","customer_id":"c1","kind":"survey","occurred_at":"2026-11-20T10:00:00Z","nps_score":3,"csat":2,"text":"Delivery was late. Mail me at a@b.com"}"#;
        let af = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business())
            .analyze(parse_envelope(env, now).unwrap().feedback)
            .unwrap();
        let e = effects(None, &af, 30.0, 8);
        assert_eq!(e.profile.feedback_count, 1);
        assert_eq!(e.feedback.excerpt, "Delivery was late. Mail me at [email]");
        assert_eq!(e.feedback.nps_category, Some(NpsCategory::Detractor));
        let c = &e.aggregate.counters;
        assert_eq!(
            (
                c["fb"],
                c["nps.d"],
                c["csat.sum"],
                c["th.delivery.n"],
                c["th.delivery.d"]
            ),
            (1, 1, 2, 1, 1)
        );
        assert_eq!(
            e.aggregate.day,
            NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
        );
        assert_eq!(e.aggregate.shard, shard_of("f1", 8));
        assert!(e.aggregate.shard < 8);
    }
}
