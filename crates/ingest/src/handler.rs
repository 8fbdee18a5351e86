//! One SQS batch: every record parsed and analysed once, committed exactly once, and
//! classified for the partial-batch response (poison: acknowledged and recorded;
//! transient: reported as a batch item failure so SQS redelivers it).

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use feedloop_core::analysis::{AnalyzedFeedback, Analyzer};
use feedloop_core::envelope::{customer_hint, parse_envelope, CustomerId, Feedback, FeedbackId};
use feedloop_core::followup::outcomes::{attribute, ATTRIBUTION_WINDOW_DAYS};
use feedloop_core::followup::{stale_age_hours, FollowUpIntent, Playbook};
use feedloop_core::records::effects;
use feedloop_core::sentiment::{Label, Mode};
use feedloop_core::themes::Taxonomy;
use serde::Serialize;
use tracing::{info, warn};

use feedloop_kit::ports::ingest::*;

/// Bytes of a poison body kept in its reject record.
pub use feedloop_kit::batch::REJECT_BODY_BYTES;
/// Optimistic-concurrency attempts before handing the message back to SQS.
pub const MAX_COMMIT_ATTEMPTS: u32 = 6;

use feedloop_kit::Clock;

/// A parsed and analysed record: a feedback to apply, a poison message to record, or
/// a message to hand back to SQS because the analyzer itself failed (not its input).
/// Messages analysed in one encoder call before the batch's deadline is checked again:
/// the encoder's best batch (`make bench`); with the per-text limits a chunk costs a
/// few seconds at worst, so a batch stops within that of its budget.
pub const ANALYSIS_CHUNK: usize = 32;

enum Step {
    Apply(Box<AnalyzedFeedback>),
    Reject(RejectRecord),
    Retry(String),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub half_life_days: f64,
    pub aggregate_shards: u16,
    pub max_concurrency: usize,
    /// Feedback older than this (at ingest) gets no follow-up intent: a backfill or a
    /// redrive updates profiles and reports but contacts nobody.
    pub max_followup_age_hours: i64,
}

impl Settings {
    /// What runs off AWS use (the demo, `feedloop process`, the local drain): the
    /// template's defaults for shards, concurrency and follow-up age.
    pub fn local(half_life_days: f64) -> Settings {
        Settings {
            half_life_days,
            aggregate_shards: 8,
            max_concurrency: 8,
            max_followup_age_hours: feedloop_core::followup::DEFAULT_MAX_AGE_HOURS,
        }
    }

    /// The local settings with fewer shards and workers: small runs (tests, a single
    /// customer's replay) see contention with a handful.
    pub fn sized(aggregate_shards: u16, max_concurrency: usize) -> Settings {
        Settings {
            aggregate_shards,
            max_concurrency,
            ..Settings::local(30.0)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Processed {
    Applied {
        feedback_id: FeedbackId,
        customer_id: CustomerId,
        label: Option<Label>,
        nps_category: Option<feedloop_core::nps::NpsCategory>,
        conflicts: u32,
    },
    Duplicate,
    Rejected {
        reason: String,
    },
}

/// The one batch error, shared with the follow-up dispatcher.
pub use feedloop_kit::batch::BatchError as HandlerError;

feedloop_kit::counters! {
    /// Counts for one batch, emitted as CloudWatch Embedded Metric Format.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
    pub struct BatchReport {
        processed => "Processed",
        rejected => "Rejected",
        retried => "Retried",
        duplicate => "Duplicate",
        conflicts => "Conflicts",
        positive => "SentimentPositive",
        neutral => "SentimentNeutral",
        negative => "SentimentNegative",
    }
}

impl BatchReport {
    pub fn emf(&self, function: &str, now: DateTime<Utc>) -> String {
        feedloop_kit::emf_line(function, &self.metrics(), now)
    }
}

pub struct Ingest<S, F = NoFollowUps> {
    store: S,
    analyzer: Analyzer,
    settings: Settings,
    clock: Clock,
    followups: F,
    playbook: Option<Playbook>,
}

impl<S: ProfileStore + RejectStore> Ingest<S> {
    pub fn new(store: S, analyzer: Analyzer, settings: Settings, clock: Clock) -> Self {
        Ingest {
            store,
            analyzer,
            settings,
            clock,
            followups: NoFollowUps,
            playbook: None,
        }
    }

    /// The ingest that needs no model: lexicon analysis over the small-business
    /// taxonomy, with `Settings::local(30.0)` — the demo's, and every test's that
    /// is not about the analysis itself.
    pub fn lexicon(store: S, clock: Clock) -> Self {
        let analyzer = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
        Ingest::new(store, analyzer, Settings::local(30.0), clock)
    }

    /// The same service with other settings (shards, concurrency, follow-up age).
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }
}

impl<S, F> Ingest<S, F> {
    /// Decide follow-ups with `playbook` and hand them to `sink`.
    pub fn with_followups<G: FollowUpSink>(self, playbook: Playbook, sink: G) -> Ingest<S, G> {
        Ingest {
            store: self.store,
            analyzer: self.analyzer,
            settings: self.settings,
            clock: self.clock,
            followups: sink,
            playbook: Some(playbook),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: ProfileStore + RejectStore, F: FollowUpSink> Ingest<S, F> {
    /// Handle one SQS event; the response lists exactly the messages to redeliver.
    ///
    /// Records of one customer run in order, one after the other; different customers
    /// run concurrently. A burst from one customer then costs no version conflicts
    /// inside the batch, and the order within it is kept (not needed for correctness,
    /// the fold is order-independent, but it keeps the logs readable).
    pub async fn handle(
        &self,
        event: SqsEvent,
    ) -> Result<(SqsBatchResponse, BatchReport), HandlerError> {
        self.handle_within(event, None).await
    }

    /// `handle`, done by `deadline` (the Lambda's, less a reserve: `batch::budget_until`):
    /// what is not analysed and committed by then goes back as batch-item failures, so
    /// one slow batch never times out and brings every message back.
    pub async fn handle_within(
        &self,
        event: SqsEvent,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(SqsBatchResponse, BatchReport), HandlerError> {
        let now = (self.clock)();
        let records = feedloop_kit::batch::records(event)?;
        let parsed: Vec<_> = records
            .iter()
            .map(|(id, body)| self.parse(id, body, now))
            .collect();
        let ids: Vec<String> = records.into_iter().map(|(id, _)| id).collect();
        let mut units: Vec<Vec<(String, Step)>> = Vec::new();
        let mut by_customer: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for (id, step) in ids.into_iter().zip(self.analyze_until(parsed, deadline)) {
            match &step {
                Step::Apply(a) => {
                    let slot = *by_customer
                        .entry(a.feedback.customer_id.to_string())
                        .or_insert_with(|| {
                            units.push(Vec::new());
                            units.len() - 1
                        });
                    units[slot].push((id, step));
                }
                Step::Reject(_) | Step::Retry(_) => units.push(vec![(id, step)]),
            }
        }
        let driven = feedloop_kit::batch::drive(
            units,
            self.settings.max_concurrency,
            deadline,
            |_, step| self.run(step, now),
        )
        .await;

        let mut report = BatchReport {
            retried: driven.retry.len() as u32,
            ..BatchReport::default()
        };
        for outcome in &driven.done {
            match outcome {
                Processed::Applied {
                    label, conflicts, ..
                } => {
                    report.processed += 1;
                    report.conflicts += conflicts;
                    match label {
                        Some(Label::Positive) => report.positive += 1,
                        Some(Label::Neutral) => report.neutral += 1,
                        Some(Label::Negative) => report.negative += 1,
                        None => {}
                    }
                }
                Processed::Duplicate => report.duplicate += 1,
                Processed::Rejected { .. } => report.rejected += 1,
            }
        }
        Ok((driven.response(), report))
    }

    /// Process one message body. `Err` means "retry later"; everything else is final.
    pub async fn process(&self, message_id: &str, body: &str) -> Result<Processed, StoreError> {
        let now = (self.clock)();
        let parsed = self.parse(message_id, body, now);
        let step = self.analyze(vec![parsed]).remove(0);
        self.run(step, now).await
    }

    /// Analyse a batch in chunks of [`ANALYSIS_CHUNK`], checking `deadline` between
    /// them: what the budget does not reach is retried, not lost.
    fn analyze_until(
        &self,
        parsed: Vec<Result<Feedback, RejectRecord>>,
        deadline: Option<tokio::time::Instant>,
    ) -> Vec<Step> {
        let mut steps = Vec::with_capacity(parsed.len());
        let mut rest = parsed.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<_> = rest.by_ref().take(ANALYSIS_CHUNK).collect();
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                steps.extend(chunk.into_iter().map(|p| match p {
                    Err(r) => Step::Reject(r),
                    Ok(_) => Step::Retry(feedloop_kit::batch::OUT_OF_TIME.to_owned()),
                }));
            } else {
                steps.extend(self.analyze(chunk));
            }
        }
        steps
    }

    /// Analyse every parsed feedback of a batch in one analyzer call (one encoder pass
    /// in the neural modes).
    fn analyze(&self, parsed: Vec<Result<Feedback, RejectRecord>>) -> Vec<Step> {
        let mut feedback = Vec::new();
        let mut rejects = Vec::with_capacity(parsed.len());
        for p in parsed {
            match p {
                Ok(f) => {
                    feedback.push(f);
                    rejects.push(None);
                }
                Err(r) => rejects.push(Some(r)),
            }
        }
        let mut analyzed = match self.analyzer.analyze_batch(feedback) {
            Ok(a) => Ok(a.into_iter()),
            Err(e) => {
                warn!(error = %e, "analysis failed; the batch's feedback will be retried");
                Err(e.to_string())
            }
        };
        rejects
            .into_iter()
            .map(|r| match (r, &mut analyzed) {
                (Some(r), _) => Step::Reject(r),
                (None, Ok(it)) => it.next().map_or_else(
                    || Step::Retry("analyzer returned fewer results than inputs".into()),
                    |a| Step::Apply(Box::new(a)),
                ),
                (None, Err(e)) => Step::Retry(e.clone()),
            })
            .collect()
    }

    fn parse(
        &self,
        message_id: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Feedback, RejectRecord> {
        match parse_envelope(body.as_bytes(), now) {
            Ok(parsed) => Ok(parsed.feedback),
            Err(e) => Err(RejectRecord {
                message_id: message_id.to_owned(),
                reason: e.to_string(),
                body_prefix: feedloop_kit::batch::reject_body(body),
                received_at: now,
                customer_id: customer_hint(body.as_bytes()).map(|c| c.to_string()),
            }),
        }
    }

    async fn run(&self, step: Step, now: DateTime<Utc>) -> Result<Processed, StoreError> {
        let analyzed = match step {
            Step::Apply(a) => *a,
            Step::Retry(reason) => return Err(StoreError::Transient(reason)),
            Step::Reject(reject) => {
                self.store.record_reject(&reject).await?;
                info!(reason = %reject.reason, "rejected poison message");
                return Ok(Processed::Rejected {
                    reason: reject.reason,
                });
            }
        };
        let customer: CustomerId = analyzed.feedback.customer_id.clone();
        let label = analyzed.analysis.sentiment.map(|s| s.label);
        let mut conflicts = 0;
        loop {
            let current = self.store.load_profile(&customer).await?;
            let expected_version = current.as_ref().map(|c| c.version);
            let previous_segment = current.as_ref().map(|c| c.value.segment());
            let first_seen = feedloop_core::followup::first_seen_channels(
                current.as_ref().map(|c| &c.value),
                analyzed.feedback.customer.as_ref(),
            );
            let mut fx = effects(
                current.map(|c| c.value),
                &analyzed,
                self.settings.half_life_days,
                self.settings.aggregate_shards,
            );
            let occurred = analyzed.feedback.occurred_at;
            let stale = stale_age_hours(occurred, now, self.settings.max_followup_age_hours);
            fx.feedback.followup = self
                .playbook
                .as_ref()
                .filter(|_| stale.is_none())
                .and_then(|p| p.decide(&analyzed, &fx.profile))
                .map(|mut i| {
                    i.first_seen = first_seen;
                    i
                });
            let intent = fx.feedback.followup.clone();
            let history_key = fx.feedback.history_key();
            let commit = Commit {
                effects: fx,
                expected_version,
                previous_segment,
                received_at: now,
            };
            match self.store.commit(&commit).await? {
                CommitOutcome::Applied => {
                    info!(
                        kind = analyzed.feedback.kind().as_str(),
                        conflicts,
                        followup = intent.as_ref().map(|i| i.playbook.as_str()),
                        stale_hours = stale,
                        "applied"
                    );
                    self.after_commit(intent, &analyzed, now).await?;
                    return Ok(Processed::Applied {
                        feedback_id: analyzed.feedback.feedback_id.clone(),
                        customer_id: customer.clone(),
                        label,
                        nps_category: analyzed.nps_category,
                        conflicts,
                    });
                }
                CommitOutcome::Duplicate => {
                    info!("duplicate delivery, nothing changed");
                    // The first delivery may have stopped between its commit and the
                    // enqueue: hand over the intent it committed (the dispatcher's
                    // claim makes a second copy harmless).
                    let stored = if self.playbook.is_some() {
                        self.followups
                            .stored_intent(&customer, &history_key)
                            .await?
                    } else {
                        None
                    };
                    self.after_commit(stored, &analyzed, now).await?;
                    return Ok(Processed::Duplicate);
                }
                CommitOutcome::Conflict => {
                    conflicts += 1;
                    if conflicts >= MAX_COMMIT_ATTEMPTS {
                        return Err(StoreError::Transient(format!(
                            "profile {customer} changed under us {conflicts} times"
                        )));
                    }
                    // Full jitter: concurrent writers for one customer spread out
                    // instead of colliding again in lock step.
                    let cap_ms = 5u64 << conflicts.min(6);
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=cap_ms))).await;
                }
            }
        }
    }
}

impl<S, F: FollowUpSink> Ingest<S, F> {
    /// Enqueue the follow-up and attribute this feedback to the customer's last one.
    /// An error here makes SQS redeliver the message, which then takes the duplicate
    /// path and does both again; both steps are idempotent.
    async fn after_commit(
        &self,
        intent: Option<FollowUpIntent>,
        analyzed: &AnalyzedFeedback,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if self.playbook.is_none() {
            return Ok(());
        }
        if let Some(intent) = &intent {
            self.followups.enqueue(intent, now).await?;
        }
        let customer = &analyzed.feedback.customer_id;
        if let Some(sent) = self.followups.pending(customer).await? {
            let window = chrono::Duration::days(ATTRIBUTION_WINDOW_DAYS);
            if let Some(outcome) = attribute(&sent, analyzed, window) {
                self.followups
                    .record_outcome(customer, &sent, &outcome)
                    .await?;
                info!(playbook = %outcome.playbook, variant = %outcome.variant, "response attributed to follow-up");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
