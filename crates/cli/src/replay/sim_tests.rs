//! The simulated-clock replay the demo and `feedloop process` run on: real ingest,
//! real dry-run dispatcher, each message when it happened, each intent when due.

use super::sim::{replay_all, Replay};
use chrono::{DateTime, Duration, TimeZone, Utc};
use feedloop_core::analysis::Analyzer;
use feedloop_core::followup::plan::DispatchPolicy;
use feedloop_core::followup::Playbook;
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_ingest::{Processed, Settings};
use feedloop_kit::ports::followup::{AttemptRecord, Status};

fn t(day: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, h, 0, 0).unwrap()
}

fn survey(id: &str, customer: &str, at: DateTime<Utc>, score: u8, text: &str) -> String {
    serde_json::json!({
        "feedback_id": id, "customer_id": customer, "kind": "survey",
        "occurred_at": at.to_rfc3339(), "nps_score": score, "text": text,
        "customer": {"name": "Ada", "email": "ada@example.com", "timezone": "Europe/London",
                     "consent": {"email": true}},
    })
    .to_string()
}

#[tokio::test]
async fn messages_arrive_in_time_order_and_follow_ups_go_out_when_due() {
    let now = t(20, 12);
    let mut replay = Replay::new(
        Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business()),
        Settings::local(30.0),
        Playbook::default_rules(),
        DispatchPolicy {
            company: Some("Shop".into()),
            ..DispatchPolicy::default()
        },
        t(1, 0),
    );
    // Out of order on input: the later detractor survey comes first.
    let messages: Vec<(String, String)> = vec![
        (
            "m1".into(),
            survey("f2", "c1", t(14, 9), 2, "Delivery was late again"),
        ),
        ("m2".into(), survey("f1", "c1", t(3, 9), 9, "Lovely staff")),
        ("m3".into(), survey("f1", "c1", t(3, 9), 9, "Lovely staff")),
        (
            "m4".into(),
            r#"{"feedback_id":"bad","kind":"survey"}"#.into(),
        ),
    ];
    let out = replay_all(&mut replay, &messages, now).await.unwrap();
    let report = replay.finish().await.unwrap();

    // Outcomes in input order; the earlier copy of f1 was applied, the later ignored.
    assert!(
        matches!(&out[0], Processed::Applied { feedback_id, .. } if feedback_id.as_str() == "f2")
    );
    assert!(
        matches!(&out[1], Processed::Applied { feedback_id, .. } if feedback_id.as_str() == "f1")
    );
    assert_eq!(out[2], Processed::Duplicate);
    assert!(matches!(&out[3], Processed::Rejected { .. }));

    let state = replay.store().snapshot();
    let attempts: Vec<AttemptRecord> = state
        .followups
        .values()
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect();
    // f1 (a promoter on the 3rd) and f2 (a detractor on the 10th) each got one attempt,
    // recorded on the simulated clock: after the feedback, long before `now`.
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for a in &attempts {
        let occurred = if a.feedback_id == "f1" {
            t(3, 9)
        } else {
            t(14, 9)
        };
        assert!(
            a.at >= occurred && a.at < occurred + Duration::days(3),
            "{a:?}"
        );
    }
    let recovery = attempts
        .iter()
        .find(|a| a.feedback_id == "f2")
        .expect("the detractor got a follow-up");
    assert_eq!(recovery.status, Status::DryRun, "{recovery:?}");
    assert_eq!(recovery.playbook, "detractor_recovery");
    assert!(!recovery.preview.as_deref().unwrap_or_default().is_empty());
    assert_eq!(
        report.dry_run + report.skipped,
        2,
        "every intent ended in one recorded state: {report:?}"
    );
    assert_eq!(report.sent, 0, "dry run: nothing sent");
    assert!(replay.clock().now() >= t(14, 9));
}
