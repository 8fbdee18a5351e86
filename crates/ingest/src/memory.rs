//! The in-memory store: same semantics as the DynamoDB one (atomic commit, duplicate
//! and version checks), used by unit tests and the chaos test's reference run.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::NaiveDate;
use feedloop_core::envelope::CustomerId;
use feedloop_core::profile::Profile;
use feedloop_core::records::FeedbackRecord;

use crate::ports::*;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct MemoryState {
    pub profiles: BTreeMap<String, Versioned<Profile>>,
    /// Keyed by (customer id, history key).
    pub feedback: BTreeMap<(String, String), FeedbackRecord>,
    pub aggregates: BTreeMap<(NaiveDate, u16), BTreeMap<String, i64>>,
    pub rejects: BTreeMap<String, RejectRecord>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

impl MemoryStore {
    pub fn snapshot(&self) -> MemoryState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryState) -> T) -> T {
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
            let key = (fb.customer_id.clone(), fb.history_key());
            if s.feedback.contains_key(&key) {
                return CommitOutcome::Duplicate;
            }
            let current = s.profiles.get(&fb.customer_id).map(|p| p.version);
            if current != c.expected_version {
                return CommitOutcome::Conflict;
            }
            let version = current.map_or(1, |v| v + 1);
            s.profiles.insert(
                fb.customer_id.clone(),
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
