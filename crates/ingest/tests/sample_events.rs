//! The sample events shipped in `events/` (for `sam local invoke` and
//! `cargo lambda invoke --data-file`) do what their names say.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{TimeZone, Utc};
use feedloop_ingest::{Ingest, Settings};
use feedloop_memory::MemoryStore;

fn service() -> Ingest<MemoryStore> {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    Ingest::lexicon(MemoryStore::default(), Arc::new(move || now)).with_settings(Settings {
        max_concurrency: 4,
        ..Settings::local(30.0)
    })
}

async fn run(src: &str) -> (usize, feedloop_ingest::BatchReport, Ingest<MemoryStore>) {
    let event: SqsEvent = serde_json::from_str(src).expect("sample is an SQS event");
    let svc = service();
    let (response, report) = svc.handle(event).await.unwrap();
    (response.batch_item_failures.len(), report, svc)
}

#[tokio::test]
async fn each_sample_event_is_processed_as_its_name_says() {
    for src in [
        include_str!("../../../events/review.json"),
        include_str!("../../../events/survey.json"),
        include_str!("../../../events/ticket.json"),
        include_str!("../../../events/sns-wrapped.json"),
    ] {
        let (failures, report, _) = run(src).await;
        assert_eq!((failures, report.processed, report.rejected), (0, 1, 0));
    }
    let (failures, report, svc) = run(include_str!("../../../events/poison.json")).await;
    assert_eq!((failures, report.processed, report.rejected), (0, 0, 2));
    assert_eq!(svc.store().snapshot().rejects.len(), 2);

    let (failures, report, svc) = run(include_str!("../../../events/batch.json")).await;
    assert_eq!((failures, report.processed, report.rejected), (0, 4, 1));
    let state = svc.store().snapshot();
    let p = &state.profiles["cust-042"].value;
    assert_eq!(
        (p.counts.review, p.counts.survey, p.counts.ticket),
        (1, 1, 1)
    );
    assert_eq!(
        p.most_urgent_ticket().map(|(id, _)| id.as_str()),
        Some("T-1042")
    );
}
