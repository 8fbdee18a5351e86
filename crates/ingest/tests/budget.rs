//! Bounded work per batch with the shipped encoders: hostile texts cost a bounded
//! number of encoder passes, and a batch's time budget returns what it did not reach.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{TimeZone, Utc};
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_ingest::{Ingest, Settings};
use feedloop_memory::MemoryStore;

fn service(mode: Mode) -> Ingest<MemoryStore> {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    // The model `make model` installs (or FEEDLOOP_MODEL_DIR): `make test` fetches it.
    let english = std::env::var_os("FEEDLOOP_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../models/all-MiniLM-L6-v2")
        });
    let dirs = feedloop_neural::ModelDirs {
        english: Some(&english),
        multilingual: None,
    };
    let analyzer = feedloop_neural::analyzer(mode, Taxonomy::default_small_business(), dirs)
        .unwrap_or_else(|e| panic!("{e} (run `make model`)"));
    Ingest::new(
        MemoryStore::default(),
        analyzer,
        Settings {
            half_life_days: 30.0,
            aggregate_shards: 8,
            max_concurrency: 4,
            max_followup_age_hours: feedloop_core::followup::DEFAULT_MAX_AGE_HOURS,
        },
        Arc::new(move || now),
    )
}

/// 25 messages: every fifth a 10,000-character text of one-letter lines (~5,000
/// sentences), the others ordinary reviews.
fn batch() -> SqsEvent {
    feedloop_kit::batch::event((0..25).map(|i| {
        let text = if i % 5 == 0 {
            "a\n".repeat(5_000)
        } else {
            format!("Order {i} arrived late and the box was crushed, but support sorted it.")
        };
        let body = serde_json::json!({
            "feedback_id": format!("fb-{i}"), "customer_id": format!("c-{i}"), "kind": "review",
            "occurred_at": "2026-11-24T10:00:00Z", "rating": 3, "text": text, "channel": "web"
        });
        (Some(format!("m-{i}")), body.to_string())
    }))
}

#[tokio::test]
async fn a_batch_with_hostile_texts_finishes_inside_its_budget_and_commits_the_rest() {
    // GIVEN the hybrid analyzer and a 20-second budget (a 30-second function less room)
    let svc = service(Mode::Hybrid);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);

    // WHEN the batch with five hostile texts is handled
    let (response, report) = svc.handle_within(batch(), Some(deadline)).await.unwrap();

    // THEN nothing is sent back: the hostile texts cost bounded work
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    assert_eq!(report.processed, 25);
    let state = svc.store().snapshot();
    assert_eq!(state.profiles.len(), 25);
    // AND each hostile text's record says how it was scored past the limit
    let notes: Vec<_> = state
        .feedback
        .values()
        .filter_map(|f| f.note.as_deref())
        .collect();
    assert_eq!(notes.len(), 5, "{notes:?}");
    assert!(
        notes.iter().all(|n| n.contains("scored by the lexicon")),
        "{notes:?}"
    );
}

#[tokio::test]
async fn a_spent_budget_returns_every_unfinished_message_and_loses_none() {
    // GIVEN a budget that is already spent when the batch arrives
    let svc = service(Mode::Lexicon);
    let deadline = tokio::time::Instant::now();

    // WHEN the batch is handled
    let (response, report) = svc.handle_within(batch(), Some(deadline)).await.unwrap();

    // THEN every message goes back to SQS and nothing was half-written
    assert_eq!(response.batch_item_failures.len(), 25);
    assert_eq!(report.retried, 25);
    assert!(svc.store().snapshot().profiles.is_empty());
    // AND the redelivery with time to spare commits them all
    let (response, report) = svc.handle(batch()).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.processed, 25);
}
