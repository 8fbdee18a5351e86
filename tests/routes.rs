//! The HTTP routes on the in-memory store: answers, validation, pagination and cursor
//! tampering, store failures, GDPR erase followed by a suppressed follow-up.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use feedloop_api::Api;
use feedloop_core::followup::suppression;
use feedloop_core::followup::Playbook;
use feedloop_core::profile::Segment;
use feedloop_followup::handler::Handled;
use feedloop_followup::Dispatcher;
use feedloop_ingest::{Ingest, Settings};
use feedloop_kit::ports::followup::SuppressionList;
use feedloop_kit::ports::query::*;
use feedloop_memory::MemoryStore;
use feedloop_memory::{Outbox, RequeueList};
use feedloop_tests::http::{all_pages, assert_cursor_stays_with, get};
use serde_json::{json, Value};

const SECRET: &str = "routes-test-secret-0123456789abcdef";

fn keys() -> feedloop_core::keys::StackKeys {
    feedloop_core::keys::StackKeys::derive(SECRET).unwrap()
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

async fn loaded() -> (MemoryStore, Api<MemoryStore>) {
    let store = MemoryStore::default();
    let ingest = Ingest::lexicon(store.clone(), Arc::new(now))
        .with_settings(Settings {
            // The fixtures span November up to the 20th: follow up on all of them.
            max_followup_age_hours: 24 * 30,
            ..Settings::sized(3, 2)
        })
        .with_followups(Playbook::default_rules(), store.clone());
    let texts = [
        "Delivery was late and support ignored me",
        "Lovely staff, fair price",
        "Okay I guess",
        "Broken on arrival, refund took weeks",
    ];
    for i in 0..45u32 {
        let body = json!({"feedback_id": format!("f{i}"), "customer_id": format!("c{}", i % 5), "kind": "survey",
            "occurred_at": format!("2026-11-{:02}T{:02}:00:00Z", 1 + i % 20, i % 24), "nps_score": (i * 7) % 11,
            "text": texts[i as usize % 4], "channel": "email",
            "customer": {"name": "Ada", "email": format!("c{}@example.com", i % 5)}});
        ingest
            .process(&format!("m{i}"), &body.to_string())
            .await
            .unwrap();
    }
    // A poison message that names the customer: an erasure must find its reject too.
    ingest
        .process("poison", r#"{"customer_id":"c1","kind":"survey"}"#)
        .await
        .unwrap();
    let api = Api {
        store: store.clone(),
        keys: keys(),
        clock: Arc::new(now),
    };
    (store, api)
}

#[tokio::test]
async fn profile_history_and_segments_page_through_everything_once() {
    let (store, api) = loaded().await;
    let (status, p) = get(&api, "/customers/c1", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(p["profile"]["feedback_count"], 9);
    assert!(p["churn_risk"]["score"].is_number());

    let seen: Vec<String> = all_pages(&api, "/customers/c1/feedback", "4")
        .await
        .iter()
        .map(|item| item["occurred_at"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen.len(), 9);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");

    let mut total = 0;
    for seg in Segment::ALL.map(|s| s.as_str()) {
        total += all_pages(&api, &format!("/segments/{seg}"), "1")
            .await
            .len();
    }
    assert_eq!(total, store.snapshot().profiles.len());
}

#[tokio::test]
async fn a_cursor_cannot_be_edited_or_replayed_against_another_customer() {
    let (_, api) = loaded().await;
    let c = assert_cursor_stays_with(&api, "c1", "c2").await;
    let (pos, tag) = c.split_once('.').unwrap();
    let mut edited = pos.to_owned();
    edited.replace_range(0..1, if pos.starts_with('A') { "B" } else { "A" });
    let (status, _) = get(
        &api,
        "/customers/c1/feedback",
        &[("cursor", &format!("{edited}.{tag}"))],
    )
    .await;
    assert_eq!(status, 400);
    let (status, err) = get(&api, "/segments/at_risk", &[("cursor", &c)]).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
}

#[tokio::test]
async fn parameters_are_validated_with_stable_codes() {
    let (_, api) = loaded().await;
    for (path, q, code) in [
        ("/customers/c%20x", vec![], "invalid_customer_id"),
        ("/customers/nobody", vec![], "customer_not_found"),
        (
            "/customers/c1/feedback",
            vec![("limit", "0")],
            "invalid_limit",
        ),
        (
            "/customers/c1/feedback",
            vec![("limit", "1000")],
            "invalid_limit",
        ),
        (
            "/customers/c1/feedback",
            vec![("page", "2")],
            "unknown_parameter",
        ),
        ("/segments/vip", vec![], "invalid_segment"),
        ("/reports/nps", vec![("from", "2026-13-01")], "invalid_date"),
        (
            "/reports/nps",
            vec![("from", "2026-11-10"), ("to", "2026-11-01")],
            "invalid_range",
        ),
        (
            "/reports/nps",
            vec![("from", "2024-01-01"), ("to", "2026-01-01")],
            "invalid_range",
        ),
        (
            "/reports/nps",
            vec![("granularity", "hour")],
            "invalid_granularity",
        ),
        ("/nope", vec![], "not_found"),
    ] {
        let (status, err) = get(&api, path, &q).await;
        assert!(status == 400 || status == 404, "{path} {q:?}: {status}");
        assert_eq!(
            err["error"]["code"].as_str(),
            Some(code),
            "{path} {q:?}: {err}"
        );
        assert!(err["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let r = api.handle("POST", "/customers/c1", &HashMap::new()).await;
    assert_eq!(r.status, 405);
    // An id with a slash arrives percent-encoded and is one path segment.
    let (status, _) = get(&api, "/customers/a%2Fb", &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn reports_come_from_the_day_aggregates() {
    let (store, api) = loaded().await;
    let (status, nps) = get(
        &api,
        "/reports/nps",
        &[
            ("from", "2026-11-01"),
            ("to", "2026-11-30"),
            ("granularity", "week"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let s = store.snapshot();
    let count = |c: &str| -> i64 {
        s.aggregates
            .values()
            .map(|m| m.get(c).copied().unwrap_or(0))
            .sum()
    };
    assert_eq!(nps["responses"]["promoters"].as_i64(), Some(count("nps.p")));
    assert_eq!(
        nps["responses"]["detractors"].as_i64(),
        Some(count("nps.d"))
    );
    let points = nps["points"].as_array().unwrap();
    assert!(points.len() >= 3 && points.len() <= 5);
    let (status, d) = get(
        &api,
        "/reports/drivers",
        &[("from", "2026-11-01"), ("to", "2026-11-30")],
    )
    .await;
    assert_eq!(status, 200);
    let delivery = d["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["theme"] == "delivery")
        .unwrap();
    assert_eq!(
        delivery["mentions"].as_i64(),
        Some(count("th.delivery.p") + count("th.delivery.pa") + count("th.delivery.d"))
    );
}

/// Fails every read: the client gets a generic error, never the store's text.
struct Broken;
impl QueryStore for Broken {
    async fn profiles(
        &self,
        _: &[CustomerId],
    ) -> Result<Vec<feedloop_core::profile::Profile>, StoreError> {
        Err(StoreError::Permanent(
            "ValidationException: secret internal detail".into(),
        ))
    }
    async fn profile(
        &self,
        _: &CustomerId,
    ) -> Result<Option<feedloop_core::profile::Profile>, StoreError> {
        Err(StoreError::Permanent(
            "ValidationException: secret internal detail".into(),
        ))
    }
    async fn feedback_page(
        &self,
        _: &CustomerId,
        _: usize,
        _: Option<String>,
    ) -> Result<Page<feedloop_core::records::FeedbackRecord>, StoreError> {
        Err(StoreError::Throttled(
            "ProvisionedThroughputExceeded on table xyz".into(),
        ))
    }
    async fn followups(
        &self,
        _: &CustomerId,
    ) -> Result<Vec<feedloop_kit::ports::followup::AttemptRecord>, StoreError> {
        Ok(vec![])
    }
    async fn segment_page(
        &self,
        _: feedloop_core::profile::Segment,
        _: usize,
        _: Option<String>,
    ) -> Result<Page<Member>, StoreError> {
        Ok(Page {
            items: vec![],
            next: None,
        })
    }
    async fn segment_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<feedloop_core::profile::Segment, u64>, StoreError> {
        Ok(Default::default())
    }
    async fn variant_stats(
        &self,
    ) -> Result<feedloop_core::followup::outcomes::VariantRows, StoreError> {
        Err(StoreError::Transient("connection reset by 10.0.0.7".into()))
    }
    async fn day_counters(
        &self,
        _: chrono::NaiveDate,
        _: chrono::NaiveDate,
    ) -> Result<
        std::collections::BTreeMap<chrono::NaiveDate, feedloop_core::reports::Counters>,
        StoreError,
    > {
        Ok(Default::default())
    }
    async fn erase(
        &self,
        _: &CustomerId,
        _: &[String],
        _: chrono::DateTime<Utc>,
    ) -> Result<Erased, StoreError> {
        Ok(Erased::default())
    }
    async fn set_consent(
        &self,
        _: &CustomerId,
        _: &Consent,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> Result<Option<feedloop_core::profile::Profile>, StoreError> {
        Err(StoreError::Transient("table on fire".into()))
    }
}
impl SuppressionList for Broken {
    async fn suppress(
        &self,
        _: &[String],
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Transient("table on fire".into()))
    }
    async fn lift(&self, _: &[String]) -> Result<u32, StoreError> {
        Err(StoreError::Transient("table on fire".into()))
    }
    async fn count_soft_bounce(
        &self,
        _: &str,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        Err(StoreError::Transient("table on fire".into()))
    }
}

#[tokio::test]
async fn store_failures_are_answered_without_internal_text() {
    let api = Api {
        store: Broken,
        keys: keys(),
        clock: Arc::new(now),
    };
    let r = api.handle("GET", "/customers/c1", &HashMap::new()).await;
    assert_eq!(r.status, 500);
    assert!(
        !r.body.contains("secret") && !r.body.contains("Validation"),
        "{}",
        r.body
    );
    let r = api
        .handle("GET", "/customers/c1/feedback", &HashMap::new())
        .await;
    assert_eq!(r.status, 503);
    assert!(!r.body.contains("xyz"), "{}", r.body);
    let r = api
        .handle("GET", "/reports/followups", &HashMap::new())
        .await;
    assert_eq!(r.status, 503);
    assert!(!r.body.contains("10.0.0.7"), "{}", r.body);
}

#[tokio::test]
async fn erase_leaves_only_the_suppression_record_and_later_follow_ups_are_suppressed() {
    let (store, api) = loaded().await;
    let intent = store
        .snapshot()
        .followup_queue
        .into_iter()
        .find(|i| i.customer_id == "c1")
        .expect("c1 has a follow-up");
    let r = api.handle("DELETE", "/customers/c1", &HashMap::new()).await;
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["deleted"]["profile"], true);
    assert_eq!(v["deleted"]["feedback"], 9);
    assert_eq!(v["deleted"]["rejects"], 1);
    assert_eq!(v["deleted"]["suppression_keys"], 2);
    assert!(!r.body.contains("c1@example.com"));
    // and it says where copies outlive it, and for how long
    let outside: Vec<String> = v["outside_reach"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o["where"], o["until"]))
        .collect();
    for want in [
        "dead-letter queue",
        "14 days",
        "point-in-time recovery",
        "35 days",
        "Logs",
        "30 days",
    ] {
        assert!(
            outside.iter().any(|o| o.contains(want)),
            "{want} in {outside:?}"
        );
    }
    let s = store.snapshot();
    assert!(!s.profiles.contains_key("c1"));
    assert!(s.feedback.keys().all(|(c, _)| c != "c1"));
    assert!(s
        .rejects
        .values()
        .all(|r| r.customer_id.as_deref() != Some("c1")));
    assert!(s.followups.keys().all(|(c, _, _)| c != "c1"));
    assert_eq!(s.suppressed.len(), 2);
    assert!(s
        .suppressed
        .iter()
        .all(|(k, why)| k.len() == 64 && !k.contains("c1") && why == "erased"));
    let (status, _) = get(&api, "/customers/c1", &[]).await;
    assert_eq!(status, 404);

    // The intent still on the follow-up queue is dispatched after the erasure.
    let outbox = Outbox::default();
    let d = dispatcher(&store, &outbox);
    let handled = d
        .process("late", &serde_json::to_string(&intent).unwrap())
        .await
        .unwrap();
    assert_eq!(handled, Handled::Suppressed);
    assert_eq!(outbox.sent_count(), 0);
    assert!(
        store.snapshot().followups.keys().all(|(c, _, _)| c != "c1"),
        "nothing written back"
    );
}

fn dispatcher(
    store: &MemoryStore,
    outbox: &Outbox,
) -> Dispatcher<MemoryStore, Outbox, RequeueList> {
    Dispatcher::new(
        store.clone(),
        outbox.clone(),
        RequeueList::default(),
        keys().suppression_salt,
        Arc::new(now),
    )
}

#[tokio::test]
async fn erase_suppresses_every_address_the_profile_ever_held() {
    // GIVEN c1 moved to a new address, then sent a name-only contact block
    let (store, api) = loaded().await;
    let ingest = Ingest::lexicon(store.clone(), Arc::new(now)).with_settings(Settings {
        max_followup_age_hours: 24 * 30,
        ..Settings::sized(3, 2)
    });
    for (id, customer) in [
        ("moved", json!({"email": "c1.new@example.com"})),
        ("name-only", json!({"name": "Ada L."})),
    ] {
        let body = json!({"feedback_id": id, "customer_id": "c1", "kind": "survey",
            "occurred_at": "2026-11-22T10:00:00Z", "nps_score": 5, "customer": customer});
        ingest.process(id, &body.to_string()).await.unwrap();
    }
    let contact = store.snapshot().profiles["c1"]
        .value
        .contact
        .clone()
        .unwrap()
        .value;
    assert_eq!(
        contact.email.as_deref(),
        Some("c1.new@example.com"),
        "the name did not wipe it"
    );

    // WHEN c1 is erased
    let r = api.handle("DELETE", "/customers/c1", &HashMap::new()).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // THEN the id, the current and the earlier address are all on the list
    let salt = keys().suppression_salt;
    let s = store.snapshot();
    for key in [
        suppression::id_key(&salt, "c1"),
        suppression::email_key(&salt, "c1.new@example.com"),
        suppression::email_key(&salt, "c1@example.com"),
    ] {
        assert_eq!(s.suppressed.get(&key).map(String::as_str), Some("erased"));
    }
    assert_eq!(s.suppressed.len(), 3);
}

#[path = "routes/pages.rs"]
mod pages;
