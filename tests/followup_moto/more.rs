//! The follow-up function on moto, continued: concurrent intents, dry run, SES events,
//! the unsubscribe link end to end, interrupted claims, an erase racing a dispatch.

use super::*;

/// Feedback given early on the 24th, four hours before the tests' clock.
const EARLY_24TH: &str = "2026-11-24T08:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_intents_for_one_customer_send_exactly_one() {
    let stack = Stack::start("caps").await;
    verify_sender(&stack).await;
    // The customer's profile (and contact block) comes from a real ingest.
    let body = mailed_survey("seed", "cust-1", 2, EARLY_24TH, "one@example.com");
    stack.send_ingest(&[body]).await;
    let plain =
        Ingest::lexicon(store(&stack), Arc::new(test_now)).with_settings(Settings::sized(2, 4));
    stack.drain_ingest(&plain).await;

    let d = Arc::new(dispatcher(&stack, DeliveryMode::Live, test_now()));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let body = serde_json::to_string(&intent(i, "cust-1")).unwrap();
            d.process(&format!("m{i}"), &body).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let count = |h: Handled| outcomes.iter().filter(|o| **o == h).count();
    assert_eq!(count(Handled::Recorded(Status::Sent)), 1, "{outcomes:?}");
    assert_eq!(
        count(Handled::Recorded(Status::Skipped)),
        19,
        "{outcomes:?}"
    );
    let data = stack.moto_data().await;
    assert_eq!(SentMail::all(&data).len(), 1);
    let h = store(&stack).followup_history("cust-1").await.unwrap();
    assert_eq!(h.len(), 20);
    assert!(h.iter().filter(|a| a.status == Status::Skipped).all(|a| a
        .reason
        .as_deref()
        .unwrap()
        .starts_with("frequency cap")));

    // Windows: after 7 days another playbook may go out; the same playbook waits 30.
    let s = store(&stack);
    let day = |days: i64| test_now() + Duration::days(days);
    let mut seq = Vec::new();
    for (f, pb, days) in [
        ("a", "detractor_recovery", 0),
        ("b", "promoter_review_ask", 3),
        ("c", "promoter_review_ask", 8),
        ("d", "detractor_recovery", 20),
        ("e", "detractor_recovery", 31),
        ("e", "detractor_recovery", 90),
    ] {
        let ids = Ids::new("cust-2", f, pb);
        seq.push(s.claim(&ids.at(day(days))).await.unwrap());
    }
    use Claim::*;
    let capped = |days| Capped {
        allowed_at: test_now() + Duration::days(days),
    };
    // The review ask waits out the apology's 7 days; the second apology its playbook's 30.
    assert_eq!(
        seq,
        [
            Granted,
            capped(7),
            Granted,
            capped(30),
            Granted,
            AlreadyClaimed
        ]
    );

    // A marketing message never blocks a service reply: the review ask of day 0 and
    // an apology on day 3 both go; a second review ask waits for both windows.
    let mut seq = Vec::new();
    for (f, pb, days) in [
        ("m", "promoter_review_ask", 0),
        ("s", "detractor_recovery", 3),
        ("t", "at_risk_winback", 8),
    ] {
        let ids = Ids::new("cust-4", f, pb);
        seq.push(s.claim(&ids.at(day(days))).await.unwrap());
    }
    assert_eq!(seq, [Granted, Granted, capped(10)]);

    // A delivery the provider refused gives the caps back (the values from before the
    // claim, kept beside them), and forgets the claim unless the attempt is final.
    let (a, b, c) = (
        Ids::new("cust-3", "a", "detractor_recovery"),
        Ids::new("cust-3", "b", "promoter_review_ask"),
        Ids::new("cust-3", "c", "promoter_review_ask"),
    );
    let d = Ids::new("cust-3", "d", "at_risk_winback");
    let hour = |hours: i64| test_now() + Duration::hours(hours);
    let mut seq = Vec::new();
    seq.push(s.claim(&a.at(hour(0))).await.unwrap());
    s.release(&a.at(hour(0)), false).await.unwrap();
    seq.push(s.claim(&a.at(hour(1))).await.unwrap()); // sent
    seq.push(s.claim(&b.at(hour(8 * 24))).await.unwrap());
    s.release(&b.at(hour(8 * 24)), true).await.unwrap();
    seq.push(s.claim(&b.at(hour(8 * 24 + 1))).await.unwrap());
    // Back to the send at hour 1: 8 days later another playbook may go, and the
    // refused one's own window never started.
    seq.push(s.claim(&c.at(hour(8 * 24 + 2))).await.unwrap());
    // A release after someone else moved the caps on leaves theirs alone.
    s.release(&b.at(hour(8 * 24)), true).await.unwrap();
    seq.push(s.claim(&d.at(hour(8 * 24 + 3))).await.unwrap());
    let last = seq.pop();
    assert_eq!(seq, [Granted, Granted, Granted, AlreadyClaimed, Granted]);
    assert!(matches!(last, Some(Capped { .. })), "{last:?}");
    let h = s.followup_history("cust-3").await.unwrap_or_default();
    assert!(h.is_empty(), "claims are not history records: {h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_mode_records_what_it_would_send_and_sends_nothing() {
    let stack = Stack::start("dry").await;
    let body = ada_survey("f1", "c1", 1, "2026-11-24T09:00:00Z");
    stack.send_ingest(&[body]).await;
    stack.drain_ingest(&ingest(&stack, test_now())).await;
    let reports = drain_followups(
        &stack,
        &dispatcher(&stack, DeliveryMode::DryRun, test_now()),
    )
    .await;
    assert_eq!(reports.iter().map(|r| r.dry_run).sum::<u32>(), 1);
    let data = stack.moto_data().await;
    assert!(SentMail::all(&data).is_empty());
    let h = store(&stack).followup_history("c1").await.unwrap();
    assert_eq!(h[0].status, Status::DryRun);
    assert!(
        h[0].preview.as_deref().is_some_and(|p| p.contains("Ada")),
        "{h:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_bounces_and_complaints_suppress_addresses_in_dynamodb() {
    let stack = Stack::start("bounce").await;
    let n = feedloop_followup::notifications::Notifications {
        store: store(&stack),
        suppression_salt: SALT.into(),
        clock: Arc::new(test_now),
    };
    for name in ["ses-bounce-hard", "ses-complaint"] {
        let r = n.handle(&sample_sns(name)).await.unwrap();
        assert_eq!(r.suppressed, 1, "{name}: {r:?}");
    }
    // Soft bounces: the first one re-delivered three times counts once.
    let soft = sample_sns("ses-bounce-soft");
    let first = feedloop_followup::notifications::SnsEvent {
        records: vec![soft.records[0].clone()],
    };
    for _ in 0..3 {
        assert_eq!(n.handle(&first).await.unwrap().suppressed, 0);
    }
    let key = |a: &str| vec![suppression::email_key(SALT, a)];
    let s = store(&stack);
    assert!(s
        .suppressed_among(&key("full@example.com"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(n.handle(&soft).await.unwrap().suppressed, 1);
    for a in ["gone@example.com", "angry@example.com", "full@example.com"] {
        assert!(
            !s.suppressed_among(&key(a)).await.unwrap().is_empty(),
            "{a}"
        );
    }
    // An unsubscribe never softens a bounce, and a staff opt-in lifts only what the
    // customer asked for (the complaint), never the provider's verdict (the bounce).
    s.suppress(
        &key("gone@example.com"),
        suppression::UNSUBSCRIBED,
        test_now(),
    )
    .await
    .unwrap();
    assert_eq!(s.lift(&key("gone@example.com")).await.unwrap(), 0);
    assert_eq!(
        s.suppressed_among(&key("gone@example.com"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.lift(&key("angry@example.com")).await.unwrap(), 1);
    assert!(s
        .suppressed_among(&key("angry@example.com"))
        .await
        .unwrap()
        .is_empty());
    s.suppress(&key("angry@example.com"), "complaint", test_now())
        .await
        .unwrap();
    assert!(s
        .suppressed_among(&key("ada@example.com"))
        .await
        .unwrap()
        .is_empty());

    // The bounced address is not mailed again: its customer's next apology is
    // skipped for that channel before anything is claimed or sent.
    verify_sender(&stack).await;
    let body = mailed_survey("f-gone", "c-gone", 2, EARLY_24TH, "GONE@example.com");
    stack.send_ingest(&[body]).await;
    stack.drain_ingest(&ingest(&stack, test_now())).await;
    let reports =
        drain_followups(&stack, &dispatcher(&stack, DeliveryMode::Live, test_now())).await;
    let skipped: u32 = reports.iter().map(|r| r.skipped).sum();
    assert_eq!(skipped, 1, "{reports:?}");
    let data = stack.moto_data().await;
    assert!(SentMail::all(&data).is_empty());
    // Staff see which channel was closed, and why.
    let history = feedloop_kit::ports::query::QueryStore::followups(
        &s,
        &feedloop_core::envelope::CustomerId::parse("c-gone").unwrap(),
    )
    .await
    .unwrap();
    assert!(
        history.iter().any(|a| a
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("address suppressed (Email)"))),
        "{history:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unsubscribe_link_in_a_sent_mail_opts_the_customer_out_end_to_end() {
    // GIVEN a detractor's apology, sent live through moto's SES
    let stack = Stack::start("unsub").await;
    verify_sender(&stack).await;
    let first = ada_survey("f1", "c-unsub", 2, "2026-11-24T09:00:00Z");
    stack.send_ingest(&[first]).await;
    stack.drain_ingest(&ingest(&stack, test_now())).await;
    drain_followups(&stack, &dispatcher(&stack, DeliveryMode::Live, test_now())).await;
    let mails = SentMail::all(&stack.moto_data().await);
    assert_eq!(mails.len(), 1, "{mails:?}");
    let header = mails[0].header("List-Unsubscribe").unwrap();
    let link = header.split(", ").next().unwrap();
    let token = link
        .trim_matches(['<', '>'])
        .split_once("?token=")
        .map(|(_, t)| t.to_owned())
        .unwrap();

    // WHEN the customer's mail client posts the one-click unsubscribe to the API
    let api = feedloop_api::Api {
        store: store(&stack),
        keys: keys(),
        clock: Arc::new(test_now),
    };
    let q: std::collections::HashMap<String, String> = [("token".into(), token.clone())].into();
    let page = api.handle("GET", "/unsubscribe", &q).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = api.handle("POST", "/unsubscribe", &q).await;
    assert_eq!(done.status, 200, "{}", done.body);

    // THEN the profile in DynamoDB says e-mail is off, from the link
    use feedloop_kit::ports::query::QueryStore;
    let p = store(&stack)
        .profile(&feedloop_core::envelope::CustomerId::parse("c-unsub").unwrap())
        .await
        .unwrap()
        .unwrap();
    let fact = p.consent.email.clone().expect("an e-mail consent fact");
    assert_eq!(
        (fact.value, fact.feedback_id.as_str()),
        (false, "consent:unsubscribe-link")
    );

    // AND the next apology, ten days later, is skipped for consent and nothing is sent,
    // even though the new feedback's customer block says nothing about consent
    let later = test_now() + Duration::days(10);
    let second = ada_survey("f2", "c-unsub", 1, "2026-12-04T09:00:00Z");
    stack.send_ingest(&[second]).await;
    stack.drain_ingest(&ingest(&stack, later)).await;
    drain_followups(&stack, &dispatcher(&stack, DeliveryMode::Live, later)).await;
    assert_eq!(SentMail::all(&stack.moto_data().await).len(), 1);
    let h = statuses(&store(&stack).followup_history("c-unsub").await.unwrap());
    assert_eq!(h.len(), 2, "{h:?}");
    assert!(
        h.iter().any(|(_, st, r)| *st == Status::Skipped
            && r.as_deref()
                .is_some_and(|r| r.starts_with("no channel with both an address and consent"))),
        "{h:?}"
    );
}

#[tokio::test]
async fn a_claim_left_behind_is_settled_once_and_only_after_its_lease() {
    use feedloop_kit::ports::followup::{AttemptRecord, Settle};
    let stack = Stack::start("settle").await;
    let store = store(&stack);
    let claimed_at = test_now();
    let ids = Ids::new("cust-9", "fb-9", "detractor_recovery");
    let request = ids.at(claimed_at);
    assert_eq!(store.claim(&request).await.unwrap(), Claim::Granted);
    let failed = AttemptRecord {
        customer_id: CustomerId::try_from("cust-9".to_owned()).unwrap(),
        feedback_id: FeedbackId::try_from("fb-9".to_owned()).unwrap(),
        playbook: "detractor_recovery".into(),
        status: Status::Failed,
        at: claimed_at + Duration::seconds(40),
        reason: Some(feedloop_followup::handler::INTERRUPTED.into()),
        channel: None,
        variant: None,
        preview: None,
        provider_id: None,
        sent: None,
    };
    // The claim is younger than the cutoff: its dispatcher may still be at work.
    let early = store
        .settle_interrupted(&failed, claimed_at - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(early, Settle::InFlight);
    let late = claimed_at + Duration::seconds(10);
    assert_eq!(
        store.settle_interrupted(&failed, late).await.unwrap(),
        Settle::Settled
    );
    assert_eq!(
        store.settle_interrupted(&failed, late).await.unwrap(),
        Settle::Final
    );
    let h = store.followup_history("cust-9").await.unwrap();
    assert_eq!(h, std::slice::from_ref(&failed));
    // Never claimed at all: nothing to settle, nothing written.
    let other = AttemptRecord {
        feedback_id: FeedbackId::try_from("fb-10".to_owned()).unwrap(),
        ..failed
    };
    assert_eq!(
        store.settle_interrupted(&other, late).await.unwrap(),
        Settle::Final
    );
    assert_eq!(store.followup_history("cust-9").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erase_racing_a_dispatch_brings_nothing_back() {
    // GIVEN two detractors with apologies on the queue, and the API that erases
    let stack = Stack::start("race").await;
    verify_sender(&stack).await;
    let mut k = keys();
    k.suppression_salt = SALT.into();
    let api = || feedloop_api::Api {
        store: store(&stack),
        keys: k.clone(),
        clock: Arc::new(test_now),
    };
    let bodies: Vec<String> = ["c-race-1", "c-race-2"]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            mailed_survey(
                &format!("f-race-{i}"),
                c,
                1,
                EARLY_24TH,
                &format!("{c}@example.com"),
            )
        })
        .collect();
    stack.send_ingest(&bodies).await;
    stack.drain_ingest(&ingest(&stack, test_now())).await;
    let s = store(&stack);

    // WHEN c-race-1 is erased between the dispatcher's suppression read and its claim
    let id_key = suppression::id_key(SALT, "c-race-1");
    assert!(s
        .suppressed_among(std::slice::from_ref(&id_key))
        .await
        .unwrap()
        .is_empty());
    api()
        .erase(&CustomerId::parse("c-race-1").unwrap())
        .await
        .unwrap();
    let unless = [id_key];
    let race = Ids::new("c-race-1", "f-race-0", "detractor_recovery");
    let claim = s
        .claim(&ClaimRequest {
            unless_suppressed: &unless,
            ..race.at(test_now())
        })
        .await
        .unwrap();

    // THEN the claim is refused and writes nothing: no attempt, no cap item
    assert_eq!(claim, Claim::Suppressed);
    assert_eq!(stack.items_under("c-race-1").await, 0);

    // WHEN c-race-2 is erased while their apology is with SES
    let base = dispatcher(&stack, DeliveryMode::Live, test_now());
    let racing = base.map_deliver(|inner| EraseWhileSending {
        inner,
        api: api(),
        customer: CustomerId::parse("c-race-2").unwrap(),
    });
    let reports = drain_followups(&stack, &racing).await;

    // THEN the record finds its claim gone and writes nothing back; c-race-1's intent,
    // dispatched too, is suppressed before any claim
    let suppressed: u32 = reports.iter().map(|r| r.suppressed).sum();
    assert_eq!(suppressed, 2, "{reports:?}");
    assert_eq!(stack.items_under("c-race-2").await, 0);
    assert_eq!(stack.items_under("c-race-1").await, 0);
    assert_eq!(
        SentMail::all(&stack.moto_data().await).len(),
        1,
        "only the one already out"
    );
}
