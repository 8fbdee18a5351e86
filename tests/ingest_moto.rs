//! The ingest path over the real DynamoDB and SQS protocols (moto server): what lands
//! in the table and on the queues, under duplicates, poison, transient faults,
//! concurrency and chaos.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use feedloop_aws::{schema, DynamoStore, SqsQueue};
use feedloop_core::envelope::CustomerId;
use feedloop_core::profile::Profile;
use feedloop_core::records::FeedbackRecord;
use feedloop_ingest::poller::{poll_once, to_event};
use feedloop_ingest::{Ingest, Settings};
use feedloop_kit::ports::ingest::*;
use feedloop_kit::ports::query::QueryStore;
use feedloop_memory::{MemoryState, MemoryStore};
use feedloop_tests::compare::assert_same_effects;
use feedloop_tests::faults::Faulty;
use feedloop_tests::harness::Stack;
use feedloop_tests::{envelopes, test_now};

const SHARDS: u16 = 4;

fn ingest<S: ProfileStore + RejectStore>(store: S) -> Ingest<S> {
    Ingest::lexicon(store, Arc::new(test_now)).with_settings(Settings {
        aggregate_shards: SHARDS,
        ..Settings::local(30.0)
    })
}

async fn dynamo(stack: &Stack) -> DynamoStore {
    DynamoStore::new(stack.ddb(), &stack.names.table, 365)
}

fn queue(stack: &Stack, url: &str) -> SqsQueue {
    SqsQueue::new(stack.sqs(), url, 0)
}

/// Compress SQS time: failed messages come back after `secs` instead of minutes.
async fn set_visibility(stack: &Stack, secs: u32) {
    stack
        .sqs()
        .set_queue_attributes()
        .queue_url(&stack.urls.ingest)
        .attributes(QueueAttributeName::VisibilityTimeout, secs.to_string())
        .send()
        .await
        .unwrap();
}

/// Poll like the Lambda service until the queue is empty (visible and in flight).
async fn drain<S, Q>(queue: &Q, sqs: &SqsQueue, ingest: &Ingest<S>) -> u64
where
    S: ProfileStore + RejectStore,
    Q: MessageQueue,
{
    let mut rounds = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        rounds += 1;
        match poll_once(queue, ingest, 10).await {
            Ok((n, _)) if n > 0 => continue,
            Ok(_) | Err(_) => {}
        }
        let (visible, in_flight) = sqs.depth().await.unwrap();
        if visible == 0 && in_flight == 0 {
            return rounds;
        }
        assert!(
            Instant::now() < deadline,
            "queue did not drain: {visible} visible, {in_flight} in flight"
        );
        tokio::time::sleep(Duration::from_millis(if visible > 0 { 10 } else { 200 })).await;
    }
}

async fn scan(stack: &Stack) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = stack
            .ddb()
            .scan()
            .table_name(&stack.names.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(out.items().iter().cloned());
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

fn attr<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> &'a str {
    item.get(k)
        .and_then(|v| v.as_s().or_else(|_| v.as_n()).ok())
        .map_or("", |s| s.as_str())
}

/// The table read back into the in-memory store's shape, for exact comparison.
async fn table_state(stack: &Stack) -> MemoryState {
    let mut state = MemoryState::default();
    let mut segment_counts: BTreeMap<String, i64> = BTreeMap::new();
    for item in scan(stack).await {
        match attr(&item, "type") {
            "profile" => {
                let p: Profile = serde_json::from_str(attr(&item, "data")).unwrap();
                let version = attr(&item, "version").parse().unwrap();
                state
                    .profiles
                    .insert(p.customer_id.to_string(), Versioned { value: p, version });
            }
            "feedback" => {
                let f: FeedbackRecord = serde_json::from_str(attr(&item, "data")).unwrap();
                state
                    .feedback
                    .insert((f.customer_id.to_string(), f.history_key()), f);
            }
            "reject" => {
                let r = RejectRecord {
                    message_id: attr(&item, "message_id").into(),
                    reason: attr(&item, "reason").into(),
                    body_prefix: attr(&item, "body").into(),
                    received_at: attr(&item, "received_at").parse().unwrap(),
                    customer_id: item.get("customer_id").and_then(|v| v.as_s().ok()).cloned(),
                };
                state.rejects.insert(r.message_id.clone(), r);
            }
            // Where a customer's rejects are, for erasure; the reject itself is above.
            "reject_pointer" => {}
            _ if attr(&item, schema::SK) == schema::keys::AGGREGATE => {
                let day = attr(&item, "day").parse().unwrap();
                let shard = attr(&item, "shard").parse().unwrap();
                let counters: BTreeMap<String, i64> = item
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.strip_prefix("c:")?.to_owned(),
                            v.as_n().ok()?.parse().ok()?,
                        ))
                    })
                    .collect();
                state.aggregates.insert((day, shard), counters);
            }
            _ if attr(&item, schema::SK) == schema::keys::SEGMENT_COUNT => {
                for (k, v) in &item {
                    if let Some(seg) = k.strip_prefix("n:") {
                        *segment_counts.entry(seg.to_owned()).or_insert(0) +=
                            v.as_n().unwrap().parse::<i64>().unwrap();
                    }
                }
            }
            _ if attr(&item, schema::PK) == schema::keys::AGGREGATE_SHARDS_PK => {}
            other => panic!("unexpected item type {other:?}"),
        }
    }
    // The segment sizes kept at write time agree with the profiles, under every fault.
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for p in state.profiles.values() {
        *want
            .entry(p.value.segment().as_str().to_owned())
            .or_insert(0) += 1;
    }
    segment_counts.retain(|_, n| *n != 0);
    assert_eq!(segment_counts, want, "segment counters vs profiles");
    state
}

/// Profiles hold float sums whose last bits depend on the order of application.
/// The fault-free, in-order reference: the same envelopes through the in-memory store.
async fn reference(bodies: &[String]) -> MemoryState {
    let svc = ingest(MemoryStore::default());
    for (i, b) in bodies.iter().enumerate() {
        svc.process(&format!("ref-{i}"), b).await.unwrap();
    }
    svc.store().snapshot()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_messages_become_profiles_feedback_and_aggregates() {
    let stack = Stack::start("e2e").await;
    let bodies = envelopes(120, 12, 1);
    let sqs = queue(&stack, &stack.urls.ingest);
    assert_eq!(sqs.send_all(&bodies).await.unwrap(), 120);
    let svc = ingest(dynamo(&stack).await);
    let t = Instant::now();
    drain(&sqs, &sqs, &svc).await;
    eprintln!(
        "end to end: 120 messages drained in {:.2}s",
        t.elapsed().as_secs_f64()
    );

    let got = table_state(&stack).await;
    assert_eq!(got.feedback.len(), 120);
    assert_eq!(got.profiles.len(), 12);
    assert_same_effects(&got, &reference(&bodies).await);

    let store = dynamo(&stack).await;
    let any = got.profiles.keys().next().unwrap().clone();
    let any_id = CustomerId::parse(&any).unwrap();
    let history = store.feedback_page(&any_id, 100, None).await.unwrap().items;
    assert_eq!(
        history.len() as u64,
        got.profiles[&any].value.feedback_count
    );
    assert!(
        history
            .windows(2)
            .all(|w| w[0].occurred_at >= w[1].occurred_at),
        "newest first"
    );
    let total: i64 = {
        let days: std::collections::BTreeSet<_> = got.aggregates.keys().map(|(d, _)| *d).collect();
        let (first, last) = (*days.first().unwrap(), *days.last().unwrap());
        store
            .clone()
            .with_aggregate_shards(SHARDS)
            .day_range_counters(first, last)
            .await
            .unwrap()
            .values()
            .map(|c| c.get("fb").copied().unwrap_or(0))
            .sum()
    };
    assert_eq!(total, 120, "aggregates count every feedback once");
    let segment = got.profiles[&any].value.segment();
    assert!(store
        .segment_page(segment, 100, None)
        .await
        .unwrap()
        .items
        .iter()
        .any(|m| m.customer_id == any_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_three_times_is_counted_once() {
    let stack = Stack::start("dup").await;
    let body = envelopes(1, 1, 2).remove(0);
    let sqs = queue(&stack, &stack.urls.ingest);
    sqs.send_all(&[body.clone(), body.clone(), body.clone()])
        .await
        .unwrap();
    let svc = ingest(dynamo(&stack).await);
    let mut duplicates = 0;
    while let Ok((n, report)) = poll_once(&sqs, &svc, 1).await {
        if n == 0 {
            break;
        }
        duplicates += report.duplicate;
    }
    assert_eq!(duplicates, 2);
    let state = table_state(&stack).await;
    assert_eq!(state.feedback.len(), 1);
    let p = state.profiles.values().next().unwrap();
    assert_eq!((p.value.feedback_count, p.version), (1, 1));
    assert_eq!(state.aggregates.values().map(|c| c["fb"]).sum::<i64>(), 1);
}

/// Fails every store call for the named customers, as a throttled partition would.
struct FailFor<S> {
    inner: S,
    customers: Vec<String>,
}

impl<S: ProfileStore> ProfileStore for FailFor<S> {
    async fn load_profile(&self, c: &CustomerId) -> Result<Option<Versioned<Profile>>, StoreError> {
        if self.customers.iter().any(|x| x == c.as_str()) {
            return Err(StoreError::Throttled(
                "injected: ProvisionedThroughputExceededException".into(),
            ));
        }
        self.inner.load_profile(c).await
    }
    async fn commit(&self, c: &Commit) -> Result<CommitOutcome, StoreError> {
        self.inner.commit(c).await
    }
}

impl<S: RejectStore> RejectStore for FailFor<S> {
    async fn record_reject(&self, r: &RejectRecord) -> Result<(), StoreError> {
        self.inner.record_reject(r).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_reports_exactly_the_transient_failures() {
    let stack = Stack::start("mixed").await;
    let good = r#"{"feedback_id":"g1","customer_id":"good","kind":"review","occurred_at":"2026-11-01T10:00:00Z","rating":5,"text":"Lovely"}"#;
    let flaky = r#"{"feedback_id":"f1","customer_id":"flaky","kind":"review","occurred_at":"2026-11-01T10:00:00Z","rating":1,"text":"Awful"}"#;
    let poison = r#"{"feedback_id":"p1","customer_id":"good","kind":"survey","occurred_at":"2026-11-01T10:00:00Z","nps_score":42}"#;
    let svc = ingest(FailFor {
        inner: dynamo(&stack).await,
        customers: vec!["flaky".into()],
    });
    let msgs: Vec<QueueMessage> = [
        ("m-good", good),
        ("m-flaky", flaky),
        ("m-poison", poison),
        ("m-junk", "%%%"),
    ]
    .iter()
    .map(|(id, body)| QueueMessage {
        message_id: (*id).into(),
        receipt_handle: format!("r-{id}"),
        body: (*body).into(),
    })
    .collect();
    let (response, report) = svc.handle(to_event(&msgs)).await.unwrap();
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-flaky"]);
    assert_eq!(
        (report.processed, report.rejected, report.retried),
        (1, 2, 1)
    );

    let state = table_state(&stack).await;
    assert_eq!(state.profiles.keys().collect::<Vec<_>>(), ["good"]);
    let poison_reject = &state.rejects["m-poison"];
    assert_eq!(
        poison_reject.reason,
        "envelope is invalid: nps_score: 42 is outside 0..=10"
    );
    assert_eq!(poison_reject.body_prefix, poison);
    assert_eq!(poison_reject.customer_id.as_deref(), Some("good"));
    assert!(state.rejects["m-junk"]
        .reason
        .starts_with("envelope is not valid JSON"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_always_fails_reaches_the_dlq_after_five_receives() {
    let stack = Stack::start("dlq").await;
    set_visibility(&stack, 1).await;
    let body = r#"{"feedback_id":"x1","customer_id":"doomed","kind":"review","occurred_at":"2026-11-01T10:00:00Z","rating":1,"text":"x"}"#;
    let sqs = queue(&stack, &stack.urls.ingest);
    sqs.send_all(&[body.to_owned()]).await.unwrap();
    let svc = ingest(FailFor {
        inner: dynamo(&stack).await,
        customers: vec!["doomed".into()],
    });
    let dlq = queue(&stack, &stack.urls.ingest_dlq);
    let mut receives = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (n, report) = poll_once(&sqs, &svc, 10).await.unwrap();
        if n > 0 {
            receives += 1;
            assert_eq!(report.retried, 1);
        }
        // Done when the message sits in the DLQ: moto may briefly count an expired
        // in-flight message as neither visible nor in flight.
        let (visible, in_flight) = sqs.depth().await.unwrap();
        let (dead, _) = dlq.depth().await.unwrap();
        if visible == 0 && in_flight == 0 && dead > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "message never moved to the DLQ");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(receives, schema::MAX_RECEIVE_COUNT);
    let dead = dlq.receive(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, body);
    assert!(table_state(&stack).await.profiles.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_concurrent_handlers_give_the_sequential_result() {
    let bodies = envelopes(200, 5, 3);
    let (stack, conflicts, _) = drained_by_four("conc", 2, &bodies).await;
    let got = table_state(&stack).await;
    assert_eq!(got.profiles.len(), 5);
    assert_same_effects(&got, &reference(&bodies).await);
    eprintln!(
        "concurrency: 200 messages, 5 customers, 4 handlers, {conflicts} version conflicts retried"
    );
}

/// A fresh stack whose ingest queue (`visibility` seconds) held `bodies`, drained by four
/// handlers: the stack, the version conflicts retried and how long the drain took.
async fn drained_by_four(name: &str, visibility: u32, bodies: &[String]) -> (Stack, u32, Duration) {
    let stack = Stack::start(name).await;
    set_visibility(&stack, visibility).await;
    let sqs = queue(&stack, &stack.urls.ingest);
    sqs.send_all(bodies).await.unwrap();
    let started = Instant::now();
    let conflicts = drain_concurrently(Arc::new(ingest(dynamo(&stack).await)), &sqs).await;
    (stack, conflicts, started.elapsed())
}

/// Four handlers draining the queue until it is empty; the version conflicts retried.
async fn drain_concurrently(svc: Arc<Ingest<DynamoStore>>, sqs: &SqsQueue) -> u32 {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (svc, q) = (svc.clone(), sqs.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                match poll_once(&q, &*svc, 10).await {
                    Ok((0, _)) => {
                        let (v, f) = q.depth().await.unwrap();
                        if v == 0 && f == 0 {
                            return conflicts;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok((_, r)) => conflicts += r.conflicts,
                    Err(e) => panic!("poll failed: {e}"),
                }
            }
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    conflicts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_1000_messages_for_one_customer_lands_exactly_once_each() {
    let bodies = envelopes(1_000, 1, 11);
    let (stack, conflicts, took) = drained_by_four("burst", 5, &bodies).await;
    let got = table_state(&stack).await;
    let profile = &got
        .profiles
        .values()
        .next()
        .expect("the customer's profile")
        .value;
    assert_eq!(
        (
            got.profiles.len(),
            got.feedback.len(),
            profile.feedback_count
        ),
        (1, 1_000, 1_000)
    );
    assert_same_effects(&got, &reference(&bodies).await);
    println!(
        "burst: 1000 messages for one customer, 4 handlers: {conflicts} version conflicts retried, {:.1}s",
        took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_faults_lose_and_double_count_nothing() {
    let n: usize = std::env::var("FEEDLOOP_CHAOS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let stack = Stack::start("chaos").await;
    set_visibility(&stack, 2).await;
    let mut bodies = envelopes(n, 300, 4);
    // A few poison messages ride along: they must be rejected once, not retried.
    for i in 0..20 {
        bodies.insert(
            i * (n / 20).max(1),
            format!(r#"{{"feedback_id":"poison-{i}","customer_id":"x","kind":"survey"}}"#),
        );
    }
    let sqs = queue(&stack, &stack.urls.ingest);
    let store = Faulty::new(dynamo(&stack).await, 0.10, 0xc4a05);
    let q = Faulty::new(sqs.clone(), 0.10, 0x9e1e);
    let svc = Arc::new(ingest(store.clone()));
    let started = Instant::now();
    // moto's SQS costs O(queue length) per call, so the producer keeps the backlog
    // short, like a steady real-world stream, while four pollers consume.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (plain, done, bodies) = (sqs.clone(), done.clone(), bodies.clone());
        tokio::spawn(async move {
            for chunk in bodies.chunks(100) {
                // Depth is an O(queue) call on moto: ask rarely.
                while plain.depth().await.unwrap().0 > 200 {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                plain.send_all(chunk).await.unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let mut redriven = 0;
    loop {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (svc, q, plain, done) = (svc.clone(), q.clone(), sqs.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Ok((0, _)) = poll_once(&q, &*svc, 10).await {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                drain(&q, &plain, &*svc).await
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Messages unlucky enough to fail five times sit in the DLQ; an operator
        // redrives them, and so does this test.
        let dlq = queue(&stack, &stack.urls.ingest_dlq);
        let mut moved = Vec::new();
        loop {
            let batch = dlq.receive(10).await.unwrap();
            if batch.is_empty() {
                break;
            }
            moved.extend(batch.iter().map(|m| m.body.clone()));
            dlq.ack(&batch).await.unwrap();
        }
        if moved.is_empty() {
            break;
        }
        redriven += moved.len();
        sqs.send_all(&moved).await.unwrap();
    }
    producer.await.unwrap();
    let got = table_state(&stack).await;
    let valid: Vec<String> = bodies
        .iter()
        .filter(|b| !b.contains("poison-"))
        .cloned()
        .collect();
    let want = reference(&valid).await;
    let (lost, double) = feedloop_tests::compare::lost_and_double_counted(&got, &want);
    let faults = store.counts.injected() + q.counts.injected();
    let calls = store
        .counts
        .calls
        .load(std::sync::atomic::Ordering::Relaxed)
        + q.counts.calls.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "chaos: {} messages ({} valid, 20 poison), {calls} adapter calls, {faults} faults injected \
         ({} store before/{} store after/{} queue before/{} queue after), {redriven} redriven from the DLQ, \
         lost {lost}, double-counted {double}, {:.1}s",
        bodies.len(), valid.len(),
        store.counts.before.load(std::sync::atomic::Ordering::Relaxed), store.counts.after.load(std::sync::atomic::Ordering::Relaxed),
        q.counts.before.load(std::sync::atomic::Ordering::Relaxed), q.counts.after.load(std::sync::atomic::Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    assert!(
        faults as f64 >= 0.09 * calls as f64,
        "at least ~10% of calls fail"
    );
    assert_eq!((lost, double), (0, 0));
    // A poison message whose receives were all lost in transit reaches the DLQ too and
    // comes back under a new message id: rejected again, never applied.
    let rejected_bodies: std::collections::BTreeSet<&str> = got
        .rejects
        .values()
        .map(|r| r.body_prefix.as_str())
        .collect();
    assert_eq!(rejected_bodies.len(), 20);
    assert!(rejected_bodies.iter().all(|b| b.contains("poison-")));
    assert_same_effects(
        &MemoryState {
            rejects: Default::default(),
            ..got
        },
        &want,
    );
}
