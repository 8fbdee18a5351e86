//! Crash points at scale, in memory: the real ingest handler (follow-ups on) over the
//! in-memory store and an in-memory SQS with SQS's semantics (visibility timeout,
//! receive count, dead-letter queue after 5 receives), driven by several concurrent
//! pollers. Besides failed calls (before the store saw them, or after it applied them),
//! invocations are *abandoned* at store calls: the invocation's future is dropped, so
//! nothing after that point happens, no batch response is returned and every message
//! of the batch comes back after the visibility timeout — a Lambda timeout, an
//! out-of-memory kill or a deploy. After the queue drains (DLQ redriven), the store
//! must equal a fault-free run's: lost 0, double-counted 0.
//!
//! One thread, tokio's paused clock and seeded generators (fastrand included): a seed
//! replays the same run. `FEEDLOOP_CRASH_SEED=<seed> cargo test -p feedloop-tests --test
//! crash_chaos` reproduces a failure the test printed; `FEEDLOOP_CRASH_MESSAGES` sets
//! the size (default 100,000).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use feedloop_core::analysis::Analyzer;
use feedloop_core::envelope::CustomerId;
use feedloop_core::followup::outcomes::{Outcome, SentState};
use feedloop_core::followup::{FollowUpIntent, Playbook};
use feedloop_core::profile::Profile;
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_ingest::memory::MemoryStore;
use feedloop_ingest::poller::{succeeded, to_event};
use feedloop_ingest::ports::*;
use feedloop_ingest::{Ingest, Settings};
use feedloop_tests::compare::assert_same_effects;
use feedloop_tests::faults::{Faulty, Shared};
use feedloop_tests::{envelopes, test_now, Rng};
use tokio::sync::Notify;

const VISIBILITY: Duration = Duration::from_secs(30);
const MAX_RECEIVES: u32 = 5;
const POLLERS: usize = 4;
const BATCH: usize = 10;

tokio::task_local! {
    /// The running invocation's kill switch: a crash point pulls it.
    static INVOCATION: Arc<Notify>;
}

// ---------------------------------------------------------------- the queue

struct Stored {
    id: String,
    body: String,
    receives: u32,
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<Stored>,
    /// By message id: the message, when it becomes visible again, its receipt.
    in_flight: BTreeMap<String, (Stored, tokio::time::Instant, String)>,
    dlq: Vec<Stored>,
    next: u64,
}

/// SQS as the Lambda poller sees it: a received message is invisible for
/// `VISIBILITY`, then visible again unless deleted with its latest receipt; the
/// fifth receive that is not deleted moves it to the dead-letter queue.
#[derive(Default)]
struct SimQueue {
    state: Mutex<QueueState>,
    received: AtomicU64,
    redelivered: AtomicU64,
}

impl SimQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, body: String) {
        let mut s = self.lock();
        s.next += 1;
        let id = format!("m-{}", s.next);
        s.ready.push_back(Stored {
            id,
            body,
            receives: 0,
        });
    }

    /// Messages visible or in flight (the dead-letter queue aside).
    fn outstanding(&self) -> usize {
        let s = self.lock();
        s.ready.len() + s.in_flight.len()
    }

    fn take_dlq(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().dlq)
            .into_iter()
            .map(|m| m.body)
            .collect()
    }

    fn expire(&self, s: &mut QueueState) {
        let now = tokio::time::Instant::now();
        let due: Vec<String> = s
            .in_flight
            .iter()
            .filter(|(_, (_, until, _))| *until <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let (m, _, _) = s.in_flight.remove(&id).expect("listed above");
            if m.receives >= MAX_RECEIVES {
                s.dlq.push(m);
            } else {
                self.redelivered.fetch_add(1, Ordering::Relaxed);
                s.ready.push_back(m);
            }
        }
    }
}

impl MessageQueue for SimQueue {
    async fn receive(&self, max: usize) -> Result<Vec<QueueMessage>, StoreError> {
        let mut s = self.lock();
        self.expire(&mut s);
        let until = tokio::time::Instant::now() + VISIBILITY;
        let mut out = Vec::new();
        while out.len() < max {
            let Some(mut m) = s.ready.pop_front() else {
                break;
            };
            m.receives += 1;
            s.next += 1;
            let receipt = format!("r-{}", s.next);
            out.push(QueueMessage {
                message_id: m.id.clone(),
                receipt_handle: receipt.clone(),
                body: m.body.clone(),
            });
            s.in_flight.insert(m.id.clone(), (m, until, receipt));
        }
        self.received.fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(out)
    }

    async fn ack(&self, messages: &[QueueMessage]) -> Result<(), StoreError> {
        let mut s = self.lock();
        for m in messages {
            // A receipt from an earlier receive deletes nothing: the message was
            // handed to someone else meanwhile.
            if s.in_flight
                .get(&m.message_id)
                .is_some_and(|(_, _, r)| *r == m.receipt_handle)
            {
                s.in_flight.remove(&m.message_id);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- crash points

#[derive(Default)]
struct CrashCounts {
    calls: AtomicU64,
    abandoned_before: AtomicU64,
    abandoned_after: AtomicU64,
}

/// Pulls the running invocation's kill switch at a share of store calls, before the
/// call reaches the store or after the store applied it, and never returns.
struct Crashy<T> {
    inner: T,
    rate: f64,
    rng: Mutex<Rng>,
    counts: CrashCounts,
}

enum Crash {
    No,
    Before,
    After,
}

impl<T> Crashy<T> {
    fn roll(&self) -> Crash {
        self.counts.calls.fetch_add(1, Ordering::Relaxed);
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if !rng.chance(self.rate) {
            Crash::No
        } else if rng.chance(0.5) {
            self.counts.abandoned_before.fetch_add(1, Ordering::Relaxed);
            Crash::Before
        } else {
            self.counts.abandoned_after.fetch_add(1, Ordering::Relaxed);
            Crash::After
        }
    }

    /// Around one store call: another poller may run here (a real call waits on the
    /// network), then perhaps the crash.
    async fn call<R>(&self, f: impl std::future::Future<Output = R>) -> R {
        tokio::task::yield_now().await;
        match self.roll() {
            Crash::No => f.await,
            Crash::Before => abandon().await,
            Crash::After => {
                let _ = f.await;
                abandon().await
            }
        }
    }
}

async fn abandon<R>() -> R {
    if let Ok(kill) = INVOCATION.try_with(Arc::clone) {
        kill.notify_one();
    }
    std::future::pending().await
}

impl<T: ProfileStore> ProfileStore for Crashy<T> {
    async fn load_profile(&self, c: &CustomerId) -> Result<Option<Versioned<Profile>>, StoreError> {
        self.call(self.inner.load_profile(c)).await
    }
    async fn commit(&self, c: &Commit) -> Result<CommitOutcome, StoreError> {
        self.call(self.inner.commit(c)).await
    }
}

impl<T: RejectStore> RejectStore for Crashy<T> {
    async fn record_reject(&self, r: &RejectRecord) -> Result<(), StoreError> {
        self.call(self.inner.record_reject(r)).await
    }
}

impl<T: FollowUpSink> FollowUpSink for Crashy<T> {
    async fn enqueue(&self, i: &FollowUpIntent, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.call(self.inner.enqueue(i, now)).await
    }
    async fn stored_intent(
        &self,
        c: &CustomerId,
        key: &str,
    ) -> Result<Option<FollowUpIntent>, StoreError> {
        self.call(self.inner.stored_intent(c, key)).await
    }
    async fn pending(&self, c: &CustomerId) -> Result<Option<SentState>, StoreError> {
        self.call(self.inner.pending(c)).await
    }
    async fn record_outcome(
        &self,
        c: &CustomerId,
        sent: &SentState,
        outcome: &Outcome,
    ) -> Result<(), StoreError> {
        self.call(self.inner.record_outcome(c, sent, outcome)).await
    }
}

// ---------------------------------------------------------------- the run

fn service<S, F>(store: S, sink: F) -> Ingest<S, F>
where
    S: ProfileStore + RejectStore,
    F: FollowUpSink,
{
    Ingest::new(
        store,
        Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business()),
        Settings {
            half_life_days: 30.0,
            aggregate_shards: 8,
            max_concurrency: 8,
            max_followup_age_hours: 24 * 365,
        },
        Arc::new(test_now),
    )
    .with_followups(Playbook::default_rules(), sink)
}

/// The stream producers send: 2,000 customers, bursts from ten hot ones, 0.5% poison,
/// and 1% of messages sent twice (a producer retrying after a lost acknowledgement).
fn traffic(n: usize, seed: u64) -> (Vec<String>, usize) {
    let mut rng = Rng(seed);
    let base = n * 9 / 10;
    let mut bodies = envelopes(base, 2_000, seed);
    let hot = envelopes(n - base, 10, seed ^ 0x0407);
    for burst in hot.chunks(50) {
        let at = rng.below(bodies.len() as u64 + 1) as usize;
        bodies.splice(at..at, burst.iter().cloned());
    }
    let poison_bodies = [
        r#"{"feedback_id":"p","customer_id":"c","kind":"survey"}"#.to_owned(),
        "not json at all".to_owned(),
        r#"{"feedback_id":"p","customer_id":"c","kind":"survey","occurred_at":"2026-11-01T00:00:00Z","nps_score":11}"#.to_owned(),
        r#"{"feedback_id":"p","customer_id":"has space","kind":"review","occurred_at":"2026-11-01T00:00:00Z","rating":3}"#.to_owned(),
    ];
    let poison = n / 200;
    for i in 0..poison {
        let body =
            poison_bodies[i % poison_bodies.len()].replace("\"p\"", &format!("\"poison-{i}\""));
        let body = if body.starts_with("not json") {
            format!("not json at all #poison-{i}")
        } else {
            body
        };
        let at = rng.below(bodies.len() as u64 + 1) as usize;
        bodies.insert(at, body);
    }
    for _ in 0..n / 100 {
        let i = rng.below(bodies.len() as u64) as usize;
        let again = bodies[i].clone();
        let at = (i + 1 + rng.below(500) as usize).min(bodies.len());
        bodies.insert(at, again);
    }
    (bodies, poison)
}

#[derive(Default, Debug)]
struct Tally {
    invocations: u64,
    abandoned: u64,
    batch_failures: u64,
    conflicts: u64,
}

async fn poller<S, F, Q>(queue: &Q, sim: &SimQueue, svc: &Ingest<S, F>, tally: &Mutex<Tally>)
where
    S: ProfileStore + RejectStore,
    F: FollowUpSink,
    Q: MessageQueue,
{
    loop {
        let messages = match queue.receive(BATCH).await {
            Ok(m) => m,
            Err(_) => continue,
        };
        if messages.is_empty() {
            if sim.outstanding() == 0 {
                return;
            }
            // Messages in flight come back when their visibility ends.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let kill = Arc::new(Notify::new());
        let run = INVOCATION.scope(kill.clone(), svc.handle(to_event(&messages)));
        let outcome = tokio::select! {
            biased;
            _ = kill.notified() => None,
            r = run => Some(r),
        };
        let done = {
            let mut t = tally.lock().unwrap();
            t.invocations += 1;
            match outcome {
                None => {
                    t.abandoned += 1;
                    continue;
                }
                Some(Err(e)) => panic!("the handler failed the invocation: {e}"),
                Some(Ok((response, report))) => {
                    t.batch_failures += response.batch_item_failures.len() as u64;
                    t.conflicts += report.conflicts as u64;
                    succeeded(&messages, &response)
                }
            }
        };
        let _ = queue.ack(&done).await;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn crashes_and_faults_at_100k_lose_and_double_count_nothing() {
    let seed: u64 = std::env::var("FEEDLOOP_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_c4a5);
    let n: usize = std::env::var("FEEDLOOP_CRASH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    println!(
        "crash chaos: seed {seed} (reproduce: FEEDLOOP_CRASH_SEED={seed} FEEDLOOP_CRASH_MESSAGES={n} \
         cargo test -p feedloop-tests --test crash_chaos)"
    );
    fastrand::seed(seed);
    let started = std::time::Instant::now();
    let (bodies, poison) = traffic(n, seed);

    // The fault-free reference: every message once, in order.
    let reference = Arc::new(MemoryStore::default());
    let plain = service(Shared(reference.clone()), Shared(reference.clone()));
    for (i, b) in bodies.iter().enumerate() {
        plain.process(&format!("ref-{i}"), b).await.unwrap();
    }
    let want = reference.snapshot();
    let reference_secs = started.elapsed().as_secs_f64();

    let store = Arc::new(MemoryStore::default());
    let crashy = Arc::new(Crashy {
        inner: Faulty::new(Shared(store.clone()), 0.10, seed ^ 1),
        rate: 0.0008,
        rng: Mutex::new(Rng(seed ^ 2)),
        counts: CrashCounts::default(),
    });
    let svc = service(Shared(crashy.clone()), Shared(crashy.clone()));
    let sim = Arc::new(SimQueue::default());
    let queue = Faulty::new(Shared(sim.clone()), 0.10, seed ^ 3);
    for b in &bodies {
        sim.send(b.clone());
    }
    let tally = Mutex::new(Tally::default());
    let mut redriven = 0;
    loop {
        let pollers: Vec<_> = (0..POLLERS)
            .map(|_| poller(&queue, &sim, &svc, &tally))
            .collect();
        futures::future::join_all(pollers).await;
        // An operator redrives the dead-letter queue; so does the test.
        let dead = sim.take_dlq();
        if dead.is_empty() {
            break;
        }
        redriven += dead.len();
        for b in dead {
            sim.send(b);
        }
    }
    let got = store.snapshot();

    let lost = want
        .feedback
        .keys()
        .filter(|k| !got.feedback.contains_key(*k))
        .count();
    let counted: i64 = got
        .aggregates
        .values()
        .map(|c| c.get("fb").copied().unwrap_or(0))
        .sum();
    let double = counted - want.feedback.len() as i64 + lost as i64;
    let t = tally.lock().unwrap();
    let c = &crashy.counts;
    let store_faults = crashy.inner.counts.injected();
    let queue_faults = queue.counts.injected();
    let calls = c.calls.load(Ordering::Relaxed) + queue.counts.calls.load(Ordering::Relaxed);
    println!(
        "crash chaos: {} messages ({} poison, {} customers), {} invocations by {POLLERS} pollers, \
         {} abandoned ({} before a store call, {} after it), {} store faults ({} before/{} after), \
         {} queue faults ({} before/{} after) in {calls} calls, {} redeliveries, {} batch-item failures, \
         {} version conflicts retried, {redriven} redriven from the DLQ; lost {lost}, double-counted {double}; \
         reference {reference_secs:.1}s, all {:.1}s",
        bodies.len(),
        poison,
        want.profiles.len(),
        t.invocations,
        t.abandoned,
        c.abandoned_before.load(Ordering::Relaxed),
        c.abandoned_after.load(Ordering::Relaxed),
        store_faults,
        crashy.inner.counts.before.load(Ordering::Relaxed),
        crashy.inner.counts.after.load(Ordering::Relaxed),
        queue_faults,
        queue.counts.before.load(Ordering::Relaxed),
        queue.counts.after.load(Ordering::Relaxed),
        sim.redelivered.load(Ordering::Relaxed),
        t.batch_failures,
        t.conflicts,
        started.elapsed().as_secs_f64(),
    );
    assert!(
        (store_faults + queue_faults) as f64 >= 0.09 * calls as f64,
        "at least ~10% of calls fail"
    );
    assert!(
        t.abandoned as f64 >= 0.01 * t.invocations as f64,
        "at least 1% of invocations abandoned ({} of {})",
        t.abandoned,
        t.invocations
    );
    if n >= 100_000 {
        assert!(
            want.profiles.len() >= 2_000,
            "{} customers",
            want.profiles.len()
        );
    }
    assert_eq!((lost, double), (0, 0), "seed {seed}");
    // Which follow-up a feedback gets depends on the profile it meets, so on the order
    // messages were applied in, which redeliveries change; the rest of each record
    // must be the fault-free one, and every decided intent must have reached the
    // follow-up queue (and nothing else).
    let decided = |s: &feedloop_ingest::memory::MemoryState| -> BTreeSet<String> {
        s.feedback
            .values()
            .filter_map(|f| f.followup.as_ref())
            .map(|i| serde_json::to_string(i).unwrap())
            .collect()
    };
    let queued = |s: &feedloop_ingest::memory::MemoryState| -> BTreeSet<String> {
        s.followup_queue
            .iter()
            .map(|i| serde_json::to_string(i).unwrap())
            .collect()
    };
    assert_eq!(queued(&want), decided(&want), "the reference's hand-over");
    assert_eq!(
        queued(&got),
        decided(&got),
        "seed {seed}: an intent lost or invented"
    );
    let without_followups = |s: &feedloop_ingest::memory::MemoryState| {
        let mut s = s.clone();
        for f in s.feedback.values_mut() {
            f.followup = None;
        }
        s
    };
    assert_same_effects(&without_followups(&got), &without_followups(&want));
    // Every poison message recorded with its reason (a redriven one again under its
    // new message id: the same body), none applied.
    let rejected: BTreeSet<&str> = got
        .rejects
        .values()
        .map(|r| r.body_prefix.as_str())
        .collect();
    let want_rejected: BTreeSet<&str> = want
        .rejects
        .values()
        .map(|r| r.body_prefix.as_str())
        .collect();
    assert_eq!(rejected, want_rejected, "seed {seed}");
    assert!(got.rejects.values().all(|r| !r.reason.is_empty()));
}
