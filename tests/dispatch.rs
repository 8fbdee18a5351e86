//! The whole follow-up path in memory: ingest decides and enqueues, the dispatcher
//! guards, claims, delivers (to an outbox) and records; the next feedback is attributed.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, TimeZone, Utc};
use feedloop_core::followup::plan::{DispatchPolicy, Message};
use feedloop_core::followup::{suppression, Playbook, Purpose};
use feedloop_followup::handler::{self, Handled};
use feedloop_followup::{DeliveryMode, Dispatcher};
use feedloop_ingest::{Ingest, Settings};
use feedloop_kit::ports::followup::{DeliveryError, Status};
use feedloop_memory::MemoryStore;
use feedloop_memory::{Outbox, RequeueList};
use serde_json::json;

const SALT: &str = "test-salt";

fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, h, 0, 0).unwrap()
}

struct World {
    store: MemoryStore,
    ingest: Ingest<MemoryStore, MemoryStore>,
    dispatcher: Dispatcher<MemoryStore, Outbox, RequeueList>,
    outbox: Outbox,
    requeued: RequeueList,
    clock: Arc<std::sync::Mutex<DateTime<Utc>>>,
}

fn world(mode: DeliveryMode, now: DateTime<Utc>) -> World {
    let store = MemoryStore::default();
    let clock = Arc::new(std::sync::Mutex::new(now));
    let (c1, c2) = (clock.clone(), clock.clone());
    let ingest = Ingest::lexicon(store.clone(), Arc::new(move || *c1.lock().unwrap()))
        .with_settings(Settings::sized(2, 2))
        .with_followups(Playbook::default_rules(), store.clone());
    let outbox = Outbox::default();
    let requeued = RequeueList::default();
    let dispatcher = Dispatcher::new(
        store.clone(),
        outbox.clone(),
        requeued.clone(),
        SALT,
        Arc::new(move || *c2.lock().unwrap()),
    )
    .with_policy(DispatchPolicy {
        company: Some("Acme Bikes".into()),
        max_age_hours: feedloop_core::followup::DEFAULT_MAX_AGE_HOURS,
        ..DispatchPolicy::default()
    })
    .with_mode(mode);
    World {
        store,
        ingest,
        dispatcher,
        outbox,
        requeued,
        clock,
    }
}

fn survey(id: &str, customer: &str, score: u8, text: &str, consent_email: Option<bool>) -> String {
    let mut c = json!({"name": "Ada Lovelace", "email": format!("{customer}@example.com"), "timezone": "Europe/London"});
    if let Some(v) = consent_email {
        c["consent"] = json!({"email": v});
    }
    let occurred = if id == "f0" {
        "2026-11-24T09:30:00Z"
    } else {
        "2026-11-24T09:00:00Z"
    };
    json!({"feedback_id": id, "customer_id": customer, "kind": "survey", "occurred_at": occurred,
           "nps_score": score, "text": text, "channel": "email", "customer": c})
    .to_string()
}

impl World {
    async fn feed(&self, id: &str, body: &str) {
        self.ingest.process(id, body).await.unwrap();
    }

    /// The usual start: c1's NPS 2 about rude staff (f1), with consent to e-mail unset.
    async fn feed_detractor(&self) {
        self.feed("m1", &survey("f1", "c1", 2, "Rude staff.", None))
            .await;
    }

    /// c1's survey number `n` (feedback f`n`, message m`n`), `days` after the 24th,
    /// with consent to e-mail given.
    async fn c1_answers(&self, n: u32, days: u32, score: u8, text: &str) {
        let body = survey_on(days, &format!("f{n}"), "c1", score, text);
        self.feed(&format!("m{n}"), &body).await;
    }

    fn set_time(&self, now: DateTime<Utc>) {
        *self.clock.lock().unwrap() = now;
    }

    /// Hand every enqueued intent from `from` on to the dispatcher, in order.
    async fn dispatch_all(&self, from: usize) -> Vec<Handled> {
        let intents = self.store.snapshot().followup_queue;
        let mut out = Vec::new();
        for (i, intent) in intents.iter().enumerate().skip(from) {
            let body = serde_json::to_string(intent).unwrap();
            out.push(
                self.dispatcher
                    .process(&format!("i{i}"), &body)
                    .await
                    .unwrap(),
            );
        }
        out
    }

    fn history(&self, customer: &str) -> Vec<serde_json::Value> {
        self.store
            .snapshot()
            .followups
            .into_iter()
            .filter(|((c, _, _), _)| c == customer)
            .map(|(_, v)| v)
            .collect()
    }
}

#[tokio::test]
async fn a_detractor_gets_one_apology_and_the_next_survey_is_attributed() {
    let w = world(DeliveryMode::Live, at(12));
    let body = survey(
        "f1",
        "c1",
        2,
        "The parcel never arrived and support ignored me.",
        None,
    );
    w.feed("m1", &body).await;
    // Re-delivery of the same message: enqueued again, claimed once.
    w.feed("m1", &body).await;
    let handled = w.dispatch_all(0).await;
    assert_eq!(
        handled,
        [Handled::Recorded(Status::Sent), Handled::Duplicate]
    );
    let sent = w.outbox.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let Message::Email { to, email } = &sent[0].0 else {
        panic!("expected e-mail")
    };
    assert_eq!(to, "c1@example.com");
    assert!(
        email.text.contains("Ada") && email.text.contains("Acme Bikes"),
        "{}",
        email.text
    );
    assert!(!email.text.contains("{{") && !email.html.contains("{{"));
    let h = w.history("c1");
    assert_eq!((h.len(), h[0]["status"].as_str()), (1, Some("sent")));
    assert_eq!(h[0]["playbook"], "detractor_recovery");

    // Two days later the customer answers the next survey: a promoter now.
    w.set_time(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap());
    let next = survey("f2", "c1", 9, "Sorted quickly, thank you!", None)
        .replace("2026-11-24T09:00:00Z", "2026-11-26T09:00:00Z");
    w.feed("m2", &next).await;
    let s = w.store.snapshot();
    let stats = &s.variant_stats[&("detractor_recovery".into(), email.variant.clone())];
    assert_eq!(
        (stats.sent, stats.responded, stats.nps_change_sum),
        (1, 1, 7)
    );
    assert!(stats.mean_sentiment_change().unwrap() > 0.5);
    assert!(s.pending_followups.is_empty());
    // Attribution is once: a re-delivery of the answer adds nothing.
    w.feed("m2", &next).await;
    assert_eq!(w.store.snapshot().variant_stats, s.variant_stats);
}

#[tokio::test]
async fn the_frequency_cap_skips_a_second_follow_up_within_the_week() {
    let w = world(DeliveryMode::Live, at(12));
    w.feed("m1", &survey("f1", "c1", 1, "Broken on arrival.", None))
        .await;
    w.feed(
        "m2",
        &survey("f2", "c1", 0, "Still broken, nobody answers.", None),
    )
    .await;
    let handled = w.dispatch_all(0).await;
    assert_eq!(
        handled,
        [
            Handled::Recorded(Status::Sent),
            Handled::Recorded(Status::Skipped)
        ]
    );
    let h = w.history("c1");
    let skipped = h.iter().find(|v| v["status"] == "skipped").unwrap();
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .starts_with("frequency cap"),
        "{skipped}"
    );
    assert_eq!(w.outbox.sent_count(), 1);
}

/// A survey `days` after the 24th, answered at 09:00.
fn survey_on(days: u32, id: &str, customer: &str, score: u8, text: &str) -> String {
    survey(id, customer, score, text, Some(true)).replace(
        "2026-11-24T09:00:00Z",
        &format!("2026-11-{}T09:00:00Z", 24 + days),
    )
}

fn day(days: u32, h: u32) -> DateTime<Utc> {
    at(h) + chrono::Duration::days(days.into())
}

#[tokio::test]
async fn a_marketing_message_never_costs_a_customer_their_apology() {
    // GIVEN a promoter who was asked for a review (marketing) on the 24th
    let w = world(DeliveryMode::Live, at(12));
    w.c1_answers(1, 0, 10, "Lovely staff, quick service!").await;
    assert_eq!(w.dispatch_all(0).await, [Handled::Recorded(Status::Sent)]);
    // WHEN three days later they answer a 2 and complain
    w.set_time(day(3, 12));
    w.c1_answers(2, 3, 2, "Charged twice and nobody answers.")
        .await;
    // THEN the apology goes out: the review ask's 7-day window is marketing's
    assert_eq!(w.dispatch_all(1).await, [Handled::Recorded(Status::Sent)]);
    let purposes: Vec<Purpose> = w
        .outbox
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(_, p)| *p)
        .collect();
    assert_eq!(purposes, [Purpose::Marketing, Purpose::Service]);
}

#[tokio::test]
async fn a_capped_service_reply_is_deferred_to_when_the_cap_allows_not_dropped() {
    // GIVEN one service reply per customer, and one apology, per 2 days; one sent on the 24th
    let mut w = world(DeliveryMode::Live, at(12));
    w.dispatcher.policy.caps.global = feedloop_core::followup::guards::Window::days(2);
    w.dispatcher.policy.caps.playbook = feedloop_core::followup::guards::Window::days(2);
    w.c1_answers(1, 0, 1, "Broken on arrival.").await;
    assert_eq!(w.dispatch_all(0).await, [Handled::Recorded(Status::Sent)]);
    // WHEN the customer complains again the next day
    w.set_time(day(1, 12));
    w.c1_answers(2, 1, 0, "Still broken, nobody answers.").await;
    let handled = w.dispatch_all(1).await;
    // THEN the second reply waits on the queue (15-minute hops) instead of being skipped
    assert_eq!(handled, [Handled::Deferred]);
    let (body, wait) = w.requeued.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(wait, std::time::Duration::from_secs(900));
    assert!(w.history("c1").iter().all(|v| v["status"] != "skipped"));
    // AND when the cap allows (the 26th, 12:00) it is sent
    w.set_time(day(2, 12));
    let again = w.dispatcher.process("i-again", &body).await.unwrap();
    assert_eq!(again, Handled::Recorded(Status::Sent));
    assert_eq!(w.outbox.sent_count(), 2);
    // AND a third complaint whose wait would outlast its freshness is skipped, saying when
    w.set_time(day(3, 12));
    w.dispatcher.policy.caps.global = feedloop_core::followup::guards::Window::days(7);
    w.c1_answers(3, 3, 0, "Third time.").await;
    assert_eq!(
        w.dispatch_all(2).await,
        [Handled::Recorded(Status::Skipped)]
    );
    let skipped = w
        .history("c1")
        .into_iter()
        .find(|v| v["status"] == "skipped")
        .unwrap();
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("cannot go to this customer before 2026-12-03"),
        "{skipped}"
    );
}

#[tokio::test]
async fn an_opt_out_after_the_feedback_wins_and_suppressed_customers_are_never_contacted() {
    let w = world(DeliveryMode::Live, at(12));
    w.feed("m1", &survey("f1", "c1", 2, "Late again.", None))
        .await;
    // Before the intent is dispatched, a newer message carries the opt-out.
    w.feed(
        "m2",
        &survey("f0", "c1", 5, "Please stop e-mailing me.", Some(false)),
    )
    .await;
    w.feed("m3", &survey("f3", "c2", 2, "Late again.", None))
        .await;
    let c2 = w.store.snapshot().profiles["c2"]
        .value
        .contact
        .clone()
        .map(|c| c.value);
    // Suppressed by e-mail address (as after an erasure, under another id).
    let key = suppression::keys(SALT, "other-id", c2.as_ref())[1].clone();
    w.store.with(|s| s.suppressed.insert(key, "erased".into()));
    let handled = w.dispatch_all(0).await;
    assert_eq!(
        handled,
        [
            Handled::Recorded(Status::Skipped),
            Handled::Recorded(Status::Skipped),
            Handled::Recorded(Status::Skipped)
        ]
    );
    let reasons: Vec<String> = w
        .history("c1")
        .iter()
        .map(|v| v["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("no channel with both an address and consent")),
        "{reasons:?}"
    );
    // Only the address is suppressed, not c2: staff see which channel and why.
    assert!(
        w.history("c2")[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("address suppressed (Email)")),
        "{:?}",
        w.history("c2")
    );
    assert_eq!(w.outbox.sent_count(), 0);
}

#[tokio::test]
async fn dry_run_records_what_it_would_send_and_sends_nothing() {
    let w = world(DeliveryMode::DryRun, at(12));
    w.feed_detractor().await;
    assert_eq!(w.dispatch_all(0).await, [Handled::Recorded(Status::DryRun)]);
    let h = w.history("c1");
    assert_eq!(h[0]["status"], "dry_run");
    assert!(h[0]["preview"].as_str().unwrap().len() > 5);
    assert_eq!(w.outbox.sent_count(), 0);
    assert!(
        w.store.snapshot().pending_followups.is_empty(),
        "nothing sent, nothing to attribute"
    );
}

#[tokio::test]
async fn quiet_hours_defer_through_the_queue() {
    // 23:00 in London: quiet until 08:00, requeued with the longest SQS delay.
    let w = world(DeliveryMode::Live, at(23));
    w.feed_detractor().await;
    assert_eq!(w.dispatch_all(0).await, [Handled::Deferred]);
    let requeued = w.requeued.0.lock().unwrap().clone();
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].1, std::time::Duration::from_secs(900));
    assert!(w.history("c1").is_empty(), "a deferral is not an attempt");
}

#[tokio::test]
async fn delivery_errors_are_retried_then_recorded_as_failed() {
    let w = world(DeliveryMode::Live, at(12));
    w.outbox.fail_next(DeliveryError::transient("Throttling"));
    w.feed_detractor().await;
    assert_eq!(w.dispatch_all(0).await, [Handled::Recorded(Status::Sent)]);

    w.outbox.fail_next(DeliveryError::permanent(
        "MessageRejected: sender is not verified",
    ));
    w.feed("m2", &survey("f2", "c2", 2, "Rude staff.", None))
        .await;
    assert_eq!(w.dispatch_all(1).await, [Handled::Recorded(Status::Failed)]);
    let h = w.history("c2");
    assert_eq!(
        (h[0]["status"].as_str(), h[0]["reason"].as_str()),
        (
            Some("failed"),
            Some("MessageRejected: sender is not verified")
        )
    );
    // Nothing reached c2, so nothing counts against their caps: the next complaint
    // (same playbook, inside both windows) is followed up. The failed one is not
    // tried again, and the address is not suppressed for a fault of ours.
    w.feed("m3", &survey("f3", "c2", 1, "Still rude.", None))
        .await;
    assert_eq!(w.dispatch_all(2).await, [Handled::Recorded(Status::Sent)]);
    assert!(w.store.snapshot().suppressed.is_empty());
}

#[tokio::test]
async fn a_provider_refusing_for_now_gives_back_claim_and_caps_and_requeues_with_backoff() {
    let w = world(DeliveryMode::Live, at(12));
    // Every try inside the invocation is refused (a sending pause).
    for _ in 0..handler::DELIVERY_ATTEMPTS {
        w.outbox
            .fail_next(DeliveryError::transient("SendingPausedException: paused"));
    }
    w.feed_detractor().await;
    assert_eq!(w.dispatch_all(0).await, [Handled::BackedOff]);
    assert!(w.history("c1").is_empty(), "the claim is given back");
    let (body, wait) = w.requeued.0.lock().unwrap()[0].clone();
    assert_eq!(wait, std::time::Duration::from_secs(60));
    let again: feedloop_core::followup::FollowUpIntent = serde_json::from_str(&body).unwrap();
    assert_eq!(again.delivery_attempts, 1);

    // The requeued intent, delivered again once the pause is over, claims and sends:
    // neither the claim nor the caps were left behind.
    w.set_time(at(12) + chrono::Duration::minutes(1));
    let h = w.dispatcher.process("again", &body).await.unwrap();
    assert_eq!(h, Handled::Recorded(Status::Sent));
    assert_eq!(w.outbox.sent_count(), 1);

    // Backoff doubles up to SQS's 15 minutes; the last round gives up for good.
    assert_eq!(
        handler::backoff_delay(3),
        std::time::Duration::from_secs(480)
    );
    assert_eq!(
        handler::backoff_delay(7),
        std::time::Duration::from_secs(900)
    );
    w.feed("m2", &survey("f2", "c2", 2, "Rude staff.", None))
        .await;
    let mut last = w.store.snapshot().followup_queue[1].clone();
    last.delivery_attempts = handler::DELIVERY_ROUNDS - 1;
    for _ in 0..handler::DELIVERY_ATTEMPTS {
        w.outbox.fail_next(DeliveryError::transient(
            "LimitExceededException: daily quota",
        ));
    }
    let h = w
        .dispatcher
        .process("last", &serde_json::to_string(&last).unwrap())
        .await
        .unwrap();
    assert_eq!(h, Handled::Recorded(Status::Failed));
    let reason = w.history("c2")[0]["reason"].as_str().unwrap().to_owned();
    assert_eq!(
        reason,
        format!(
            "gave up after {} deliveries: LimitExceededException: daily quota",
            handler::DELIVERY_ROUNDS
        )
    );
    assert_eq!(w.requeued.0.lock().unwrap().len(), 1, "not requeued again");
}

/// Fails the first enqueue, as if the Lambda died between the commit and the send.
struct FlakySink(MemoryStore, std::sync::atomic::AtomicBool);

impl feedloop_kit::ports::ingest::FollowUpSink for FlakySink {
    async fn enqueue(
        &self,
        i: &feedloop_core::followup::FollowUpIntent,
        now: DateTime<Utc>,
    ) -> Result<(), feedloop_kit::StoreError> {
        if self.1.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(feedloop_kit::StoreError::Transient("queue timeout".into()));
        }
        self.0.enqueue(i, now).await
    }
    async fn stored_intent(
        &self,
        c: &feedloop_core::envelope::CustomerId,
        k: &str,
    ) -> Result<Option<feedloop_core::followup::FollowUpIntent>, feedloop_kit::StoreError> {
        self.0.stored_intent(c, k).await
    }
    async fn pending(
        &self,
        c: &feedloop_core::envelope::CustomerId,
    ) -> Result<Option<feedloop_core::followup::outcomes::SentState>, feedloop_kit::StoreError>
    {
        self.0.pending(c).await
    }
    async fn record_outcome(
        &self,
        c: &feedloop_core::envelope::CustomerId,
        s: &feedloop_core::followup::outcomes::SentState,
        o: &feedloop_core::followup::outcomes::Outcome,
    ) -> Result<(), feedloop_kit::StoreError> {
        self.0.record_outcome(c, s, o).await
    }
}

/// An outbox whose staff hand-over is down.
struct NoStaff(Outbox);

impl feedloop_kit::ports::followup::Deliver for NoStaff {
    async fn deliver(
        &self,
        m: &feedloop_core::followup::plan::Message,
        p: feedloop_core::followup::Purpose,
    ) -> Result<String, DeliveryError> {
        self.0.deliver(m, p).await
    }
    async fn hand_to_staff(
        &self,
        _: &feedloop_kit::ports::followup::StaffTask,
    ) -> Result<(), DeliveryError> {
        Err(DeliveryError::transient("ServiceUnavailable: injected"))
    }
}

#[path = "dispatch/delivery.rs"]
mod delivery;
