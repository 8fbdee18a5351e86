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

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use feedloop_core::envelope::CustomerId;
use feedloop_core::followup::guards::Window;
use feedloop_core::followup::outcomes::{Outcome, SentState};
use feedloop_core::followup::plan::{DispatchPolicy, Message};
use feedloop_core::followup::{FollowUpIntent, Playbook, Purpose};
use feedloop_core::profile::Profile;
use feedloop_followup::handler::{INTERRUPTED, UNCONFIRMED};
use feedloop_followup::Dispatcher;
use feedloop_ingest::poller::{succeeded, to_event};
use feedloop_ingest::{Ingest, Settings};
use feedloop_kit::ports::followup::{
    AttemptRecord, Claim, ClaimRequest, Deliver, DeliveryError, FollowUpStore, Recorded, Requeue,
    Settle, SuppressionList,
};
use feedloop_kit::ports::ingest::*;
use feedloop_memory::MemoryStore;
use feedloop_tests::compare::assert_same_effects;
use feedloop_tests::faults::Faulty;
use feedloop_tests::{env_or, envelopes, test_now, Rng};
use tokio::sync::Notify;

const VISIBILITY: Duration = Duration::from_secs(30);
const MAX_RECEIVES: u32 = 5;
const POLLERS: usize = 4;
const BATCH: usize = 10;

tokio::task_local! {
    /// The running invocation's kill switch: a crash point pulls it.
    static INVOCATION: Arc<Notify>;
    /// The claim the dispatcher was last granted in this invocation: the provider
    /// files a delivery under it (an invocation handles one intent at a time).
    static CLAIMED: Mutex<Option<Delivered>>;
}

#[path = "crash_chaos/queue.rs"]
mod queue;
use queue::SimQueue;

// ---------------------------------------------------------------- crash points

#[derive(Default)]
struct CrashCounts {
    calls: AtomicU64,
    abandoned_before: AtomicU64,
    abandoned_after: AtomicU64,
}

/// Pulls the running invocation's kill switch at a share of store calls, before the
/// call reaches the store or after the store applied it, and never returns.
/// Clones share the generator and the counts (one crash sequence for every holder).
struct Crashy<T>(Arc<CrashState<T>>);

struct CrashState<T> {
    inner: T,
    rate: f64,
    rng: Mutex<Rng>,
    counts: CrashCounts,
}

impl<T> Clone for Crashy<T> {
    fn clone(&self) -> Self {
        Crashy(Arc::clone(&self.0))
    }
}

impl<T> std::ops::Deref for Crashy<T> {
    type Target = CrashState<T>;
    fn deref(&self) -> &CrashState<T> {
        &self.0
    }
}

enum Crash {
    No,
    Before,
    After,
}

impl<T> Crashy<T> {
    fn new(inner: T, rate: f64, seed: u64) -> Crashy<T> {
        Crashy(Arc::new(CrashState {
            inner,
            rate,
            rng: Mutex::new(Rng(seed)),
            counts: CrashCounts::default(),
        }))
    }

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

impl<T: FollowUpStore> FollowUpStore for Crashy<T> {
    async fn contact(
        &self,
        c: &feedloop_core::envelope::CustomerId,
    ) -> Result<Option<feedloop_core::envelope::CustomerInfo>, StoreError> {
        self.call(self.inner.contact(c)).await
    }
    async fn suppressed_among(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        self.call(self.inner.suppressed_among(keys)).await
    }
    async fn claim(&self, r: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let got = self.call(self.inner.claim(r)).await;
        if let Ok(Claim::Granted) = got {
            let _ = CLAIMED.try_with(|c| {
                *c.lock().unwrap() = Some(Delivered {
                    key: (
                        r.customer_id.clone(),
                        r.feedback_id.clone(),
                        r.playbook.clone(),
                    ),
                    purpose: r.purpose,
                    claimed_at: r.now,
                    provider_id: String::new(),
                })
            });
        }
        got
    }
    async fn release(&self, r: &ClaimRequest<'_>, keep: bool) -> Result<(), StoreError> {
        self.call(self.inner.release(r, keep)).await
    }
    async fn record(&self, a: &AttemptRecord) -> Result<(), StoreError> {
        self.call(self.inner.record(a)).await
    }
    async fn record_claimed(&self, a: &AttemptRecord) -> Result<Recorded, StoreError> {
        self.call(self.inner.record_claimed(a)).await
    }
    async fn settle_interrupted(
        &self,
        a: &AttemptRecord,
        before: DateTime<Utc>,
    ) -> Result<Settle, StoreError> {
        self.call(self.inner.settle_interrupted(a, before)).await
    }
}

impl<T: SuppressionList> SuppressionList for Crashy<T> {
    async fn suppress(
        &self,
        k: &[String],
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(self.inner.suppress(k, why, now)).await
    }
    async fn lift(&self, k: &[String]) -> Result<u32, StoreError> {
        self.call(self.inner.lift(k)).await
    }
    async fn count_soft_bounce(
        &self,
        k: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        self.call(self.inner.count_soft_bounce(k, id, now)).await
    }
}

impl<T: Requeue> Requeue for Crashy<T> {
    async fn requeue(&self, body: &str, delay: Duration) -> Result<(), StoreError> {
        self.call(self.inner.requeue(body, delay)).await
    }
}

/// Around the provider, "before" is between the claim and the send and "after" is
/// between the send and the record.
impl<T: Deliver> Deliver for Crashy<T> {
    async fn deliver(&self, m: &Message, p: Purpose) -> Result<String, DeliveryError> {
        self.call(self.inner.deliver(m, p)).await
    }
    // Not a fault point: the run's figures stay those of the message path.
    async fn hand_to_staff(
        &self,
        t: &feedloop_kit::ports::followup::StaffTask,
    ) -> Result<(), DeliveryError> {
        self.inner.hand_to_staff(t).await
    }
}

// ---------------------------------------------------------------- the run

fn service<S, F>(store: S, sink: F) -> Ingest<S, F>
where
    S: ProfileStore + RejectStore,
    F: FollowUpSink,
{
    Ingest::lexicon(store, Arc::new(test_now))
        .with_settings(Settings {
            max_followup_age_hours: 24 * 365,
            ..Settings::local(30.0)
        })
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

impl Tally {
    /// The run was what it claims to be: about a tenth of the adapter calls failed and
    /// at least one invocation in a hundred died part-way.
    fn assert_chaotic(&self, faults: u64, calls: u64) {
        assert!(
            faults as f64 >= 0.09 * calls as f64,
            "at least ~10% of calls fail ({faults} of {calls})"
        );
        assert!(
            self.abandoned as f64 >= 0.01 * self.invocations as f64,
            "at least 1% of invocations abandoned ({} of {})",
            self.abandoned,
            self.invocations
        );
    }
}

/// The run's seed and size, from the environment or the defaults, printed with the
/// command that repeats the run (`filter` picks the test); the shared generator seeded.
fn run_settings(
    name: &str,
    default_seed: u64,
    (size_var, default_size): (&str, usize),
    filter: &str,
) -> (u64, usize) {
    let seed: u64 = env_or("FEEDLOOP_CRASH_SEED", default_seed);
    let n: usize = env_or(size_var, default_size);
    println!(
        "{name}: seed {seed} (reproduce: FEEDLOOP_CRASH_SEED={seed} {size_var}={n} \
         cargo test -p feedloop-tests --test crash_chaos{filter})"
    );
    fastrand::seed(seed);
    (seed, n)
}

/// One Lambda poller: receive a batch, invoke, delete what the response did not name
/// as failed. `invoke` answers the batch response and the version conflicts retried.
async fn poller<Q, H, Fut>(queue: &Q, sim: &SimQueue, invoke: H, tally: &Mutex<Tally>)
where
    Q: MessageQueue,
    H: Fn(SqsEvent) -> Fut,
    Fut: std::future::Future<Output = (SqsBatchResponse, u64)>,
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
            // Messages in flight or delayed come back when their time comes.
            tokio::time::sleep(sim.next_due()).await;
            continue;
        }
        let kill = Arc::new(Notify::new());
        let run = INVOCATION.scope(
            kill.clone(),
            CLAIMED.scope(Mutex::new(None), invoke(to_event(&messages))),
        );
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
                Some((response, conflicts)) => {
                    t.batch_failures += response.batch_item_failures.len() as u64;
                    t.conflicts += conflicts;
                    succeeded(&messages, &response)
                }
            }
        };
        let _ = queue.ack(&done).await;
    }
}

/// Pollers until the queue is empty, then the dead-letter queue redriven, until both
/// are; how many messages were redriven.
async fn drain<Q, H, Fut>(queue: &Q, sim: &SimQueue, invoke: H, tally: &Mutex<Tally>) -> usize
where
    Q: MessageQueue,
    H: Fn(SqsEvent) -> Fut,
    Fut: std::future::Future<Output = (SqsBatchResponse, u64)>,
{
    let mut redriven = 0;
    loop {
        let pollers: Vec<_> = (0..POLLERS)
            .map(|_| poller(queue, sim, &invoke, tally))
            .collect();
        futures::future::join_all(pollers).await;
        // An operator redrives the dead-letter queue; so does the test.
        let dead = sim.take_dlq();
        if dead.is_empty() {
            return redriven;
        }
        redriven += dead.len();
        for b in dead {
            sim.send(b);
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn crashes_and_faults_at_100k_lose_and_double_count_nothing() {
    let (seed, n) = run_settings(
        "crash chaos",
        0x5eed_c4a5,
        ("FEEDLOOP_CRASH_MESSAGES", 100_000),
        "",
    );
    let started = std::time::Instant::now();
    let (bodies, poison) = traffic(n, seed);

    // The fault-free reference: every message once, in order.
    let reference = MemoryStore::default();
    let plain = service(reference.clone(), reference.clone());
    for (i, b) in bodies.iter().enumerate() {
        plain.process(&format!("ref-{i}"), b).await.unwrap();
    }
    let want = reference.snapshot();
    let reference_secs = started.elapsed().as_secs_f64();

    let store = MemoryStore::default();
    let crashy = Crashy::new(Faulty::new(store.clone(), 0.10, seed ^ 1), 0.0008, seed ^ 2);
    let svc = service(crashy.clone(), crashy.clone());
    let sim = SimQueue::default();
    let queue = Faulty::new(sim.clone(), 0.10, seed ^ 3);
    for b in &bodies {
        sim.send(b.clone());
    }
    let tally = Mutex::new(Tally::default());
    let invoke = |event| async {
        let (response, report) = svc
            .handle(event)
            .await
            .unwrap_or_else(|e| panic!("the handler failed the invocation: {e}"));
        (response, report.conflicts as u64)
    };
    let redriven = drain(&queue, &sim, invoke, &tally).await;
    let got = store.snapshot();

    let (lost, double) = feedloop_tests::compare::lost_and_double_counted(&got, &want);
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
    t.assert_chaotic(store_faults + queue_faults, calls);
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
    let decided = |s: &feedloop_memory::MemoryState| -> BTreeSet<String> {
        s.feedback
            .values()
            .filter_map(|f| f.followup.as_ref())
            .map(|i| serde_json::to_string(i).unwrap())
            .collect()
    };
    let queued = |s: &feedloop_memory::MemoryState| -> BTreeSet<String> {
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
    let without_followups = |s: &feedloop_memory::MemoryState| {
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

// ---------------------------------------------------------------- follow-up dispatch

type Key = feedloop_memory::AttemptKey;

/// A message the provider took, filed under the claim it was sent for.
#[derive(Debug, Clone)]
struct Delivered {
    key: Key,
    purpose: Purpose,
    claimed_at: DateTime<Utc>,
    provider_id: String,
}

#[path = "crash_chaos/dispatch.rs"]
mod dispatch;
