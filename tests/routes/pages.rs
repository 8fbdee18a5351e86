//! The routes, continued: unsubscribe and consent, the dashboard, follow-up history pages.

use super::*;

#[tokio::test]
async fn an_unsubscribe_sticks_against_later_data_and_other_ids_until_staff_lift_it() {
    use feedloop_core::followup::unsubscribe::{issue, OptOut};
    use feedloop_core::followup::ContactChannel;
    // GIVEN c2 unsubscribes by the link in an e-mail
    let (store, api) = loaded().await;
    let token = issue(
        &keys().unsubscribe_key,
        &OptOut {
            customer_id: "c2".into(),
            channel: ContactChannel::Email,
            expires: now() + Duration::days(30),
        },
    );
    let q: HashMap<String, String> = [("token".to_string(), token)].into();
    assert_eq!(api.handle("POST", "/unsubscribe", &q).await.status, 200);
    let key = suppression::email_key(&keys().suppression_salt, "c2@example.com");
    assert_eq!(
        store.snapshot().suppressed.get(&key).map(String::as_str),
        Some(suppression::UNSUBSCRIBED)
    );

    // WHEN an integration stamps consent on a later envelope, under c2 and under a new
    // id with the same address, both detractors
    let ingest = Ingest::lexicon(store.clone(), Arc::new(|| now() + Duration::hours(1)))
        .with_settings(Settings {
            max_followup_age_hours: 24 * 30,
            ..Settings::sized(3, 2)
        })
        .with_followups(Playbook::default_rules(), store.clone());
    for (id, customer) in [("again", "c2"), ("alias", "c2-alias")] {
        let body = json!({"feedback_id": id, "customer_id": customer, "kind": "survey",
            "occurred_at": "2026-11-24T13:00:00Z", "nps_score": 1, "text": "Broken again",
            "customer": {"email": "C2@example.com", "consent": {"email": true}}});
        ingest.process(id, &body.to_string()).await.unwrap();
    }

    // THEN neither follow-up reaches the address: each is recorded as skipped, and why
    let outbox = Outbox::default();
    let d = dispatcher(&store, &outbox);
    let intents: Vec<_> = store
        .snapshot()
        .followup_queue
        .into_iter()
        .filter(|i| ["again", "alias"].contains(&i.feedback_id.as_str()))
        .collect();
    assert_eq!(intents.len(), 2);
    for i in &intents {
        let handled = d
            .process(i.feedback_id.as_str(), &serde_json::to_string(i).unwrap())
            .await
            .unwrap();
        assert_eq!(
            handled,
            Handled::Recorded(feedloop_kit::ports::followup::Status::Skipped)
        );
    }
    assert_eq!(outbox.sent_count(), 0);
    let reasons: Vec<String> = store
        .snapshot()
        .followups
        .values()
        .filter_map(|v| v["reason"].as_str().map(str::to_owned))
        .filter(|r| r.starts_with("address suppressed (Email)"))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    let c2 = store.snapshot().profiles["c2"].value.consent.current();
    assert_eq!(c2.email, Some(true), "the later envelope did set the fact");

    // AND staff recording an opt-in lifts it; a bounce on another address stays
    let bounced = suppression::email_key(&keys().suppression_salt, "c3@example.com");
    store.with(|s| s.suppressed.insert(bounced.clone(), "hard bounce".into()));
    for (customer, lifted) in [("c2", 1), ("c3", 0)] {
        let q: HashMap<String, String> = [("email", "on"), ("source", "support-desk")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = api
            .handle("PUT", &format!("/customers/{customer}/consent"), &q)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["suppressions_lifted"], lifted, "{customer}");
    }
    let s = store.snapshot();
    assert!(!s.suppressed.contains_key(&key));
    assert_eq!(
        s.suppressed.get(&bounced).map(String::as_str),
        Some("hard bounce")
    );
}

#[tokio::test]
async fn the_dashboard_renders_its_charts() {
    let (_, api) = loaded().await;
    let r = api.handle("GET", "/dashboard", &HashMap::new()).await;
    assert_eq!(
        (r.status, r.content_type),
        (200, "text/html; charset=utf-8")
    );
    for id in ["nps-chart", "drivers-chart", "segments-chart", "at-risk"] {
        assert!(r.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(r.body.matches("class=\"point\"").count() >= 10);
}

#[tokio::test]
async fn staff_record_consent_which_sticks_until_changed_and_bad_requests_are_named() {
    // GIVEN a loaded store (c2 gave no consent in their feedback)
    let (store, api) = loaded().await;
    let put = |q: &[(&str, &str)]| {
        let q: HashMap<String, String> = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let api = &api;
        async move { api.handle("PUT", "/customers/c2/consent", &q).await }
    };

    // WHEN staff record an e-mail opt-out
    let r = put(&[("email", "off"), ("source", "support-desk")]).await;

    // THEN it is in force, recorded with its time and source, and on the stored profile
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["in_force"]["email"], false);
    assert_eq!(v["consent"]["email"]["feedback_id"], "consent:support-desk");
    assert_eq!(v["consent"]["email"]["at"], "2026-11-24T12:00:00Z");
    let p = store.snapshot().profiles["c2"].value.clone();
    assert_eq!(p.contact.unwrap().value.consent.email, Some(false));

    // AND bad requests say what is wrong; an unknown customer is a 404
    for (q, code) in [
        (vec![], "invalid_consent"),
        (vec![("email", "maybe")], "invalid_consent"),
        (vec![("email", "on"), ("source", "a b")], "invalid_source"),
        (vec![("fax", "on")], "unknown_parameter"),
    ] {
        let r = put(&q).await;
        assert_eq!(r.status, 400, "{q:?}");
        assert!(r.body.contains(code), "{q:?}: {}", r.body);
    }
    let q: HashMap<String, String> = [("sms".to_string(), "on".to_string())].into();
    let r = api.handle("PUT", "/customers/nobody/consent", &q).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn the_unsubscribe_link_confirms_on_get_records_on_post_and_refuses_forgeries() {
    use feedloop_core::followup::unsubscribe::{issue, OptOut};
    use feedloop_core::followup::ContactChannel;
    // GIVEN a loaded store and the link an e-mail to c2 carries
    let (store, api) = loaded().await;
    let token = |customer: &str, days: i64, key: &[u8]| {
        issue(
            key,
            &OptOut {
                customer_id: customer.into(),
                channel: ContactChannel::Email,
                expires: now() + Duration::days(days),
            },
        )
    };
    let good = token("c2", 30, &keys().unsubscribe_key);
    let q = |t: &str| -> HashMap<String, String> { [("token".to_string(), t.to_string())].into() };
    let consent = |store: &MemoryStore| {
        store.snapshot().profiles["c2"]
            .value
            .contact
            .as_ref()
            .and_then(|c| c.value.consent.email)
    };
    let before = consent(&store);

    // WHEN the customer (or a mail scanner) opens it, THEN a confirm page, nothing changed
    let r = api.handle("GET", "/unsubscribe", &q(&good)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type.starts_with("text/html"));
    assert!(
        r.body.contains(&format!("action=\"?token={good}\"")),
        "{}",
        r.body
    );
    assert_eq!(consent(&store), before);

    // WHEN the one-click POST arrives, THEN the opt-out is recorded with its source
    let r = api.handle("POST", "/unsubscribe", &q(&good)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("You are unsubscribed"));
    assert_eq!(consent(&store), Some(false));
    let fact = store.snapshot().profiles["c2"].value.consent.email.clone();
    assert_eq!(
        fact.map(|f| (f.feedback_id, f.at)),
        Some(("consent:unsubscribe-link".to_owned(), now()))
    );

    // AND forged, foreign, expired or missing tokens are refused with a page that says so
    let mut forged = good.clone();
    forged.replace_range(..2, if good.starts_with("Yz") { "Yx" } else { "Yz" });
    for (t, status) in [
        (forged, 400),
        (token("c2", 30, b"another stack's key"), 400),
        (token("c2", -1, &keys().unsubscribe_key), 410),
        ("garbage".to_owned(), 400),
    ] {
        let r = api.handle("POST", "/unsubscribe", &q(&t)).await;
        assert_eq!(r.status, status, "{t}: {}", r.body);
        assert!(r.content_type.starts_with("text/html"), "{t}");
        assert!(r.body.contains("This link does not work"), "{t}");
    }
    let r = api.handle("GET", "/unsubscribe", &HashMap::new()).await;
    assert_eq!(
        (r.status, r.content_type.starts_with("text/html")),
        (400, true)
    );
    let r = api.handle("PUT", "/unsubscribe", &q(&good)).await;
    assert_eq!(r.status, 405);

    // AND a link for someone with no record answers the same, telling nobody who exists
    let r = api
        .handle(
            "POST",
            "/unsubscribe",
            &q(&token("nobody", 30, &keys().unsubscribe_key)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("You are unsubscribed"));
}

#[tokio::test]
async fn follow_up_history_pages_newest_first_behind_the_signed_cursor() {
    use feedloop_kit::ports::followup::{AttemptRecord, FollowUpStore, Status};
    // GIVEN a customer with 45 recorded follow-up attempts
    let (store, api) = loaded().await;
    for i in 0..45 {
        store
            .record(&AttemptRecord {
                customer_id: feedloop_core::envelope::CustomerId::parse("c2").unwrap(),
                feedback_id: feedloop_core::envelope::FeedbackId::parse(&format!("fb-{i:02}"))
                    .unwrap(),
                playbook: "detractor_recovery".into(),
                status: Status::Skipped,
                at: now() - Duration::hours(i),
                reason: Some("frequency cap".into()),
                channel: None,
                variant: None,
                preview: None,
                provider_id: None,
                sent: None,
            })
            .await
            .unwrap();
    }
    // WHEN the history is walked 20 at a time
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut first_cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q: HashMap<String, String> = [("limit".to_string(), "20".to_string())].into();
        if let Some(c) = &cursor {
            q.insert("cursor".into(), c.clone());
        }
        let r = api.handle("GET", "/customers/c2/followups", &q).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        pages += 1;
        for it in v["items"].as_array().unwrap() {
            seen.push(it["feedback_id"].as_str().unwrap().to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) => {
                first_cursor.get_or_insert_with(|| c.to_owned());
                cursor = Some(c.to_owned())
            }
            None => break,
        }
    }
    // THEN every attempt comes once, newest first, in three pages
    let want: Vec<String> = (0..45).map(|i| format!("fb-{i:02}")).collect();
    assert_eq!(pages, 3);
    assert_eq!(seen, want);
    // AND a cursor is bound to this customer's history
    let q: HashMap<String, String> = [("cursor".to_string(), first_cursor.unwrap())].into();
    let other = api.handle("GET", "/customers/c1/followups", &q).await;
    assert_eq!(other.status, 400, "{}", other.body);
    assert!(other.body.contains("invalid_cursor"));
}
