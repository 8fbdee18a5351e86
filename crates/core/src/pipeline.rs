//! The whole pipeline in memory: envelope bytes in, profiles and aggregates out. The
//! embedded demo and `feedloop process` run on it; the Lambda functions run the same
//! steps against DynamoDB.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::analysis::{AnalyzedFeedback, Analyzer, AnalyzerError};
use crate::envelope::{parse_envelope, CustomerId};
use crate::nps::{self, DriverReport, NpsCategory, NpsCounts};
use crate::profile::{Profile, Segment};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Applied {
        feedback_id: String,
        customer_id: String,
    },
    /// Same `feedback_id` seen before: nothing changes.
    Duplicate { feedback_id: String },
    /// Invalid input, recorded with its reason and never retried.
    Rejected { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Reject {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
struct NpsResponse {
    day: NaiveDate,
    category: NpsCategory,
    themes: Vec<String>,
}

pub struct LocalPipeline {
    analyzer: Analyzer,
    half_life_days: f64,
    seen: HashSet<String>,
    profiles: BTreeMap<CustomerId, Profile>,
    responses: Vec<NpsResponse>,
    rejects: Vec<Reject>,
    last: Option<AnalyzedFeedback>,
    followups: crate::followup::dry_run::DryRun,
}

impl LocalPipeline {
    pub fn new(analyzer: Analyzer, half_life_days: f64) -> LocalPipeline {
        LocalPipeline {
            analyzer,
            half_life_days,
            seen: HashSet::new(),
            profiles: BTreeMap::new(),
            responses: Vec::new(),
            rejects: Vec::new(),
            last: None,
            followups: crate::followup::dry_run::DryRun::new(None),
        }
    }

    /// Process one envelope. `source` names it in reject records (a line number, a
    /// message id). `Err` is a failure of the analyzer itself (the encoder), not of
    /// the input.
    pub fn ingest(
        &mut self,
        bytes: &[u8],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, AnalyzerError> {
        let feedback = match parse_envelope(bytes, now) {
            Ok(p) => p.feedback,
            Err(e) => return Ok(self.reject(source, e.to_string())),
        };
        let feedback_id = feedback.feedback_id.as_str().to_owned();
        if !self.seen.insert(feedback_id.clone()) {
            return Ok(Outcome::Duplicate { feedback_id });
        }
        let analyzed = self.analyzer.analyze(feedback)?;
        let customer_id = analyzed.feedback.customer_id.clone();
        if let Some(category) = analyzed.nps_category {
            let mut themes: Vec<String> = analyzed
                .analysis
                .themes
                .iter()
                .map(|t| t.theme.clone())
                .collect();
            let mut seen = HashSet::new();
            themes.retain(|t| seen.insert(t.clone()));
            self.responses.push(NpsResponse {
                day: analyzed.feedback.occurred_at.date_naive(),
                category,
                themes,
            });
        }
        let profile = self
            .profiles
            .entry(customer_id.clone())
            .or_insert_with(|| Profile::new(customer_id.clone(), self.half_life_days));
        profile.apply(&analyzed);
        self.followups.consider(&analyzed, profile);
        self.last = Some(analyzed);
        Ok(Outcome::Applied {
            feedback_id,
            customer_id: customer_id.to_string(),
        })
    }

    /// Record input that never became an envelope (a line that is not UTF-8).
    pub fn reject(&mut self, source: &str, reason: String) -> Outcome {
        self.rejects.push(Reject {
            source: source.to_owned(),
            reason: reason.clone(),
        });
        Outcome::Rejected { reason }
    }

    /// The analysis of the most recently applied feedback.
    pub fn last_analyzed(&self) -> Option<&AnalyzedFeedback> {
        self.last.as_ref()
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    pub fn profile(&self, id: &str) -> Option<&Profile> {
        CustomerId::parse(id)
            .ok()
            .and_then(|id| self.profiles.get(&id))
    }

    /// What the follow-up playbooks would send (dry run), in processing order.
    pub fn followups(&self) -> &[crate::followup::dry_run::FollowUpRecord] {
        &self.followups.records
    }

    /// Name the business in follow-up messages.
    pub fn set_company(&mut self, company: &str) {
        self.followups = crate::followup::dry_run::DryRun::new(Some(company.to_owned()));
    }

    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }

    pub fn drivers(&self) -> DriverReport {
        let responses: Vec<nps::Response> = self
            .responses
            .iter()
            .map(|r| nps::Response {
                category: r.category,
                themes: r.themes.iter().map(String::as_str).collect(),
            })
            .collect();
        nps::drivers(&responses)
    }

    pub fn nps_by_day(&self) -> BTreeMap<NaiveDate, NpsCounts> {
        let mut out: BTreeMap<NaiveDate, NpsCounts> = BTreeMap::new();
        for r in &self.responses {
            out.entry(r.day).or_default().add(r.category);
        }
        out
    }

    pub fn segment_counts(&self) -> BTreeMap<Segment, usize> {
        let mut out = BTreeMap::new();
        for p in self.profiles.values() {
            *out.entry(p.segment()).or_default() += 1;
        }
        out
    }

    /// Customers by churn risk, highest first.
    pub fn most_at_risk(&self, n: usize) -> Vec<&Profile> {
        let mut v: Vec<(&Profile, f64)> = self
            .profiles
            .values()
            .map(|p| (p, p.churn_risk().score))
            .collect();
        v.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| a.0.customer_id.cmp(&b.0.customer_id))
        });
        v.into_iter().take(n).map(|(p, _)| p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentiment::Mode;
    use crate::themes::Taxonomy;
    use chrono::TimeZone;

    #[test]
    fn duplicates_change_nothing_and_rejects_are_recorded() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
        let mut p = LocalPipeline::new(
            Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business()),
            30.0,
        );
        let env = br#"{"feedback_id":"f1","customer_id":"c1","kind":"survey","occurred_at":"2026-11-20T10:00:00Z","nps_score":3,"text":"Delivery was late"}"#;
        assert!(matches!(
            p.ingest(env, "line 1", now).unwrap(),
            Outcome::Applied { .. }
        ));
        let before = serde_json::to_value(p.profile("c1").unwrap()).unwrap();
        assert!(matches!(
            p.ingest(env, "line 2", now).unwrap(),
            Outcome::Duplicate { .. }
        ));
        assert_eq!(
            serde_json::to_value(p.profile("c1").unwrap()).unwrap(),
            before
        );
        assert!(matches!(
            p.ingest(b"{", "line 3", now).unwrap(),
            Outcome::Rejected { .. }
        ));
        assert_eq!(p.rejects()[0].source, "line 3");
        assert_eq!(p.drivers().responses.detractors, 1);
        assert_eq!(p.drivers().drivers[0].theme, "delivery");
    }
}
