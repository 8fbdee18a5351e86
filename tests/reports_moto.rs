//! Reports over the real DynamoDB protocol (moto): day counters are read in
//! BatchGetItem calls whatever the range, and every shard ever written is summed, so
//! changing `AggregateShards` loses no history.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use feedloop_api::Api;
use feedloop_aws::DynamoStore;
use feedloop_ingest::{Ingest, Processed, Settings};
use feedloop_tests::harness::Stack;
use feedloop_tests::test_now;
use serde_json::{json, Value};

fn ingest<S>(store: &S, shards: u16) -> Ingest<S>
where
    S: Clone + feedloop_kit::ports::ingest::ProfileStore + feedloop_kit::ports::ingest::RejectStore,
{
    Ingest::lexicon(store.clone(), Arc::new(test_now)).with_settings(Settings {
        aggregate_shards: shards,
        max_concurrency: 4,
        ..Settings::local(30.0)
    })
}

fn survey(i: usize, day: NaiveDate) -> String {
    let text = if i.is_multiple_of(3) {
        "Delivery was late again and the parcel was damaged."
    } else {
        "Lovely coffee, friendly staff."
    };
    json!({"feedback_id": format!("f-{day}-{i}"), "customer_id": format!("c-{}", i % 50),
           "kind": "survey", "occurred_at": format!("{day}T10:00:00Z"),
           "nps_score": (i * 7) % 11, "text": text})
    .to_string()
}

async fn report(
    stack: &Stack,
    store: &DynamoStore,
    shards: u16,
    path: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Value {
    let api = Api {
        store: store.clone().with_aggregate_shards(shards),
        keys: stack.keys().await,
        clock: Arc::new(test_now),
    };
    let q: HashMap<String, String> = [
        ("from".to_string(), from.to_string()),
        ("to".to_string(), to.to_string()),
    ]
    .into();
    let r = api.handle("GET", path, &q).await;
    assert_eq!(r.status, 200, "{path} with {shards} shards: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

async fn apply(ingest: &Ingest<DynamoStore>, bodies: &[String]) {
    for (i, b) in bodies.iter().enumerate() {
        let out = ingest.process(&format!("m{i}"), b).await.unwrap();
        assert!(matches!(out, Processed::Applied { .. }), "{out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changing_the_shard_count_loses_nothing_and_a_year_of_100_shards_is_batched() {
    let stack = Stack::start("reports").await;
    let store = DynamoStore::new(stack.ddb(), &stack.names.table, 365);

    // GIVEN 60 surveys over 10 days, written with 8 shards
    let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let to = from + Duration::days(9);
    let bodies: Vec<String> = (0..60)
        .map(|i| survey(i, from + Duration::days((i % 10) as i64)))
        .collect();
    apply(&ingest(&store, 8), &bodies).await;

    // WHEN the reports are read with 2, 8 and 16 shards configured
    let reports = [2, 8, 16].map(|n| report(&stack, &store, n, "/reports/nps", from, to));
    let mut got = Vec::new();
    for r in reports {
        got.push(r.await);
    }

    // THEN all three count every survey once
    assert_eq!(got[0], got[1], "2 shards configured, 8 written");
    assert_eq!(got[2], got[1], "16 shards configured, 8 written");
    let r = &got[1]["responses"];
    let total = ["promoters", "passives", "detractors"]
        .iter()
        .map(|k| r[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(total, 60, "{r}");

    // GIVEN a year of daily surveys written with 100 shards (366 days x 100 keys)
    let year_from = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let year_to = year_from + Duration::days(365);
    let year: Vec<String> = (0..366)
        .map(|d| survey(d, year_from + Duration::days(d as i64)))
        .collect();
    apply(&ingest(&store, 100), &year).await;

    // WHEN the 366-day drivers report is read (measured, not asserted: moto's speed)
    let started = Instant::now();
    let drivers = report(&stack, &store, 100, "/reports/drivers", year_from, year_to).await;
    let elapsed = started.elapsed();
    println!(
        "366-day drivers report, 100 shards: 36,600 keys in {} BatchGetItem calls, {:.2} s on moto",
        36_600usize.div_ceil(100),
        elapsed.as_secs_f64()
    );

    // THEN every day's survey is in it
    let r = &drivers["responses"];
    let total = ["promoters", "passives", "detractors"]
        .iter()
        .map(|k| r[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(total, 366, "{drivers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_sizes_are_kept_at_write_time_through_moves_redeliveries_and_erasure() {
    use feedloop_kit::ports::query::QueryStore;
    use feedloop_memory::MemoryStore;
    let stack = Stack::start("segcount").await;
    let store = DynamoStore::new(stack.ddb(), &stack.names.table, 365);
    let memory = MemoryStore::default();
    let in_memory = ingest(&memory, 8);

    // GIVEN 20 customers whose scores move them between segments over 30 surveys...
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let bodies: Vec<String> = (0..120)
        .map(|i| {
            let mut v: Value =
                serde_json::from_str(&survey(i, day + Duration::days((i / 20) as i64))).unwrap();
            v["customer_id"] = json!(format!("cust-{}", i % 20));
            v.to_string()
        })
        .collect();
    let dynamo = ingest(&store, 8);
    apply(&dynamo, &bodies).await;
    // ...and a producer that sends the first 15 again
    for (i, b) in bodies.iter().take(15).enumerate() {
        let out = dynamo.process(&format!("again-{i}"), b).await.unwrap();
        assert!(matches!(out, Processed::Duplicate), "{out:?}");
    }
    for (i, b) in bodies.iter().enumerate() {
        in_memory.process(&format!("m{i}"), b).await.unwrap();
    }

    // THEN the counters kept in DynamoDB equal a count of the profiles themselves
    let want = memory.segment_counts().await.unwrap();
    let got = store.segment_counts().await.unwrap();
    assert_eq!(got, want);
    assert_eq!(got.values().sum::<u64>(), 20);
    assert!(
        got.values().filter(|n| **n > 0).count() >= 2,
        "customers moved into several segments: {got:?}"
    );

    // AND one batched read returns the same profiles as one read each, unknown ids
    // left out
    let mut ids: Vec<feedloop_core::envelope::CustomerId> = (0..20)
        .map(|i| feedloop_core::envelope::CustomerId::parse(&format!("cust-{i}")).unwrap())
        .collect();
    ids.push(feedloop_core::envelope::CustomerId::parse("nobody").unwrap());
    let mut batched = store.profiles(&ids).await.unwrap();
    batched.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    let mut one_by_one = Vec::new();
    for id in &ids {
        one_by_one.extend(store.profile(id).await.unwrap());
    }
    one_by_one.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    assert_eq!(batched.len(), 20);
    assert_eq!(batched, one_by_one);

    // WHEN a customer is erased, THEN their segment shrinks by one
    let victim = memory
        .segment_page(feedloop_core::profile::Segment::Detractor, 1, None)
        .await
        .unwrap()
        .items;
    let (victim, segment) = match victim.first() {
        Some(m) => (
            m.customer_id.clone(),
            feedloop_core::profile::Segment::Detractor,
        ),
        None => panic!("a detractor to erase: {got:?}"),
    };
    let api = Api {
        store: store.clone(),
        keys: stack.keys().await,
        clock: Arc::new(test_now),
    };
    let r = api
        .handle("DELETE", &format!("/customers/{victim}"), &HashMap::new())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = store.segment_counts().await.unwrap();
    assert_eq!(after[&segment], got[&segment] - 1, "{after:?}");
    assert_eq!(after.values().sum::<u64>(), 19);
}
