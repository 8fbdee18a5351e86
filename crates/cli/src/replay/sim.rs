//! The whole service in memory on a simulated clock. Each message arrives when it
//! happened; the real ingest service commits it to the in-memory store; the real
//! follow-up dispatcher (dry run: decided, claimed, rendered and recorded, nothing
//! sent) takes each intent when it falls due, deferrals included. The embedded demo
//! and `feedloop process` run on this, and read the result through the API's query
//! service, so what they print is what a deployment would answer.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use feedloop_core::analysis::Analyzer;
use feedloop_core::followup::plan::DispatchPolicy;
use feedloop_core::followup::Playbook;
use feedloop_ingest::{Clock, Ingest, Processed, Settings};
use feedloop_memory::MemoryStore;

use feedloop_followup::handler::{DeliveryMode, DispatchReport, Dispatcher};
use feedloop_kit::ports::followup::{Requeue, StoreError};
use feedloop_memory::Outbox;

/// A clock the replay moves forward; every service of the replay reads it.
#[derive(Debug, Clone, Default)]
pub struct SimClock(Arc<AtomicI64>);

impl SimClock {
    pub fn at(t: DateTime<Utc>) -> SimClock {
        SimClock(Arc::new(AtomicI64::new(t.timestamp_micros())))
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }

    /// Never backwards: a message that arrives late does not rewind the services.
    pub fn advance_to(&self, t: DateTime<Utc>) {
        self.0.fetch_max(t.timestamp_micros(), Ordering::SeqCst);
    }

    pub fn clock(&self) -> Clock {
        let c = self.clone();
        Arc::new(move || c.now())
    }
}

/// A queued body by due time (µs) and then by order of arrival.
type Due = Reverse<(i64, u64, String)>;

/// The follow-up queue with SQS's delivery delay, on the simulated clock; clones share
/// the queue.
#[derive(Debug, Default, Clone)]
pub struct DelayQueue {
    clock: SimClock,
    items: Arc<Mutex<BinaryHeap<Due>>>,
    sequence: Arc<AtomicU64>,
}

impl DelayQueue {
    fn push(&self, body: String, delay: std::time::Duration) {
        let due = self.clock.now().timestamp_micros() + delay.as_micros() as i64;
        let seq = self.sequence.fetch_add(1, Ordering::SeqCst);
        self.lock().push(Reverse((due, seq, body)));
    }

    /// The next message due at or before `until`, with its due time.
    fn pop_due(&self, until: Option<DateTime<Utc>>) -> Option<(DateTime<Utc>, u64, String)> {
        let mut items = self.lock();
        let Reverse((due, _, _)) = items.peek()?;
        if until.is_some_and(|u| *due > u.timestamp_micros()) {
            return None;
        }
        let Reverse((due, seq, body)) = items.pop()?;
        Some((DateTime::from_timestamp_micros(due)?, seq, body))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Due>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Requeue for DelayQueue {
    async fn requeue(&self, body: &str, delay: std::time::Duration) -> Result<(), StoreError> {
        self.push(body.to_owned(), delay);
        Ok(())
    }
}

pub struct Replay {
    clock: SimClock,
    store: MemoryStore,
    ingest: Ingest<MemoryStore, MemoryStore>,
    dispatcher: Dispatcher<MemoryStore, Outbox, DelayQueue>,
    queue: DelayQueue,
    /// Intents ingest has put on the store's queue so far, moved to `queue`.
    taken: usize,
    report: DispatchReport,
}

impl Replay {
    /// `start` is the clock before the first message; `suppression_salt` only has to
    /// be the same for the whole replay.
    pub fn new(
        analyzer: Analyzer,
        settings: Settings,
        playbook: Playbook,
        policy: DispatchPolicy,
        start: DateTime<Utc>,
    ) -> Replay {
        let clock = SimClock::at(start);
        let store = MemoryStore::default();
        let queue = DelayQueue {
            clock: clock.clone(),
            ..DelayQueue::default()
        };
        let ingest = Ingest::new(store.clone(), analyzer, settings, clock.clock())
            .with_followups(playbook, store.clone());
        let dispatcher = Dispatcher::new(
            store.clone(),
            Outbox::default(),
            queue.clone(),
            "replay-suppression-salt",
            clock.clock(),
        )
        .with_policy(policy)
        .with_mode(DeliveryMode::DryRun);
        Replay {
            clock,
            store,
            ingest,
            dispatcher,
            queue,
            taken: 0,
            report: DispatchReport::default(),
        }
    }

    pub fn store(&self) -> MemoryStore {
        self.store.clone()
    }

    #[cfg(test)]
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// One message arriving at `at` (or now, if the clock is past it): follow-ups due
    /// before then go first, then ingest handles it. `Err`: the analyzer itself failed.
    pub async fn message(
        &mut self,
        message_id: &str,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<Processed, StoreError> {
        self.dispatch_until(Some(at)).await?;
        self.clock.advance_to(at);
        let processed = self.ingest.process(message_id, body).await?;
        let new: Vec<_> = self.store.with(|s| s.followup_queue[self.taken..].to_vec());
        self.taken += new.len();
        for intent in new {
            let body = serde_json::to_string(&intent)
                .map_err(|e| StoreError::Permanent(format!("encoding an intent: {e}")))?;
            self.queue.push(body, std::time::Duration::ZERO);
        }
        Ok(processed)
    }

    /// Run the dispatcher until no follow-up is left: each when it falls due.
    pub async fn finish(&mut self) -> Result<DispatchReport, StoreError> {
        self.dispatch_until(None).await?;
        Ok(self.report.clone())
    }

    async fn dispatch_until(&mut self, until: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        while let Some((due, seq, body)) = self.queue.pop_due(until) {
            self.clock.advance_to(due);
            let handled = self
                .dispatcher
                .process(&format!("intent-{seq}"), &body)
                .await?;
            self.report.count(&handled);
        }
        Ok(())
    }
}

/// When a message happened, read from its body without validating it (the ingest
/// service does that): its `occurred_at`, never after `now`. `None` when it has none.
pub fn occurred_at(body: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let t = DateTime::parse_from_rfc3339(v.get("occurred_at")?.as_str()?).ok()?;
    Some(t.with_timezone(&Utc).min(now))
}

/// Replay `messages` (id, body) in the order they happened (a message without a time
/// arrives at `now`; ties keep their order). Outcomes come back in input order.
pub async fn replay_all(
    replay: &mut Replay,
    messages: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Vec<Processed>, StoreError> {
    let mut order: Vec<(DateTime<Utc>, usize)> = messages
        .iter()
        .enumerate()
        .map(|(i, (_, body))| (occurred_at(body, now).unwrap_or(now), i))
        .collect();
    order.sort();
    let mut out: Vec<Option<Processed>> = vec![None; messages.len()];
    for (at, i) in order {
        let (id, body) = &messages[i];
        out[i] = Some(replay.message(id, body, at).await?);
    }
    Ok(out.into_iter().flatten().collect())
}
