//! A fault-injecting wrapper around any store and queue: fails a share of calls at
//! random points, before the real call (the request never arrived) or after it (the
//! effect happened but the caller saw an error), which is what timeouts and crashes do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use feedloop_core::envelope::CustomerId;
use feedloop_core::profile::Profile;
use feedloop_kit::ports::ingest::*;

use crate::Rng;

#[derive(Debug, Default)]
pub struct FaultCounts {
    pub before: AtomicU64,
    pub after: AtomicU64,
    pub calls: AtomicU64,
}

impl FaultCounts {
    pub fn injected(&self) -> u64 {
        self.before.load(Ordering::Relaxed) + self.after.load(Ordering::Relaxed)
    }
}

/// Clones share the generator and the counts: one fault sequence however many
/// services hold the wrapper.
#[derive(Clone)]
pub struct Faulty<T> {
    pub inner: T,
    rate: f64,
    rng: Arc<Mutex<Rng>>,
    pub counts: Arc<FaultCounts>,
}

enum Point {
    None,
    Before,
    After,
}

impl<T> Faulty<T> {
    pub fn new(inner: T, rate: f64, seed: u64) -> Faulty<T> {
        Faulty {
            inner,
            rate,
            rng: Arc::new(Mutex::new(Rng(seed))),
            counts: Arc::default(),
        }
    }

    fn roll(&self) -> Point {
        self.counts.calls.fetch_add(1, Ordering::Relaxed);
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if !rng.chance(self.rate) {
            return Point::None;
        }
        if rng.chance(0.5) {
            self.counts.before.fetch_add(1, Ordering::Relaxed);
            Point::Before
        } else {
            self.counts.after.fetch_add(1, Ordering::Relaxed);
            Point::After
        }
    }
}

fn injected(what: &str) -> StoreError {
    StoreError::Transient(format!("injected fault: {what}"))
}

impl<T: ProfileStore> ProfileStore for Faulty<T> {
    async fn load_profile(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<Versioned<Profile>>, StoreError> {
        self.around("load", self.inner.load_profile(customer)).await
    }

    async fn commit(&self, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        self.around("write", self.inner.commit(commit)).await
    }
}

impl<T: RejectStore> RejectStore for Faulty<T> {
    async fn record_reject(&self, reject: &RejectRecord) -> Result<(), StoreError> {
        self.around("reject write", self.inner.record_reject(reject))
            .await
    }
}

impl<T: MessageQueue> MessageQueue for Faulty<T> {
    async fn receive(&self, max: usize) -> Result<Vec<QueueMessage>, StoreError> {
        self.around("receive", self.inner.receive(max)).await
    }

    async fn ack(&self, messages: &[QueueMessage]) -> Result<(), StoreError> {
        self.around("ack", self.inner.ack(messages)).await
    }
}

impl<T> Faulty<T> {
    /// One call through the dice: fail before it (the request never arrived), run it,
    /// or run it and fail after (the effect happened, the answer was lost: for a
    /// receive, the messages become visible again later).
    async fn around<R>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        match self.roll() {
            Point::Before => Err(injected(&format!("before {what}"))),
            Point::None => f.await,
            Point::After => {
                f.await?;
                Err(injected(&format!("after {what}")))
            }
        }
    }
}

impl<T: FollowUpSink> FollowUpSink for Faulty<T> {
    async fn enqueue(
        &self,
        intent: &feedloop_core::followup::FollowUpIntent,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.around("enqueue", self.inner.enqueue(intent, now))
            .await
    }
    async fn stored_intent(
        &self,
        customer: &CustomerId,
        history_key: &str,
    ) -> Result<Option<feedloop_core::followup::FollowUpIntent>, StoreError> {
        self.around(
            "stored intent read",
            self.inner.stored_intent(customer, history_key),
        )
        .await
    }
    async fn pending(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<feedloop_core::followup::outcomes::SentState>, StoreError> {
        self.around("pending read", self.inner.pending(customer))
            .await
    }
    async fn record_outcome(
        &self,
        customer: &CustomerId,
        sent: &feedloop_core::followup::outcomes::SentState,
        outcome: &feedloop_core::followup::outcomes::Outcome,
    ) -> Result<(), StoreError> {
        self.around(
            "outcome write",
            self.inner.record_outcome(customer, sent, outcome),
        )
        .await
    }
}

// The dispatcher's ports: the same dice.
use feedloop_kit::ports::followup::{
    AttemptRecord, Claim, ClaimRequest, FollowUpStore, Recorded, Requeue, Settle, SuppressionList,
};

impl<T: FollowUpStore> FollowUpStore for Faulty<T> {
    async fn contact(
        &self,
        c: &CustomerId,
    ) -> Result<Option<feedloop_core::envelope::CustomerInfo>, StoreError> {
        self.around("contact read", self.inner.contact(c)).await
    }
    async fn suppressed_among(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        self.around("suppression read", self.inner.suppressed_among(keys))
            .await
    }
    async fn claim(&self, r: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        self.around("claim", self.inner.claim(r)).await
    }
    async fn release(&self, r: &ClaimRequest<'_>, keep: bool) -> Result<(), StoreError> {
        self.around("release", self.inner.release(r, keep)).await
    }
    async fn record(&self, a: &AttemptRecord) -> Result<(), StoreError> {
        self.around("attempt record", self.inner.record(a)).await
    }
    async fn record_claimed(&self, a: &AttemptRecord) -> Result<Recorded, StoreError> {
        self.around("attempt record", self.inner.record_claimed(a))
            .await
    }
    async fn settle_interrupted(
        &self,
        a: &AttemptRecord,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Settle, StoreError> {
        self.around("settle", self.inner.settle_interrupted(a, before))
            .await
    }
}

impl<T: SuppressionList> SuppressionList for Faulty<T> {
    async fn suppress(
        &self,
        keys: &[String],
        reason: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.around("suppress", self.inner.suppress(keys, reason, now))
            .await
    }
    async fn lift(&self, keys: &[String]) -> Result<u32, StoreError> {
        self.around("lift", self.inner.lift(keys)).await
    }
    async fn count_soft_bounce(
        &self,
        key: &str,
        event_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u32, StoreError> {
        self.around(
            "soft bounce count",
            self.inner.count_soft_bounce(key, event_id, now),
        )
        .await
    }
}

impl<T: Requeue> Requeue for Faulty<T> {
    async fn requeue(&self, body: &str, delay: std::time::Duration) -> Result<(), StoreError> {
        self.around("requeue", self.inner.requeue(body, delay))
            .await
    }
}
