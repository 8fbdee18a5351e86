//! The in-memory adapters: one store that plays every port (ingest's commit, the
//! dispatcher's claims and suppression list, the query side), an outbox and a requeue
//! list. Same semantics as the DynamoDB ones (atomic commit, duplicate and version
//! checks, conditional claims), used by unit tests, the demo and the chaos test's
//! reference run.

mod followup;
mod query;

pub use followup::{Outbox, RequeueList};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use feedloop_core::envelope::{CustomerId, FeedbackId};
use feedloop_core::followup::outcomes::{Outcome, SentState, VariantStats};
use feedloop_core::followup::FollowUpIntent;
use feedloop_core::followup::{PlaybookId, VariantId};
use feedloop_core::profile::Profile;
use feedloop_core::records::FeedbackRecord;

use feedloop_kit::ports::ingest::*;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct MemoryState {
    pub profiles: BTreeMap<String, Versioned<Profile>>,
    /// Keyed by (customer id, history key).
    pub feedback: BTreeMap<(String, String), FeedbackRecord>,
    pub aggregates: BTreeMap<(NaiveDate, u16), BTreeMap<String, i64>>,
    pub rejects: BTreeMap<String, RejectRecord>,
    /// Intents as enqueued, in order (duplicates included: the dispatcher dedupes).
    pub followup_queue: Vec<FollowUpIntent>,
    /// Follow-up history by (customer, feedback id, playbook), written by the dispatcher.
    pub followups: BTreeMap<AttemptKey, serde_json::Value>,
    /// Per customer: the last sent follow-up not yet answered, and the last send time
    /// overall and per playbook (the caps).
    pub pending_followups: BTreeMap<String, SentState>,
    pub last_sent: BTreeMap<String, BTreeMap<String, DateTime<Utc>>>,
    /// What a granted claim found in `last_sent` (overall, playbook), so a delivery
    /// the provider refused can give the caps back.
    pub caps_before_claim: BTreeMap<AttemptKey, CapsBefore>,
    /// Soft-bounce notifications seen per suppression key (by event id).
    pub soft_bounces: BTreeMap<String, std::collections::BTreeSet<String>>,
    pub variant_stats: BTreeMap<(PlaybookId, VariantId), VariantStats>,
    /// Salted hashes on the suppression list, with the reason each went on.
    pub suppressed: std::collections::BTreeMap<String, String>,
}

/// One attempt: one follow-up per (customer, feedback, playbook).
pub type AttemptKey = (CustomerId, FeedbackId, PlaybookId);

pub type CapsBefore = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Every port over one in-memory state; clones are handles to the same state, as
/// clones of an SDK client reach the same table.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<MemoryState>>,
}

impl MemoryStore {
    pub fn snapshot(&self) -> MemoryState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Run `f` under the store's lock: the in-memory equivalent of a transaction.
    pub fn with<T>(&self, f: impl FnOnce(&mut MemoryState) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl ProfileStore for MemoryStore {
    async fn load_profile(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<Versioned<Profile>>, StoreError> {
        Ok(self.with(|s| s.profiles.get(customer.as_str()).cloned()))
    }

    async fn commit(&self, c: &Commit) -> Result<CommitOutcome, StoreError> {
        let fb = &c.effects.feedback;
        Ok(self.with(|s| {
            let key = (fb.customer_id.to_string(), fb.history_key());
            if s.feedback.contains_key(&key) {
                return CommitOutcome::Duplicate;
            }
            let current = s.profiles.get(fb.customer_id.as_str()).map(|p| p.version);
            if current != c.expected_version {
                return CommitOutcome::Conflict;
            }
            let version = current.map_or(1, |v| v + 1);
            s.profiles.insert(
                fb.customer_id.to_string(),
                Versioned {
                    value: c.effects.profile.clone(),
                    version,
                },
            );
            s.feedback.insert(key, fb.clone());
            let agg = s
                .aggregates
                .entry((c.effects.aggregate.day, c.effects.aggregate.shard))
                .or_default();
            for (k, v) in &c.effects.aggregate.counters {
                *agg.entry(k.clone()).or_default() += v;
            }
            CommitOutcome::Applied
        }))
    }
}

impl RejectStore for MemoryStore {
    async fn record_reject(&self, r: &RejectRecord) -> Result<(), StoreError> {
        self.with(|s| s.rejects.insert(r.message_id.clone(), r.clone()));
        Ok(())
    }
}

impl FollowUpSink for MemoryStore {
    async fn enqueue(&self, intent: &FollowUpIntent, _: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|s| s.followup_queue.push(intent.clone()));
        Ok(())
    }

    async fn stored_intent(
        &self,
        customer_id: &CustomerId,
        history_key: &str,
    ) -> Result<Option<FollowUpIntent>, StoreError> {
        let customer = customer_id.as_str();
        Ok(self.with(|s| {
            s.feedback
                .get(&(customer.to_owned(), history_key.to_owned()))
                .and_then(|f| f.followup.clone())
        }))
    }

    async fn pending(&self, customer_id: &CustomerId) -> Result<Option<SentState>, StoreError> {
        let customer = customer_id.as_str();
        Ok(self.with(|s| s.pending_followups.get(customer).cloned()))
    }

    async fn record_outcome(
        &self,
        customer_id: &CustomerId,
        sent: &SentState,
        outcome: &Outcome,
    ) -> Result<(), StoreError> {
        let customer = customer_id.as_str();
        self.with(|s| {
            if s.pending_followups.get(customer) == Some(sent) {
                s.pending_followups.remove(customer);
                s.variant_stats
                    .entry((outcome.playbook.clone(), outcome.variant.clone()))
                    .or_default()
                    .record(outcome);
            }
        });
        Ok(())
    }
}
