//! The dispatcher's delivery outcomes: provider refusals, unanswered sends, interrupted claims, staff tasks.

use super::*;

#[tokio::test]
async fn a_refused_address_fails_at_once_and_is_suppressed() {
    let w = world(DeliveryMode::Live, at(12));
    w.outbox.fail_next(DeliveryError::bad_recipient(
        "BadRequestException: Illegal address",
    ));
    w.feed_detractor().await;
    assert_eq!(w.dispatch_all(0).await, [Handled::Recorded(Status::Failed)]);
    assert_eq!(
        w.history("c1")[0]["reason"].as_str(),
        Some("BadRequestException: Illegal address (address suppressed)")
    );
    let key = suppression::email_key(SALT, "c1@example.com");
    assert!(w.store.snapshot().suppressed.contains_key(&key));
    // The address is never tried again, whichever customer it is on.
    w.feed("m2", &survey("f2", "c1", 1, "Still rude.", None))
        .await;
    assert_eq!(
        w.dispatch_all(1).await,
        [Handled::Recorded(Status::Skipped)]
    );
    assert!(w.history("c1").iter().any(|h| h["reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("address suppressed (Email)"))));
    assert_eq!(w.outbox.sent_count(), 0);
}

#[tokio::test]
async fn a_record_without_message_id_fails_the_invocation_like_ingest() {
    // A transient failure of such a record could not be reported, so it would be lost:
    // the whole batch is retried instead (the claim makes a second look harmless).
    let w = world(DeliveryMode::Live, at(12));
    let e = feedloop_kit::batch::event([(None, "{}".to_owned())]);
    assert!(matches!(
        w.dispatcher.handle(e).await,
        Err(feedloop_kit::batch::BatchError::MissingMessageId { index: 0 })
    ));
    assert_eq!(w.outbox.sent_count(), 0);
}

#[tokio::test]
async fn a_malformed_intent_is_rejected_and_acknowledged() {
    let w = world(DeliveryMode::Live, at(12));
    let body = r#"{"feedback_id": 1, "customer_id": "c9"}"#;
    let e = feedloop_kit::batch::event([(Some("bad".into()), body.to_owned())]);
    let (resp, report) = w.dispatcher.handle(e).await.unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(report.rejected, 1);
    let reject = &w.store.snapshot().rejects["bad"];
    assert!(reject.reason.starts_with("follow-up intent is not valid"));
    // the customer pointer is kept, so erasing c9 finds this record
    assert_eq!(reject.customer_id.as_deref(), Some("c9"));
}

#[tokio::test]
async fn an_enqueue_lost_after_the_commit_is_redone_by_the_redelivery() {
    let store = MemoryStore::default();
    let ingest = Ingest::lexicon(store.clone(), Arc::new(|| at(12)))
        .with_settings(Settings::sized(2, 2))
        .with_followups(
            Playbook::default_rules(),
            FlakySink(store.clone(), std::sync::atomic::AtomicBool::new(true)),
        );
    let body = survey("f1", "c1", 2, "Rude staff.", None);
    assert!(
        ingest.process("m1", &body).await.is_err(),
        "first delivery must be retried"
    );
    let s = store.snapshot();
    assert_eq!((s.profiles["c1"].version, s.followup_queue.len()), (1, 0));
    assert_eq!(
        ingest.process("m1", &body).await.unwrap(),
        feedloop_ingest::Processed::Duplicate
    );
    let s = store.snapshot();
    assert_eq!(s.profiles["c1"].version, 1, "counted once");
    assert_eq!(s.followup_queue.len(), 1);
    assert_eq!(s.followup_queue[0].playbook, "detractor_recovery");
}

#[tokio::test]
async fn the_shipped_sample_event_is_a_valid_intent() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/followup-intent.json"
    );
    let event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let w = world(DeliveryMode::DryRun, at(12));
    // The customer in the sample exists once their feedback was ingested.
    w.feed(
        "m0",
        &json!({"feedback_id": "nps-2026-11-7781", "customer_id": "cust-042", "kind": "survey",
                "occurred_at": "2026-11-21T18:05:00Z", "nps_score": 3, "text": "Delivery is always late.",
                "channel": "email", "customer": {"email": "cust-042@example.com"}})
        .to_string(),
    )
    .await;
    let (resp, report) = w.dispatcher.handle(event).await.unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!((report.dry_run, report.rejected), (1, 0), "{report:?}");
}

#[tokio::test]
async fn a_backfill_of_old_feedback_contacts_nobody_and_a_redrive_is_skipped_as_stale() {
    // GIVEN last month's detractor survey arriving today (a CSV backfill)
    let w = world(DeliveryMode::Live, at(12));
    let old = survey("f1", "c1", 1, "The parcel never arrived.", None)
        .replace("2026-11-24T09:00:00Z", "2026-10-20T09:00:00Z");

    // WHEN it is ingested, the profile learns from it but no intent is queued
    w.feed("m1", &old).await;
    let s = w.store.snapshot();
    assert!(s.followup_queue.is_empty(), "{:?}", s.followup_queue);
    assert_eq!(s.profiles["c1"].value.feedback_count, 1);

    // AND a fresh one queues an intent that, redriven from the DLQ four days later,
    // is skipped as stale instead of apologising for a long-gone complaint
    w.feed(
        "m2",
        &survey("f2", "c2", 1, "The parcel never arrived.", None),
    )
    .await;
    assert_eq!(w.store.snapshot().followup_queue.len(), 1);
    w.set_time(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());
    assert_eq!(
        w.dispatch_all(0).await,
        [Handled::Recorded(Status::Skipped)]
    );
    assert_eq!(w.outbox.sent_count(), 0);
    let h = w.history("c2");
    assert!(
        h[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("stale: the feedback is 99h old"),
        "{h:?}"
    );
}

#[tokio::test]
async fn no_answer_from_the_provider_is_failed_at_once_and_never_sent_again() {
    let w = world(DeliveryMode::Live, at(12));
    // One unanswered send: were it retried (in the invocation or through the queue),
    // the outbox would take the next try.
    w.outbox
        .fail_next(DeliveryError::unconfirmed("ses send: timeout"));
    w.feed_detractor().await;
    assert_eq!(w.dispatch_all(0).await, [Handled::Recorded(Status::Failed)]);
    assert_eq!(w.outbox.sent_count(), 0);
    assert!(w.requeued.0.lock().unwrap().is_empty());
    let h = w.history("c1");
    let reason = h[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with(handler::UNCONFIRMED), "{reason}");
    // It may have reached c1, so it counts against the caps like a sent one.
    w.feed("m2", &survey("f2", "c1", 1, "Still rude.", None))
        .await;
    assert_eq!(
        w.dispatch_all(1).await,
        [Handled::Recorded(Status::Skipped)]
    );
    assert_eq!(w.outbox.sent_count(), 0);
}

#[tokio::test]
async fn a_claim_left_by_a_dead_dispatcher_is_closed_as_failed_after_the_lease() {
    use feedloop_kit::ports::followup::{ClaimRequest, FollowUpStore};
    let w = world(DeliveryMode::Live, at(12));
    w.feed_detractor().await;
    let intent = w.store.snapshot().followup_queue[0].clone();
    let body = serde_json::to_string(&intent).unwrap();
    // A dispatcher claimed it ten seconds ago and has not recorded anything.
    let claimed_at = at(12) - chrono::Duration::seconds(10);
    let claim = ClaimRequest {
        customer_id: &intent.customer_id,
        feedback_id: &intent.feedback_id,
        playbook: &intent.playbook,
        purpose: intent.purpose,
        now: claimed_at,
        caps: Default::default(),
        unless_suppressed: &[],
    };
    w.store.claim(&claim).await.unwrap();
    // Inside the lease it may still be sending: retry later, touch nothing.
    let early = w.dispatcher.process("i0", &body).await;
    assert!(
        matches!(
            early,
            Err(feedloop_kit::ports::followup::StoreError::Transient(_))
        ),
        "{early:?}"
    );
    assert_eq!(w.history("c1")[0]["status"], "claimed");
    // Past the lease its dispatcher is gone: failed, not sent (it may have been).
    w.set_time(at(12) + chrono::Duration::seconds(25));
    assert_eq!(
        w.dispatcher.process("i0", &body).await.unwrap(),
        Handled::Recorded(Status::Failed)
    );
    let h = w.history("c1");
    assert_eq!(
        (h.len(), h[0]["status"].as_str(), h[0]["reason"].as_str()),
        (1, Some("failed"), Some(handler::INTERRUPTED))
    );
    assert_eq!(w.outbox.sent_count(), 0);
    // From then on it is an ordinary duplicate.
    assert_eq!(
        w.dispatcher.process("i0", &body).await.unwrap(),
        Handled::Duplicate
    );
}

#[tokio::test]
async fn a_message_that_says_a_person_will_act_hands_the_case_to_staff_first() {
    // GIVEN a detractor (its playbook's messages say the team will be in touch) and a
    // passive (its message only asks a question)
    let w = world(DeliveryMode::Live, at(12));
    w.feed_detractor().await;
    w.feed("m2", &survey("f2", "c2", 8, "Fine.", Some(true)))
        .await;
    assert_eq!(
        w.dispatch_all(0).await,
        [
            Handled::Recorded(Status::Sent),
            Handled::Recorded(Status::Sent)
        ]
    );
    // THEN staff got exactly the detractor's case, by ids only
    let tasks = w.outbox.staff_tasks.lock().unwrap().clone();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(
        (tasks[0].customer_id.as_str(), tasks[0].feedback_id.as_str()),
        ("c1", "f1")
    );
    let event = serde_json::to_string(&tasks[0]).unwrap();
    assert!(
        !event.contains("example.com") && !event.contains("Ada"),
        "{event}"
    );

    // AND when the hand-over fails, nothing is sent and the claim is given back
    let w = world(DeliveryMode::Live, at(12));
    w.feed_detractor().await;
    let failing = Dispatcher::new(
        w.store.clone(),
        NoStaff(w.outbox.clone()),
        w.requeued.clone(),
        SALT,
        Arc::new(|| at(12)),
    );
    let intent = w.store.snapshot().followup_queue[0].clone();
    let body = serde_json::to_string(&intent).unwrap();
    assert!(failing.process("i0", &body).await.is_err());
    assert_eq!(w.outbox.sent_count(), 0);
    assert_eq!(
        w.dispatcher.process("i0", &body).await.unwrap(),
        Handled::Recorded(Status::Sent),
        "the next delivery claims it again"
    );
}

#[test]
fn templates_promise_a_person_only_where_the_playbook_hands_the_case_to_staff() {
    let src = include_str!("../../crates/core/playbooks/templates.toml");
    let playbook = Playbook::default_rules();
    for forbidden in [
        "reopened",
        "senior colleague",
        "look into it today",
        "We've made changes",
    ] {
        assert!(!src.contains(forbidden), "no code does: {forbidden:?}");
    }
    let promises = ["will be in touch", "will contact you", "will ring you"];
    // Sections are `[<template>.<locale>.<variant>]`.
    for section in src.split("\n[").skip(1) {
        let template = section.split(['.', ']']).next().unwrap();
        if promises.iter().any(|p| section.contains(p)) {
            let rules: Vec<_> = playbook
                .rules
                .iter()
                .filter(|r| r.template == template)
                .collect();
            assert!(
                !rules.is_empty() && rules.iter().all(|r| r.staff_task),
                "{template} promises a person: its playbooks need staff_task"
            );
        }
    }
}
