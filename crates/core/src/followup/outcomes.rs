//! A/B outcomes: the customer's next feedback after a follow-up is attributed to it
//! (did they respond, how did their NPS and sentiment move), and per-variant sums are
//! kept so variants can be compared. Pure; the dispatcher stores the state.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::analysis::AnalyzedFeedback;
use crate::followup::{PlaybookId, VariantId};

/// The next feedback counts as a response to a follow-up only within this many days.
pub const ATTRIBUTION_WINDOW_DAYS: i64 = 30;

/// What was true when a follow-up went out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SentState {
    pub playbook: PlaybookId,
    pub variant: VariantId,
    pub sent_at: DateTime<Utc>,
    pub nps_before: Option<u8>,
    pub sentiment_before: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Outcome {
    pub playbook: PlaybookId,
    pub variant: VariantId,
    pub hours_to_response: i64,
    pub nps_change: Option<i32>,
    pub sentiment_change: Option<f64>,
}

/// Attribute `next` to the follow-up if it came after it and within `window`.
pub fn attribute(sent: &SentState, next: &AnalyzedFeedback, window: Duration) -> Option<Outcome> {
    let at = next.feedback.occurred_at;
    if at <= sent.sent_at || at - sent.sent_at > window {
        return None;
    }
    let nps_after = next.feedback.details.nps_score();
    Some(Outcome {
        playbook: sent.playbook.clone(),
        variant: sent.variant.clone(),
        hours_to_response: (at - sent.sent_at).num_hours(),
        nps_change: sent
            .nps_before
            .zip(nps_after)
            .map(|(b, a)| i32::from(a) - i32::from(b)),
        sentiment_change: sent
            .sentiment_before
            .zip(next.compound())
            .map(|(b, a)| a - b),
    })
}

/// Per (playbook, variant) counters; integers only so shards and orders sum exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VariantStats {
    pub sent: u64,
    pub responded: u64,
    pub nps_change_sum: i64,
    pub nps_change_n: u64,
    pub sentiment_change_milli_sum: i64,
    pub sentiment_change_n: u64,
}

/// Every variant's counters: (playbook, variant, counters).
pub type VariantRows = Vec<(PlaybookId, VariantId, VariantStats)>;

impl VariantStats {
    pub fn record_sent(&mut self) {
        self.sent += 1;
    }

    pub fn record(&mut self, o: &Outcome) {
        self.responded += 1;
        if let Some(d) = o.nps_change {
            self.nps_change_sum += i64::from(d);
            self.nps_change_n += 1;
        }
        if let Some(d) = o.sentiment_change {
            self.sentiment_change_milli_sum += (d * 1000.0).round() as i64;
            self.sentiment_change_n += 1;
        }
    }

    pub fn response_rate(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.responded as f64 / self.sent as f64)
    }

    pub fn mean_nps_change(&self) -> Option<f64> {
        (self.nps_change_n > 0).then(|| self.nps_change_sum as f64 / self.nps_change_n as f64)
    }

    pub fn mean_sentiment_change(&self) -> Option<f64> {
        (self.sentiment_change_n > 0).then(|| {
            self.sentiment_change_milli_sum as f64 / 1000.0 / self.sentiment_change_n as f64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the feedback (at, NPS, text) is attributed to the sent follow-up within
    /// a window of `days`.
    fn after_sent((at, nps, text): (&str, u8, &str), days: i64) -> Option<Outcome> {
        attribute(&sent(), &feedback(at, nps, text), Duration::days(days))
    }
    use crate::analysis::Analyzer;
    use crate::envelope::parse_envelope;
    use crate::sentiment::Mode;
    use crate::themes::Taxonomy;
    use chrono::TimeZone;

    fn feedback(at: &str, score: u8, text: &str) -> AnalyzedFeedback {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let body = format!(
            r#"{{"feedback_id":"n1","customer_id":"c1","kind":"survey","occurred_at":"{at}","nps_score":{score},"text":"{text}"}}"#
        );
        Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business())
            .analyze(parse_envelope(body.as_bytes(), now).unwrap().feedback)
            .unwrap()
    }

    fn sent() -> SentState {
        SentState {
            playbook: "detractor_recovery".into(),
            variant: "b".into(),
            sent_at: Utc.with_ymd_and_hms(2026, 11, 10, 9, 0, 0).unwrap(),
            nps_before: Some(3),
            sentiment_before: Some(-0.6),
        }
    }

    #[test]
    fn the_next_feedback_in_the_window_is_attributed() {
        let o = after_sent(("2026-11-12T09:00:00Z", 8, "Much better, thank you!"), 30).unwrap();
        assert_eq!(
            (o.hours_to_response, o.nps_change, o.variant.as_str()),
            (48, Some(5), "b")
        );
        assert!(o.sentiment_change.unwrap() > 1.0);
        assert!(
            after_sent(("2026-11-09T09:00:00Z", 8, "x"), 30).is_none(),
            "before the follow-up"
        );
        assert!(
            after_sent(("2026-11-24T09:00:00Z", 8, "x"), 7).is_none(),
            "outside the window"
        );
    }

    #[test]
    fn variant_stats_sum_outcomes() {
        let mut s = VariantStats::default();
        for _ in 0..4 {
            s.record_sent();
        }
        let o = after_sent(("2026-11-12T09:00:00Z", 9, "Great"), 30).unwrap();
        s.record(&o);
        assert_eq!(s.response_rate(), Some(0.25));
        assert_eq!(s.mean_nps_change(), Some(6.0));
        assert!(s.mean_sentiment_change().unwrap() > 0.0);
    }
}
