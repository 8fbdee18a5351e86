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
use feedloop_core::followup::templates::Templates;
use feedloop_core::followup::{FollowUpIntent, Playbook, Purpose};
use feedloop_core::profile::Profile;
use feedloop_followup::handler::{INTERRUPTED, UNCONFIRMED};
use feedloop_followup::{DeliveryMode, Dispatcher};
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

    /// A message that becomes visible after `delay` (SQS `DelaySeconds`).
    fn send_delayed(&self, body: String, delay: Duration) {
        let mut s = self.lock();
        s.next += 1;
        let id = format!("m-{}", s.next);
        let until = tokio::time::Instant::now() + delay;
        let m = Stored {
            id: id.clone(),
            body,
            receives: 0,
        };
        // No receipt was handed out: nobody can delete it before it is received.
        s.in_flight.insert(id, (m, until, String::new()));
    }

    /// How long until the next in-flight message becomes visible again.
    fn next_due(&self) -> Duration {
        let s = self.lock();
        let now = tokio::time::Instant::now();
        s.in_flight
            .values()
            .map(|(_, until, _)| until.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(100))
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

impl Requeue for SimQueue {
    async fn requeue(&self, body: &str, delay: Duration) -> Result<(), StoreError> {
        self.send_delayed(body.to_owned(), delay);
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
    let seed: u64 = env_or("FEEDLOOP_CRASH_SEED", 0x5eed_c4a5);
    let n: usize = env_or("FEEDLOOP_CRASH_MESSAGES", 100_000);
    println!(
        "crash chaos: seed {seed} (reproduce: FEEDLOOP_CRASH_SEED={seed} FEEDLOOP_CRASH_MESSAGES={n} \
         cargo test -p feedloop-tests --test crash_chaos)"
    );
    fastrand::seed(seed);
    let started = std::time::Instant::now();
    let (bodies, poison) = traffic(n, seed);

    // The fault-free reference: every message once, in order.
    let reference = Arc::new(MemoryStore::default());
    let plain = service(reference.clone(), reference.clone());
    for (i, b) in bodies.iter().enumerate() {
        plain.process(&format!("ref-{i}"), b).await.unwrap();
    }
    let want = reference.snapshot();
    let reference_secs = started.elapsed().as_secs_f64();

    let store = Arc::new(MemoryStore::default());
    let crashy = Arc::new(Crashy {
        inner: Faulty::new(store.clone(), 0.10, seed ^ 1),
        rate: 0.0008,
        rng: Mutex::new(Rng(seed ^ 2)),
        counts: CrashCounts::default(),
    });
    let svc = service(crashy.clone(), crashy.clone());
    let sim = Arc::new(SimQueue::default());
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

/// A message the provider took, filed under the claim it was sent for.
#[derive(Debug, Clone)]
struct Delivered {
    key: Key,
    purpose: Purpose,
    claimed_at: DateTime<Utc>,
    provider_id: String,
}

/// SES / SNS: refuses a share of sends for a passing reason (nothing delivered), and
/// loses the answer to a share of the sends it accepted (delivered, the caller hears
/// nothing). The inbox is what customers received.
struct Provider {
    rng: Mutex<Rng>,
    refuse: f64,
    lose_answer: f64,
    inbox: Mutex<Vec<Delivered>>,
    refused: AtomicU64,
    unanswered: AtomicU64,
}

impl Provider {
    fn new(refuse: f64, lose_answer: f64, seed: u64) -> Provider {
        Provider {
            rng: Mutex::new(Rng(seed)),
            refuse,
            lose_answer,
            inbox: Mutex::default(),
            refused: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
        }
    }
}

impl Deliver for Provider {
    async fn hand_to_staff(
        &self,
        _: &feedloop_kit::ports::followup::StaffTask,
    ) -> Result<(), DeliveryError> {
        Ok(())
    }

    async fn deliver(&self, _m: &Message, purpose: Purpose) -> Result<String, DeliveryError> {
        let (refuse, lose) = {
            let mut rng = self.rng.lock().unwrap();
            (rng.chance(self.refuse), rng.chance(self.lose_answer))
        };
        if refuse {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(DeliveryError::transient("Throttling: injected"));
        }
        let mut delivered = CLAIMED
            .try_with(|c| c.lock().unwrap().clone())
            .ok()
            .flatten()
            .expect("a send always follows a granted claim in the same invocation");
        assert_eq!(
            delivered.purpose, purpose,
            "sent for the purpose it was claimed for"
        );
        let mut inbox = self.inbox.lock().unwrap();
        delivered.provider_id = format!("prov-{}", inbox.len());
        let id = delivered.provider_id.clone();
        inbox.push(delivered);
        if lose {
            self.unanswered.fetch_add(1, Ordering::Relaxed);
            return Err(DeliveryError::unconfirmed("ses send: timeout (injected)"));
        }
        Ok(id)
    }
}

/// Surveys from customers with a contact block (e-mail, or phone with SMS consent),
/// all three NPS groups, a fifth of them from ten hot customers, within the last ten
/// hours: what makes the dispatcher send.
fn contact_traffic(n: usize, customers: u64, seed: u64) -> Vec<String> {
    let texts = [
        "The parcel never arrived and nobody answered.",
        "Lovely staff and really quick service!",
        "Charged twice for one order.",
        "Fine, nothing special.",
    ];
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let c = if rng.chance(0.2) {
                rng.below(10)
            } else {
                rng.below(customers)
            };
            let contact = if c % 3 == 0 {
                format!(r#"{{"name":"Customer {c}","phone":"+4477009{c:05}","consent":{{"sms":true}}}}"#)
            } else {
                format!(r#"{{"name":"Customer {c}","email":"c{c}@example.test","timezone":"Europe/London"}}"#)
            };
            let at = test_now() - chrono::Duration::minutes(rng.below(600) as i64);
            format!(
                r#"{{"feedback_id":"fu-{seed}-{i}","customer_id":"fu-{c:04}","kind":"survey","occurred_at":"{}","nps_score":{},"text":"{}","channel":"email","customer":{contact}}}"#,
                at.to_rfc3339(),
                rng.below(11),
                texts[rng.below(texts.len() as u64) as usize],
            )
        })
        .collect()
}

// The shipped windows. (Windows of hours would make capped service replies wait
// through the run in 15-minute hops; under this run's 5% of requeues that succeed but
// answer an error each hop may copy an intent, and the copies multiply. The copies are
// harmless, the claim dedupes them, but the run would take hours.)
const GLOBAL_WINDOW: Window = Window { hours: 7 * 24 };
const PLAYBOOK_WINDOW: Window = Window { hours: 30 * 24 };

fn dispatcher<S, D, Q>(store: S, deliver: D, requeue: Q) -> Dispatcher<S, D, Q> {
    // The clock moves with the run (tokio's paused clock): deferrals and backoffs
    // come due.
    let start = tokio::time::Instant::now();
    Dispatcher {
        store,
        deliver,
        requeue,
        templates: Templates::default_catalog(),
        policy: DispatchPolicy {
            company: Some("Acme Bikes".into()),
            caps: feedloop_core::followup::guards::CapPolicy {
                global: GLOBAL_WINDOW,
                playbook: PLAYBOOK_WINDOW,
            },
            ..DispatchPolicy::default()
        },
        mode: DeliveryMode::Live,
        suppression_salt: "chaos-salt".into(),
        clock: Arc::new(move || {
            test_now() + chrono::Duration::from_std(start.elapsed()).expect("a short run")
        }),
        // Shorter than the queue's visibility timeout, as the function timeout is.
        claim_lease: Duration::from_secs(10),
    }
}

type Key = feedloop_memory::AttemptKey;

/// The final record of every intent, by status, and the reasons of the failed ones.
#[derive(Debug, Default)]
struct Terminal {
    sent: usize,
    skipped: usize,
    failed_unconfirmed: usize,
    failed_interrupted: usize,
    failed_other: usize,
    missing: usize,
}

fn terminal(followups: &BTreeMap<Key, serde_json::Value>, intents: &BTreeSet<Key>) -> Terminal {
    let mut t = Terminal::default();
    for k in intents {
        let Some(v) = followups.get(k) else {
            t.missing += 1;
            continue;
        };
        let reason = v["reason"].as_str().unwrap_or("");
        match v["status"].as_str() {
            Some("sent") => t.sent += 1,
            Some("skipped") => {
                assert!(!reason.is_empty(), "a skip without its reason: {v}");
                t.skipped += 1
            }
            Some("failed") if reason.starts_with(UNCONFIRMED) => t.failed_unconfirmed += 1,
            Some("failed") if reason == INTERRUPTED => t.failed_interrupted += 1,
            Some("failed") => t.failed_other += 1,
            other => panic!("{k:?} ended {other:?}, not sent, skipped or failed: {v}"),
        }
    }
    t
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn follow_up_dispatch_under_crashes_and_faults_never_sends_twice() {
    let seed: u64 = env_or("FEEDLOOP_CRASH_SEED", 0x5eed_d15c);
    let n: usize = env_or("FEEDLOOP_DISPATCH_FEEDBACK", 10_000);
    println!(
        "dispatch chaos: seed {seed} (reproduce: FEEDLOOP_CRASH_SEED={seed} FEEDLOOP_DISPATCH_FEEDBACK={n} \
         cargo test -p feedloop-tests --test crash_chaos -- follow_up_dispatch)"
    );
    fastrand::seed(seed);
    let started = std::time::Instant::now();
    // The intents come from the real ingest, with the profiles (contact blocks) the
    // dispatcher reads: one world for the fault-free run, one for the chaos.
    let feedback = contact_traffic(n, 2_000, seed);
    let mut worlds = Vec::new();
    for _ in 0..2 {
        let store = Arc::new(MemoryStore::default());
        let ingest = service(store.clone(), store.clone());
        for (i, b) in feedback.iter().enumerate() {
            ingest.process(&format!("in-{i}"), b).await.unwrap();
        }
        worlds.push(store);
    }
    let mut rng = Rng(seed ^ 7);
    let mut bodies: Vec<String> = Vec::new();
    for intent in worlds[0].snapshot().followup_queue {
        let body = serde_json::to_string(&intent).unwrap();
        // A producer that re-sent an intent (ingest does after a lost enqueue answer).
        if rng.chance(0.02) {
            bodies.push(body.clone());
        }
        bodies.push(body);
    }
    let intents: BTreeSet<Key> = worlds[0]
        .snapshot()
        .followup_queue
        .iter()
        .map(|i| {
            (
                i.customer_id.clone(),
                i.feedback_id.clone(),
                i.playbook.clone(),
            )
        })
        .collect();
    let malformed = bodies.len() / 200;
    for i in 0..malformed {
        let at = rng.below(bodies.len() as u64 + 1) as usize;
        bodies.insert(
            at,
            format!(r#"{{"feedback_id":"bad-{i}","customer_id":"fu-0001"}}"#),
        );
    }

    // Fault-free.
    let reference = {
        let store = worlds[0].clone();
        let provider = Arc::new(Provider::new(0.0, 0.0, seed));
        let sim = Arc::new(SimQueue::default());
        // Crash rate 0: the wrapper only files each claim for the provider's ledger.
        let filed = Crashy {
            inner: store.clone(),
            rate: 0.0,
            rng: Mutex::new(Rng(seed)),
            counts: CrashCounts::default(),
        };
        let d = dispatcher(filed, provider.clone(), sim.clone());
        for b in &bodies {
            sim.send(b.clone());
        }
        let invoke = |event| async {
            let (response, _) = d.handle(event).await.expect("a valid batch");
            (response, 0)
        };
        drain(&sim.clone(), &sim, invoke, &Mutex::new(Tally::default())).await;
        let t = terminal(&store.snapshot().followups, &intents);
        let delivered = provider.inbox.lock().unwrap().len();
        (t, delivered)
    };

    // Crashes and faults: 10% of store, queue and provider calls fail, invocations
    // die at store calls, between claim and send, and between send and record.
    let store = worlds[1].clone();
    let crashy_store = Arc::new(Crashy {
        inner: Faulty::new(store.clone(), 0.10, seed ^ 11),
        rate: 0.0015,
        rng: Mutex::new(Rng(seed ^ 12)),
        counts: CrashCounts::default(),
    });
    let provider = Arc::new(Provider::new(0.06, 0.04, seed ^ 13));
    let crashy_send = Arc::new(Crashy {
        inner: provider.clone(),
        rate: 0.03,
        rng: Mutex::new(Rng(seed ^ 14)),
        counts: CrashCounts::default(),
    });
    let sim = Arc::new(SimQueue::default());
    let queue = Faulty::new(sim.clone(), 0.10, seed ^ 15);
    let requeue = Arc::new(Faulty::new(sim.clone(), 0.10, seed ^ 16));
    let d = dispatcher(crashy_store.clone(), crashy_send.clone(), requeue.clone());
    for b in &bodies {
        sim.send(b.clone());
    }
    let tally = Mutex::new(Tally::default());
    let deferred = AtomicU64::new(0);
    let invoke = |event| async {
        let (response, report) = d.handle(event).await.expect("a valid batch");
        deferred.fetch_add(u64::from(report.deferred), Ordering::Relaxed);
        (response, 0)
    };
    let redriven = drain(&queue, &sim, invoke, &tally).await;
    let got = store.snapshot();
    let t = terminal(&got.followups, &intents);
    let inbox = provider.inbox.lock().unwrap().clone();

    let tl = tally.lock().unwrap();
    let (sc, dc) = (&crashy_store.counts, &crashy_send.counts);
    let store_faults = crashy_store.inner.counts.injected() + requeue.counts.injected();
    let queue_faults = queue.counts.injected();
    let provider_faults =
        provider.refused.load(Ordering::Relaxed) + provider.unanswered.load(Ordering::Relaxed);
    let calls = crashy_store.inner.counts.calls.load(Ordering::Relaxed)
        + requeue.counts.calls.load(Ordering::Relaxed)
        + queue.counts.calls.load(Ordering::Relaxed)
        + dc.calls.load(Ordering::Relaxed);
    let malformed_recorded = got
        .rejects
        .values()
        .filter(|r| r.body_prefix.contains("\"bad-"))
        .map(|r| r.body_prefix.clone())
        .collect::<BTreeSet<_>>()
        .len();
    println!(
        "dispatch chaos: {} intents ({} distinct, {} sent twice by the producer, {malformed} malformed) from {n} feedback; \
         {} invocations by {POLLERS} pollers, {} abandoned ({} before a store call, {} after it, {} between claim and send, \
         {} between send and record); {store_faults} store faults ({} before/{} after), {queue_faults} queue faults, \
         {provider_faults} provider faults ({} refused, {} accepted but unanswered) in {calls} calls; {} redeliveries, \
         {} batch-item failures, {redriven} redriven from the DLQ; \
         terminal: {} sent, {} skipped, {} failed ({} unanswered, {} interrupted, {} other), {} without a record; \
         {} messages delivered, 0 twice; fault-free: {} sent, {} skipped, {} failed, {} delivered; {:.1}s",
        bodies.len(),
        intents.len(),
        bodies.len() - intents.len() - malformed,
        tl.invocations,
        tl.abandoned,
        sc.abandoned_before.load(Ordering::Relaxed),
        sc.abandoned_after.load(Ordering::Relaxed),
        dc.abandoned_before.load(Ordering::Relaxed),
        dc.abandoned_after.load(Ordering::Relaxed),
        crashy_store.inner.counts.before.load(Ordering::Relaxed) + requeue.counts.before.load(Ordering::Relaxed),
        crashy_store.inner.counts.after.load(Ordering::Relaxed) + requeue.counts.after.load(Ordering::Relaxed),
        provider.refused.load(Ordering::Relaxed),
        provider.unanswered.load(Ordering::Relaxed),
        sim.redelivered.load(Ordering::Relaxed),
        tl.batch_failures,
        t.sent,
        t.skipped,
        t.failed_unconfirmed + t.failed_interrupted + t.failed_other,
        t.failed_unconfirmed,
        t.failed_interrupted,
        t.failed_other,
        t.missing,
        inbox.len(),
        reference.0.sent,
        reference.0.skipped,
        reference.0.failed_unconfirmed + reference.0.failed_interrupted + reference.0.failed_other,
        reference.1,
        started.elapsed().as_secs_f64(),
    );

    // The run was what it claims to be.
    assert!(
        (store_faults + queue_faults + provider_faults) as f64 >= 0.09 * calls as f64,
        "at least ~10% of calls fail"
    );
    assert!(
        tl.abandoned as f64 >= 0.01 * tl.invocations as f64,
        "at least 1% of invocations abandoned ({} of {})",
        tl.abandoned,
        tl.invocations
    );
    assert!(
        dc.abandoned_before.load(Ordering::Relaxed) > 0
            && dc.abandoned_after.load(Ordering::Relaxed) > 0,
        "invocations died on both sides of the send"
    );
    assert!(
        reference.0.sent > 100,
        "the workload sends: {:?}",
        reference.0
    );
    assert_eq!(
        (
            reference.0.missing,
            reference.0.failed_unconfirmed
                + reference.0.failed_interrupted
                + reference.0.failed_other
        ),
        (0, 0),
        "fault-free, nothing fails"
    );
    assert_eq!(reference.1, reference.0.sent);

    // No customer receives the same (feedback, playbook) message twice.
    let mut seen = BTreeSet::new();
    for m in &inbox {
        assert!(
            seen.insert(m.key.clone()),
            "seed {seed}: {:?} delivered twice",
            m.key
        );
    }
    // Every intent ends in one terminal state; nothing is left claimed.
    assert_eq!(t.missing, 0, "seed {seed}: intents without a final record");
    assert!(
        got.followups.values().all(|v| v["status"] != "claimed"),
        "seed {seed}: an attempt left claimed"
    );
    // A sent record is a delivered message, with its provider id; a delivered message
    // without a sent record is one whose answer or record was lost, and says so.
    let by_key: BTreeMap<&Key, &Delivered> = inbox.iter().map(|m| (&m.key, m)).collect();
    for (k, v) in &got.followups {
        if v["status"] == "sent" {
            let m = by_key
                .get(k)
                .unwrap_or_else(|| panic!("seed {seed}: {k:?} recorded sent, never delivered"));
            assert_eq!(v["provider_id"], m.provider_id.as_str());
        }
    }
    for m in &inbox {
        let v = &got.followups[&m.key];
        let reason = v["reason"].as_str().unwrap_or("");
        assert!(
            v["status"] == "sent"
                || (v["status"] == "failed"
                    && (reason.starts_with(UNCONFIRMED) || reason == INTERRUPTED)),
            "seed {seed}: {:?} delivered but recorded {v}",
            m.key
        );
    }
    // Caps hold under concurrency, per purpose: a service reply follows another
    // service reply, and a marketing message any message, only after the global
    // window; a playbook repeats only after its own.
    let mut per_customer: BTreeMap<&CustomerId, Vec<&Delivered>> = BTreeMap::new();
    for m in &inbox {
        per_customer.entry(&m.key.0).or_default().push(m);
    }
    let mut service_after_marketing = 0;
    for (c, mut sent) in per_customer {
        sent.sort_by_key(|m| m.claimed_at);
        for (i, b) in sent.iter().enumerate() {
            for a in &sent[..i] {
                let gap = b.claimed_at - a.claimed_at;
                let same_purpose = a.purpose == b.purpose || b.purpose == Purpose::Marketing;
                assert!(
                    !same_purpose || gap >= GLOBAL_WINDOW.duration(),
                    "seed {seed}: {c} got a {:?} message {gap} after a {:?} one",
                    b.purpose,
                    a.purpose
                );
                assert!(
                    a.key.2 != b.key.2 || gap >= PLAYBOOK_WINDOW.duration(),
                    "seed {seed}: {c} got {} twice within {gap}",
                    b.key.2
                );
                if b.purpose == Purpose::Service
                    && a.purpose == Purpose::Marketing
                    && gap < GLOBAL_WINDOW.duration()
                {
                    service_after_marketing += 1;
                }
            }
        }
    }
    println!(
        "dispatch chaos: caps per purpose: {service_after_marketing} service replies inside a marketing window, \
         {} intents deferred",
        deferred.load(Ordering::Relaxed)
    );
    // The run exercised what purpose caps change.
    assert!(
        service_after_marketing > 0,
        "seed {seed}: no service reply followed a marketing send"
    );
    // Every malformed intent recorded with its reason.
    assert_eq!(malformed_recorded, malformed, "seed {seed}");
}
