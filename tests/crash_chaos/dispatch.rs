//! The follow-up dispatcher under the same crash points: a provider that refuses or
//! loses answers, several pollers, and every intent's terminal record checked.

use super::*;

/// SES / SNS: refuses a share of sends for a passing reason (nothing delivered), and
/// loses the answer to a share of the sends it accepted (delivered, the caller hears
/// nothing). The inbox is what customers received.
#[derive(Clone)]
struct Provider(Arc<ProviderState>);

impl std::ops::Deref for Provider {
    type Target = ProviderState;
    fn deref(&self) -> &ProviderState {
        &self.0
    }
}

struct ProviderState {
    rng: Mutex<Rng>,
    refuse: f64,
    lose_answer: f64,
    inbox: Mutex<Vec<Delivered>>,
    refused: AtomicU64,
    unanswered: AtomicU64,
}

impl Provider {
    fn new(refuse: f64, lose_answer: f64, seed: u64) -> Provider {
        Provider(Arc::new(ProviderState {
            rng: Mutex::new(Rng(seed)),
            refuse,
            lose_answer,
            inbox: Mutex::default(),
            refused: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
        }))
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
    let clock = Arc::new(move || {
        test_now() + chrono::Duration::from_std(start.elapsed()).expect("a short run")
    });
    Dispatcher::new(store, deliver, requeue, "chaos-salt", clock)
        .with_policy(DispatchPolicy {
            company: Some("Acme Bikes".into()),
            caps: feedloop_core::followup::guards::CapPolicy {
                global: GLOBAL_WINDOW,
                playbook: PLAYBOOK_WINDOW,
            },
            ..DispatchPolicy::default()
        })
        // Shorter than the queue's visibility timeout, as the function timeout is.
        .with_claim_lease(Duration::from_secs(10))
}

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
    let size = ("FEEDLOOP_DISPATCH_FEEDBACK", 10_000);
    let (seed, n) = run_settings(
        "dispatch chaos",
        0x5eed_d15c,
        size,
        " -- follow_up_dispatch",
    );
    let started = std::time::Instant::now();
    // The intents come from the real ingest, with the profiles (contact blocks) the
    // dispatcher reads: one world for the fault-free run, one for the chaos.
    let feedback = contact_traffic(n, 2_000, seed);
    let mut worlds = Vec::new();
    for _ in 0..2 {
        let store = MemoryStore::default();
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
        let provider = Provider::new(0.0, 0.0, seed);
        let sim = SimQueue::default();
        // Crash rate 0: the wrapper only files each claim for the provider's ledger.
        let filed = Crashy::new(store.clone(), 0.0, seed);
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
    let crashy_store = Crashy::new(
        Faulty::new(store.clone(), 0.10, seed ^ 11),
        0.0015,
        seed ^ 12,
    );
    let provider = Provider::new(0.06, 0.04, seed ^ 13);
    let crashy_send = Crashy::new(provider.clone(), 0.03, seed ^ 14);
    let sim = SimQueue::default();
    let queue = Faulty::new(sim.clone(), 0.10, seed ^ 15);
    let requeue = Faulty::new(sim.clone(), 0.10, seed ^ 16);
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
    tl.assert_chaotic(store_faults + queue_faults + provider_faults, calls);
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
