//! SES bounce and complaint notifications (the shipped `events/` samples) -> the
//! suppression list, in memory.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use feedloop_core::followup::suppression;
use feedloop_followup::notifications::{NotificationReport, Notifications, SnsEvent};
use feedloop_followup::Incoming;
use feedloop_memory::MemoryStore;

const SALT: &str = "test-salt";

fn sample(name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../events/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn sns(name: &str) -> SnsEvent {
    match Incoming::from_value(sample(name)).unwrap() {
        Incoming::Notifications(e) => e,
        other => panic!("{name} read as {other:?}"),
    }
}

fn handler() -> (MemoryStore, Notifications<MemoryStore>) {
    let store = MemoryStore::default();
    let n = Notifications {
        store: store.clone(),
        suppression_salt: SALT.into(),
        clock: Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 24, 12, 5, 0).unwrap()),
    };
    (store, n)
}

fn suppressed(store: &MemoryStore, address: &str) -> bool {
    store
        .snapshot()
        .suppressed
        .contains_key(&suppression::email_key(SALT, address))
}

#[tokio::test]
async fn a_hard_bounce_and_a_complaint_suppress_the_address_at_once() {
    let (store, n) = handler();
    let r = n.handle(&sns("ses-bounce-hard")).await.unwrap();
    assert_eq!((r.hard_bounces, r.suppressed), (1, 1));
    // Suppressed under the address's own key, whatever the case it is written in.
    assert!(suppressed(&store, "Gone@Example.com "));
    let r = n.handle(&sns("ses-complaint")).await.unwrap();
    assert_eq!((r.complaints, r.suppressed), (1, 1));
    assert!(suppressed(&store, "angry@example.com"));
    assert_eq!(store.snapshot().suppressed.len(), 2);
}

#[tokio::test]
async fn soft_bounces_suppress_at_the_third_and_a_redelivery_counts_once() {
    let (store, n) = handler();
    let all = sns("ses-bounce-soft");
    assert_eq!(all.records.len(), 3);
    let first = SnsEvent {
        records: vec![all.records[0].clone()],
    };
    // SNS delivers at least once: the same bounce three times is one bounce.
    for _ in 0..3 {
        n.handle(&first).await.unwrap();
    }
    assert!(!suppressed(&store, "full@example.com"));
    let second = SnsEvent {
        records: vec![all.records[1].clone()],
    };
    n.handle(&second).await.unwrap();
    assert!(!suppressed(&store, "full@example.com"));
    let r = n.handle(&all).await.unwrap();
    assert_eq!((r.soft_bounces, r.suppressed), (3, 1));
    assert!(suppressed(&store, "full@example.com"));
}

#[tokio::test]
async fn an_unreadable_notification_is_counted_and_does_not_fail_the_batch() {
    let (store, n) = handler();
    let mut v = sample("ses-bounce-hard");
    let good = v["Records"][0].clone();
    v["Records"][0]["Sns"]["Message"] = "not json, from x@example.com".into();
    v["Records"].as_array_mut().unwrap().push(good);
    let Incoming::Notifications(e) = Incoming::from_value(v).unwrap() else {
        panic!("an SNS event");
    };
    let r = n.handle(&e).await.unwrap();
    assert_eq!(
        r,
        NotificationReport {
            hard_bounces: 1,
            suppressed: 1,
            malformed: 1,
            ..Default::default()
        }
    );
    assert!(suppressed(&store, "gone@example.com"));
}

#[test]
fn the_function_tells_intents_from_notifications() {
    assert!(matches!(
        Incoming::from_value(sample("followup-intent")).unwrap(),
        Incoming::Intents(_)
    ));
    assert!(matches!(
        Incoming::from_value(sample("ses-complaint")).unwrap(),
        Incoming::Notifications(_)
    ));
}

/// A suppression list that is down for the first `outage` calls.
struct Flaky {
    inner: MemoryStore,
    outage: std::sync::atomic::AtomicU32,
}

impl feedloop_kit::ports::followup::SuppressionList for Flaky {
    async fn suppress(
        &self,
        keys: &[String],
        reason: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), feedloop_kit::ports::followup::StoreError> {
        self.down()?;
        self.inner.suppress(keys, reason, now).await
    }
    async fn lift(
        &self,
        keys: &[String],
    ) -> Result<u32, feedloop_kit::ports::followup::StoreError> {
        self.down()?;
        self.inner.lift(keys).await
    }
    async fn count_soft_bounce(
        &self,
        key: &str,
        event_id: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<u32, feedloop_kit::ports::followup::StoreError> {
        self.down()?;
        self.inner.count_soft_bounce(key, event_id, now).await
    }
}

impl Flaky {
    fn down(&self) -> Result<(), feedloop_kit::ports::followup::StoreError> {
        use std::sync::atomic::Ordering;
        let left = self.outage.load(Ordering::SeqCst);
        if left == 0 {
            return Ok(());
        }
        self.outage.store(left - 1, Ordering::SeqCst);
        Err(feedloop_kit::ports::followup::StoreError::Throttled(
            "ProvisionedThroughputExceededException: injected".into(),
        ))
    }
}

#[tokio::test]
async fn a_store_outage_during_a_bounce_hands_the_event_back_and_loses_nothing() {
    // GIVEN the SES events queue's batch (a hard bounce, a complaint) and a store that
    // is down for the first two calls
    let store = MemoryStore::default();
    let n = Notifications {
        store: Flaky {
            inner: store.clone(),
            outage: 2.into(),
        },
        suppression_salt: SALT.into(),
        clock: Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 24, 12, 5, 0).unwrap()),
    };
    let event = match Incoming::from_value(sample("ses-events-queue")).unwrap() {
        Incoming::QueuedNotifications(e) => e,
        other => panic!("read as {other:?}"),
    };

    // WHEN the function takes it
    let (response, report) = n.handle_queue(&event).await;

    // THEN both records come back for a retry and nothing is half-done
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "{report:?}");
    assert_eq!(report.retried, 2);
    assert!(store.snapshot().suppressed.is_empty());

    // WHEN SQS delivers them again, the store back
    let (response, report) = n.handle_queue(&event).await;

    // THEN both addresses are suppressed, for their reasons, and nothing is handed back
    assert!(response.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(
        (report.hard_bounces, report.complaints, report.suppressed),
        (1, 1, 2)
    );
    assert!(suppressed(&store, "gone@example.com"));
    let reasons: Vec<String> = store.snapshot().suppressed.into_values().collect();
    assert!(reasons.contains(&"hard bounce".to_owned()), "{reasons:?}");
    assert!(
        reasons.contains(&suppression::COMPLAINED.to_owned()),
        "{reasons:?}"
    );
}
