use super::*;
use chrono::TimeZone;
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_memory::MemoryStore;
use std::sync::Arc;

fn ingest() -> Ingest<MemoryStore> {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    Ingest::lexicon(MemoryStore::default(), Arc::new(move || now))
        .with_settings(Settings::sized(4, 4))
}

fn msg(id: &str, body: &str) -> (Option<String>, String) {
    (Some(id.into()), body.into())
}

fn event(msgs: Vec<(Option<String>, String)>) -> SqsEvent {
    feedloop_kit::batch::event(msgs)
}

const GOOD: &str = r#"{"feedback_id":"f1","customer_id":"c1","kind":"survey","occurred_at":"2026-11-20T10:00:00Z","nps_score":2,"text":"Parcel never arrived"}"#;

#[tokio::test]
async fn good_poison_and_duplicate_records_are_classified() {
    let svc = ingest();
    let (resp, report) = svc
        .handle(event(vec![
            msg("m1", GOOD),
            msg("m2", "{not json"),
            msg("m3", GOOD),
        ]))
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(
        (
            report.processed,
            report.duplicate,
            report.rejected,
            report.negative
        ),
        (1, 1, 1, 1)
    );
    let state = svc.store().snapshot();
    assert_eq!(state.profiles["c1"].value.feedback_count, 1);
    assert_eq!(state.rejects["m2"].body_prefix, "{not json");
    assert!(state.rejects["m2"]
        .reason
        .starts_with("envelope is not valid JSON"));
}

/// An encoder that counts its calls and fails once told to.
struct FlakyEncoder {
    calls: std::sync::atomic::AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
}

impl feedloop_core::neural::SentenceEncoder for FlakyEncoder {
    fn dim(&self) -> usize {
        384
    }
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, feedloop_core::neural::EncodeError> {
        use std::sync::atomic::Ordering;
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(feedloop_core::neural::EncodeError("out of memory".into()));
        }
        Ok(texts.iter().map(|_| vec![0.05; 384]).collect())
    }
}

#[tokio::test]
async fn a_batch_is_encoded_once_and_an_encoder_failure_retries_only_the_feedback() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    // GIVEN a hybrid ingest whose encoder works, then fails
    let encoder = Arc::new(FlakyEncoder {
        calls: AtomicUsize::new(0),
        fail: AtomicBool::new(false),
    });
    let analyzer = Analyzer::build(
        Mode::Hybrid,
        Taxonomy::default_small_business(),
        Some(encoder.clone()),
    )
    .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let svc = Ingest::new(
        MemoryStore::default(),
        analyzer,
        Settings {
            half_life_days: 30.0,
            aggregate_shards: 4,
            max_concurrency: 4,
            max_followup_age_hours: feedloop_core::followup::DEFAULT_MAX_AGE_HOURS,
        },
        Arc::new(move || now),
    );
    let batch = |n: usize, tag: &str| {
        let mut msgs: Vec<_> = (0..n)
            .map(|i| {
                let body = GOOD
                    .replace("\"f1\"", &format!("\"{tag}f{i}\""))
                    .replace("\"c1\"", &format!("\"c{i}\""));
                msg(&format!("{tag}{i}"), &body)
            })
            .collect();
        msgs.push(msg(&format!("{tag}{n}"), "{not json"));
        event(msgs)
    };
    let before = encoder.calls.load(Ordering::SeqCst);

    // WHEN a batch of 10 arrives: ONE encoder call for all of it
    let (resp, report) = svc.handle(batch(10, "m")).await.unwrap();
    assert_eq!(encoder.calls.load(Ordering::SeqCst), before + 1);
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!((report.processed, report.rejected), (10, 1));

    // WHEN the encoder fails on the next batch
    encoder.fail.store(true, Ordering::SeqCst);
    let next = batch(3, "n");
    let (resp, report) = svc.handle(next).await.unwrap();

    // THEN the feedback is handed back to SQS, the poison is still recorded
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["n0", "n1", "n2"]);
    assert_eq!(
        (report.retried, report.rejected, report.processed),
        (3, 1, 0)
    );
    assert!(svc.store().snapshot().rejects.contains_key("n3"));
    assert_eq!(svc.store().snapshot().profiles.len(), 10);
}

#[tokio::test]
async fn one_customers_burst_in_a_batch_runs_in_order_without_conflicts() {
    let svc = ingest();
    let msgs: Vec<_> = (0..10)
        .map(|i| {
            let body = GOOD.replace("\"f1\"", &format!("\"f{i}\""));
            msg(&format!("m{i}"), &body)
        })
        .collect();
    let (resp, report) = svc.handle(event(msgs)).await.unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!((report.processed, report.conflicts), (10, 0));
    assert_eq!(svc.store().snapshot().profiles["c1"].version, 10);
}

#[tokio::test]
async fn a_record_without_message_id_fails_the_invocation() {
    assert!(matches!(
        ingest().handle(event(vec![(None, GOOD.into())])).await,
        Err(HandlerError::MissingMessageId { index: 0 })
    ));
}

#[test]
fn emf_line_names_every_metric() {
    let r = BatchReport {
        processed: 3,
        rejected: 1,
        ..Default::default()
    };
    let v: serde_json::Value = serde_json::from_str(&r.emf("ingest", Utc::now())).unwrap();
    assert_eq!(v["Processed"], 3);
    assert_eq!(
        v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
}
