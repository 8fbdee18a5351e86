//! `make bench-api`: a bounded load run of the HTTP API's routes, in process (the
//! router the Lambda adapter calls), over the in-memory store and over DynamoDB on a
//! moto server this run starts on 127.0.0.1 and stops. Data first, through the real
//! ingest: 10,000 promoters (one survey each) and one customer with 1,000 feedback
//! items. Then per route a fixed number of requests at a fixed concurrency (requests/s,
//! p50, p99), the cursor walk of the whole promoter segment, and the erase of the
//! 1,000-feedback customer (time, items deleted, nothing left).
//!
//! Sizes: `FEEDLOOP_LOAD_CUSTOMERS` (10,000), `FEEDLOOP_LOAD_HOT_FEEDBACK` (1,000),
//! `FEEDLOOP_LOAD_REQUESTS` per route (2,000 in memory, a tenth on moto),
//! `FEEDLOOP_LOAD_STORES` (`memory,moto`).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{TimeZone, Utc};
use feedloop_api::Api;
use feedloop_aws::DynamoStore;
use feedloop_ingest::{Ingest, Settings};
use feedloop_kit::ports::ingest::{ProfileStore, RejectStore};
use feedloop_kit::ports::query::QueryStore;
use feedloop_memory::MemoryStore;
use feedloop_tests::harness::Stack;
use futures::StreamExt;

/// A route's label, its path template and its query parameters.
type Route = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

const CONCURRENCY: usize = 8;
const HOT: &str = "lt-hot";
const SECRET: &str = "api-load-run-secret-0123456789abcdef";

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn env_usize(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bodies(customers: usize, hot: usize) -> Vec<String> {
    let promoters = (0..customers).map(|i| {
        serde_json::json!({
            "feedback_id": format!("fb-{i}"), "customer_id": format!("lt-{i:05}"),
            "kind": "survey", "nps_score": 9 + i % 2,
            "occurred_at": format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + i % 29, i % 24, i % 60),
            "text": "Lovely staff and really quick service!",
        })
        .to_string()
    });
    let hot = (0..hot).map(|i| {
        serde_json::json!({
            "feedback_id": format!("fb-hot-{i}"), "customer_id": HOT,
            "kind": "review", "rating": 1 + i % 5,
            "occurred_at": format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + i % 29, i % 24, i % 60),
            "text": "The parcel never arrived and nobody answered my emails.",
        })
        .to_string()
    });
    promoters.chain(hot).collect()
}

async fn seed<S: ProfileStore + RejectStore>(store: S, bodies: &[String]) {
    let ingest = Ingest::lexicon(store, Arc::new(now)).with_settings(Settings {
        max_followup_age_hours: 72,
        ..Settings::local(30.0)
    });
    let started = Instant::now();
    let batches: Vec<SqsEvent> = bodies
        .chunks(25)
        .enumerate()
        .map(|(k, chunk)| {
            let ids = (0..).map(|i| Some(format!("m-{k}-{i}")));
            feedloop_kit::batch::event(ids.zip(chunk.iter().cloned()))
        })
        .collect();
    let mut pending: Vec<SqsEvent> = batches;
    // Redelivered until applied, as SQS would (version conflicts on the hot customer).
    while !pending.is_empty() {
        let results: Vec<(SqsEvent, Vec<String>)> = futures::stream::iter(pending)
            .map(|e| async {
                let (response, _) = ingest.handle(e.clone()).await.expect("a valid batch");
                let failed = response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect();
                (e, failed)
            })
            .buffer_unordered(4)
            .collect()
            .await;
        pending = results
            .into_iter()
            .filter(|(_, failed)| !failed.is_empty())
            .map(|(mut e, failed)| {
                e.records
                    .retain(|r| failed.contains(r.message_id.as_ref().expect("set above")));
                e
            })
            .collect();
    }
    println!(
        "  seeded {} messages through the ingest handler in {:.1}s",
        bodies.len(),
        started.elapsed().as_secs_f64()
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn get<S: QueryStore>(
    api: &Api<S>,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let q: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let r = api.handle(method, path, &q).await;
    let body = serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, body)
}

async fn run<S, L, LF>(
    label: &str,
    api: Arc<Api<S>>,
    customers: usize,
    hot: usize,
    requests: usize,
    left: L,
) where
    S: QueryStore + Send + Sync + 'static,
    L: Fn() -> LF,
    LF: Future<Output = usize>,
{
    println!("{label}: {requests} requests per route, {CONCURRENCY} in flight");
    println!("  | route | requests/s | p50 ms | p99 ms |");
    println!("  |---|---|---|---|");
    let routes: [Route; 8] = [
        ("GET /customers/{id}", "/customers/{id}", vec![]),
        (
            "GET /customers/{id}/feedback",
            "/customers/{id}/feedback",
            vec![("limit", "50")],
        ),
        (
            "GET /customers/{id}/followups",
            "/customers/{id}/followups",
            vec![],
        ),
        (
            "GET /customers/{hot}/feedback",
            "/customers/lt-hot/feedback",
            vec![("limit", "100")],
        ),
        (
            "GET /segments/promoter",
            "/segments/promoter",
            vec![("limit", "100")],
        ),
        (
            "GET /reports/nps (30 days)",
            "/reports/nps",
            vec![("from", "2026-11-01"), ("to", "2026-11-30")],
        ),
        (
            "GET /reports/drivers (30 days)",
            "/reports/drivers",
            vec![("from", "2026-11-01"), ("to", "2026-11-30")],
        ),
        ("GET /reports/followups", "/reports/followups", vec![]),
    ];
    for (name, path, query) in routes {
        let started = Instant::now();
        let latencies: Vec<Duration> = futures::stream::iter(0..requests)
            .map(|i| {
                let api = api.clone();
                let path = path.replace("{id}", &format!("lt-{:05}", (i * 7919) % customers));
                let query = query.clone();
                async move {
                    let t = Instant::now();
                    let (status, body) = get(&api, "GET", &path, &query).await;
                    assert_eq!(status, 200, "{path}: {body}");
                    t.elapsed()
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let wall = started.elapsed();
        let mut sorted = latencies;
        sorted.sort();
        println!(
            "  | {name} | {:.0} | {:.2} | {:.2} |",
            requests as f64 / wall.as_secs_f64(),
            ms(percentile(&sorted, 0.50)),
            ms(percentile(&sorted, 0.99)),
        );
    }

    // The whole promoter segment, page by page.
    let started = Instant::now();
    let (mut seen, mut pages, mut cursor) = (BTreeSet::new(), 0, None::<String>);
    let mut slowest = Duration::ZERO;
    loop {
        let mut q = vec![("limit", "100")];
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
        }
        let t = Instant::now();
        let (status, page) = get(&api, "GET", "/segments/promoter", &q).await;
        slowest = slowest.max(t.elapsed());
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for m in page["items"].as_array().expect("items") {
            let id = m["customer_id"].as_str().expect("customer_id").to_owned();
            assert!(seen.insert(id), "a customer twice in one walk");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), customers, "every promoter once");
    println!(
        "  segment walk: {} customers in {pages} pages of 100, {:.2}s ({:.1} ms a page, slowest {:.1} ms)",
        seen.len(),
        started.elapsed().as_secs_f64(),
        ms(started.elapsed()) / pages as f64,
        ms(slowest),
    );

    // The erase of the customer with `hot` feedback items.
    let before = left().await;
    let started = Instant::now();
    let (status, erased) = get(&api, "DELETE", "/customers/lt-hot", &[]).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{erased}");
    let d = &erased["deleted"];
    assert_eq!(d["feedback"].as_u64(), Some(hot as u64), "{erased}");
    let after = left().await;
    let (status, _) = get(&api, "GET", "/customers/lt-hot", &[]).await;
    assert_eq!((after, status), (0, 404), "nothing of the customer left");
    println!(
        "  erase: {} of the customer's items before, deleted in {:.2}s (profile {}, feedback {}, follow-ups {}, other {}), {after} left, GET /customers/lt-hot -> {status}",
        before,
        took.as_secs_f64(),
        d["profile"],
        d["feedback"],
        d["followups"],
        d["other"],
    );
}

fn main() {
    let customers = env_usize("FEEDLOOP_LOAD_CUSTOMERS", 10_000);
    let hot = env_usize("FEEDLOOP_LOAD_HOT_FEEDBACK", 1_000);
    let requests = env_usize("FEEDLOOP_LOAD_REQUESTS", 2_000);
    let stores = std::env::var("FEEDLOOP_LOAD_STORES").unwrap_or_else(|_| "memory,moto".into());
    let bodies = bodies(customers, hot);
    let keys = feedloop_core::keys::StackKeys::derive(SECRET).expect("long enough");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        if stores.contains("memory") {
            let store = MemoryStore::default();
            println!("in-memory store");
            seed(store.clone(), &bodies).await;
            let api = Arc::new(Api {
                store: store.clone(),
                keys: keys.clone(),
                clock: Arc::new(now),
            });
            let left = || async {
                let s = store.snapshot();
                s.feedback.keys().filter(|k| k.0.as_str() == HOT).count()
                    + s.profiles.keys().filter(|k| k.as_str() == HOT).count()
            };
            run("in-memory store", api, customers, hot, requests, left).await;
        }
        if stores.contains("moto") {
            println!("DynamoDB on moto (127.0.0.1)");
            let stack = Stack::start("load").await;
            let store = DynamoStore::new(stack.ddb(), &stack.names.table, 365);
            seed(store.clone(), &bodies).await;
            let api = Arc::new(Api {
                store: store.clone(),
                keys: keys.clone(),
                clock: Arc::new(now),
            });
            let ddb = stack.ddb();
            let table = stack.names.table.clone();
            let left = || async {
                let mut n = 0;
                let mut start = None;
                loop {
                    let out = ddb
                        .query()
                        .table_name(&table)
                        .key_condition_expression("PK = :pk")
                        .expression_attribute_values(
                            ":pk",
                            aws_sdk_dynamodb::types::AttributeValue::S(format!("CUST#{HOT}")),
                        )
                        .select(aws_sdk_dynamodb::types::Select::Count)
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .expect("count the customer's items");
                    n += out.count() as usize;
                    start = out.last_evaluated_key().cloned();
                    if start.is_none() {
                        return n;
                    }
                }
            };
            run(
                "DynamoDB on moto",
                api,
                customers,
                hot,
                (requests / 10).max(50),
                left,
            )
            .await;
        }
    });
}
