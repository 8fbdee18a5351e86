//! Follow-ups over the real protocols (moto server): ingest -> follow-up queue ->
//! dispatcher -> SES v2 / SNS, read back from moto's `/moto-api/data.json`; caps under
//! concurrency; opt-out, suppression and dry-run.

use feedloop_core::envelope::{CustomerId, FeedbackId};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use feedloop_aws::followups::{AwsDelivery, AwsFollowUps};
use feedloop_aws::{DynamoStore, SqsQueue};
use feedloop_core::followup::guards::CapPolicy;
use feedloop_core::followup::plan::DispatchPolicy;
use feedloop_core::followup::templates::Templates;
use feedloop_core::followup::unsubscribe::UnsubscribeLinks;
use feedloop_core::followup::{
    suppression, ContactChannel, FollowUpIntent, Playbook, PlaybookId, Purpose,
};
use feedloop_followup::handler::Handled;
use feedloop_followup::{DeliveryMode, Dispatcher};
use feedloop_ingest::poller::{poll_once, succeeded, to_event};
use feedloop_ingest::{Ingest, Settings};
use feedloop_kit::ports::followup::{
    Claim, ClaimRequest, Deliver, DeliveryError, FollowUpStore, Status, SuppressionList,
};
use feedloop_kit::ports::ingest::MessageQueue;
use feedloop_tests::harness::{SentMail, Stack};
use feedloop_tests::test_now;
use serde_json::{json, Value};

const SALT: &str = "moto-salt";
const FROM: &str = "care@acme.test";
const CONFIGURATION_SET: &str = "feedloop-followups";
const SECRET: &str = "followup-moto-secret-0123456789abcdef";
const UNSUBSCRIBE_URL: &str = "https://api.example.test/unsubscribe";

fn keys() -> feedloop_core::keys::StackKeys {
    feedloop_core::keys::StackKeys::derive(SECRET).unwrap()
}

type AwsDispatcher = Dispatcher<DynamoStore, AwsDelivery, SqsQueue>;

fn store(stack: &Stack) -> DynamoStore {
    DynamoStore::new(stack.ddb(), &stack.names.table, 365)
}

fn dispatcher(stack: &Stack, mode: DeliveryMode, now: DateTime<Utc>) -> AwsDispatcher {
    Dispatcher {
        store: store(stack),
        deliver: AwsDelivery {
            ses: aws_sdk_sesv2::Client::new(&stack.sdk),
            sns: aws_sdk_sns::Client::new(&stack.sdk),
            from: FROM.into(),
            reply_to: Some("care@acme.test".into()),
            configuration_set: Some(CONFIGURATION_SET.into()),
            events: aws_sdk_eventbridge::Client::new(&stack.sdk),
            staff_event_bus: "default".into(),
        },
        requeue: SqsQueue::new(stack.sqs(), &stack.urls.followup, 0),
        templates: Templates::default_catalog(),
        policy: DispatchPolicy {
            company: Some("Acme Bikes".into()),
            max_age_hours: feedloop_core::followup::DEFAULT_MAX_AGE_HOURS,
            unsubscribe: Some(UnsubscribeLinks {
                url: UNSUBSCRIBE_URL.into(),
                key: keys().unsubscribe_key,
            }),
            ..DispatchPolicy::default()
        },
        mode,
        suppression_salt: SALT.into(),
        clock: Arc::new(move || now),
        claim_lease: std::time::Duration::from_secs(30),
    }
}

fn ingest(stack: &Stack, now: DateTime<Utc>) -> Ingest<DynamoStore, AwsFollowUps> {
    let store = store(stack);
    let sink = AwsFollowUps {
        store: store.clone(),
        sqs: stack.sqs(),
        queue_url: stack.urls.followup.clone(),
    };
    Ingest::lexicon(store, Arc::new(move || now))
        .with_settings(Settings {
            aggregate_shards: 2,
            max_concurrency: 4,
            ..Settings::local(30.0)
        })
        .with_followups(Playbook::default_rules(), sink)
}

async fn verify_sender(stack: &Stack) {
    let ses = aws_sdk_sesv2::Client::new(&stack.sdk);
    ses.create_email_identity()
        .email_identity(FROM)
        .send()
        .await
        .unwrap();
    // What the template creates: mail goes through the stack's configuration set.
    ses.create_configuration_set()
        .configuration_set_name(CONFIGURATION_SET)
        .send()
        .await
        .unwrap();
}

/// Run ingest over everything on the ingest queue, like the Lambda service would.
async fn drain_ingest(stack: &Stack, ingest: &Ingest<DynamoStore, AwsFollowUps>) {
    let q = SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0);
    while poll_once(&q, ingest, 10).await.unwrap().0 > 0 {}
}

/// Run the dispatcher over the follow-up queue until it is empty.
async fn drain_followups<D: Deliver>(
    stack: &Stack,
    d: &Dispatcher<DynamoStore, D, SqsQueue>,
) -> Vec<feedloop_followup::DispatchReport> {
    let q = SqsQueue::new(stack.sqs(), &stack.urls.followup, 0);
    let mut reports = Vec::new();
    loop {
        let msgs = q.receive(10).await.unwrap();
        if msgs.is_empty() {
            return reports;
        }
        let (resp, report) = d.handle(to_event(&msgs)).await.unwrap();
        q.ack(&succeeded(&msgs, &resp)).await.unwrap();
        reports.push(report);
    }
}

fn survey(id: &str, customer: &str, score: u8, at: &str, channel: &str, who: Value) -> String {
    json!({"feedback_id": id, "customer_id": customer, "kind": "survey", "occurred_at": at,
           "nps_score": score, "text": "The order arrived broken and nobody answered my e-mails.",
           "channel": channel, "customer": who})
    .to_string()
}

fn statuses(
    h: &[feedloop_kit::ports::followup::AttemptRecord],
) -> Vec<(String, Status, Option<String>)> {
    h.iter()
        .map(|a| (a.playbook.to_string(), a.status, a.reason.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_to_followup_queue_to_ses_and_sns_end_to_end() {
    let stack = Stack::start("fu-e2e").await;
    verify_sender(&stack).await;
    let at = "2026-11-24T09:00:00Z";
    let mail = survey(
        "f-mail",
        "c-mail",
        2,
        at,
        "email",
        json!({"name": "Ada Lovelace", "email": "ada@example.com"}),
    );
    let bodies = vec![
        mail.clone(),
        mail, // a re-delivered message: counted once, one apology
        survey(
            "f-sms",
            "c-sms",
            1,
            at,
            "sms",
            json!({"name": "Bo", "phone": "+447700900123"}),
        ),
        // Replied STOP at some point: on SNS's opt-out list (moto: numbers ending 99).
        survey(
            "f-stop",
            "c-stop",
            1,
            at,
            "sms",
            json!({"name": "Cy", "phone": "+447700900199"}),
        ),
        survey(
            "f-out",
            "c-out",
            0,
            at,
            "email",
            json!({"email": "out@example.com", "consent": {"email": false}}),
        ),
        survey(
            "f-supp",
            "c-supp",
            3,
            at,
            "email",
            json!({"email": "gone@example.com"}),
        ),
        // A promoter without marketing consent: no review ask.
        survey(
            "f-prom",
            "c-prom",
            10,
            at,
            "email",
            json!({"email": "fan@example.com"}),
        )
        .replace(
            "The order arrived broken and nobody answered my e-mails.",
            "Brilliant service, love it!",
        ),
    ];
    let s = store(&stack);
    let keys = suppression::keys(SALT, "c-supp", None);
    s.suppress(&keys, "unsubscribed", test_now()).await.unwrap();
    SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0)
        .send_all(&bodies)
        .await
        .unwrap();
    drain_ingest(&stack, &ingest(&stack, test_now())).await;
    let reports =
        drain_followups(&stack, &dispatcher(&stack, DeliveryMode::Live, test_now())).await;
    let sent: u32 = reports.iter().map(|r| r.sent).sum();
    let duplicate: u32 = reports.iter().map(|r| r.duplicate).sum();
    assert_eq!((sent, duplicate), (2, 1), "{reports:?}");

    // What moto's SES and SNS actually received.
    let data = stack.moto_data().await;
    let mails = SentMail::all(&data);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, ["ada@example.com"]);
    assert_eq!(mails[0].source, FROM);
    assert_eq!(mails[0].header("To").as_deref(), Some("ada@example.com"));
    let body = mails[0].part("plain");
    assert!(
        body.contains("Ada") && body.contains("Acme Bikes") && !body.contains("{{"),
        "{body}"
    );
    // RFC 8058 one-click headers, and the same signed link in both parts.
    let header = mails[0]
        .header("List-Unsubscribe")
        .expect("a List-Unsubscribe header");
    let (https, mailto) = header
        .split_once(", ")
        .expect("an https URL and a mailto: alternative");
    assert_eq!(mailto, "<mailto:care@acme.test?subject=unsubscribe>");
    assert_eq!(
        mails[0].header("Reply-To").as_deref(),
        Some("care@acme.test")
    );
    let link = https
        .strip_prefix('<')
        .and_then(|h| h.strip_suffix('>'))
        .expect("the https URL in angle brackets")
        .to_owned();
    assert!(
        link.starts_with(&format!("{UNSUBSCRIBE_URL}?token=")),
        "{link}"
    );
    assert_eq!(
        mails[0].header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(body.contains(&link), "{body}");
    assert!(mails[0].part("html").contains(&format!("href=\"{link}\"")));
    assert!(!link.contains("ada"), "the link carries no address: {link}");
    let sms = data["sns"]["SMS"].as_array().cloned().unwrap_or_default();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0]["phone_number"], "+447700900123");
    let text = sms[0]["message"].as_str().unwrap();
    assert!(
        text.starts_with("Acme Bikes: ") && text.chars().count() <= 160,
        "{text}"
    );

    // Every attempt is on the customer's history with its status.
    let hist = |c: &'static str| {
        let s = s.clone();
        async move { statuses(&s.followup_history(c).await.unwrap()) }
    };
    let mail_h = s.followup_history("c-mail").await.unwrap();
    assert_eq!(mail_h.len(), 1);
    assert_eq!(
        (mail_h[0].status, mail_h[0].channel),
        (Status::Sent, Some(ContactChannel::Email))
    );
    assert!(mail_h[0]
        .provider_id
        .as_deref()
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(hist("c-sms").await[0].1, Status::Sent);
    let stop = hist("c-stop").await;
    assert_eq!(stop[0].1, Status::Failed);
    assert!(
        stop[0].2.as_deref().unwrap().contains("opt-out list"),
        "{stop:?}"
    );
    let out = hist("c-out").await;
    assert_eq!(out[0].1, Status::Skipped);
    assert!(out[0]
        .2
        .as_deref()
        .unwrap()
        .starts_with("no channel with both an address and consent"));
    assert!(
        hist("c-supp").await.is_empty(),
        "suppressed: not contacted, nothing recorded"
    );
    assert_eq!(reports.iter().map(|r| r.suppressed).sum::<u32>(), 1);
    let prom = hist("c-prom").await;
    assert_eq!(
        (prom[0].0.as_str(), prom[0].1),
        ("promoter_review_ask", Status::Skipped)
    );

    // Two days later the e-mailed customer answers again: attributed to the variant.
    let later = test_now() + Duration::days(2);
    let answer = survey(
        "f-mail-2",
        "c-mail",
        9,
        "2026-11-26T09:00:00Z",
        "email",
        json!({"email": "ada@example.com"}),
    );
    SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0)
        .send_all(&[answer.clone(), answer])
        .await
        .unwrap();
    drain_ingest(&stack, &ingest(&stack, later)).await;
    let stats = s.followup_stats().await.unwrap();
    let variant = mail_h[0].variant.clone().unwrap();
    let (_, _, st) = stats
        .iter()
        .find(|(p, v, _)| p == "detractor_recovery" && *v == variant)
        .expect("stats for the e-mailed variant");
    assert_eq!(
        (st.responded, st.nps_change_sum, st.nps_change_n),
        (1, 7, 1),
        "{stats:?}"
    );
    let total_sent: u64 = stats.iter().map(|(_, _, st)| st.sent).sum();
    assert_eq!(total_sent, 2);
}

/// A claim's ids, owned, for requests that borrow them.
struct Ids {
    customer: CustomerId,
    feedback: FeedbackId,
    playbook: PlaybookId,
}

impl Ids {
    fn new(customer: &str, feedback: &str, playbook: &str) -> Ids {
        Ids {
            customer: CustomerId::parse(customer).unwrap(),
            feedback: FeedbackId::parse(feedback).unwrap(),
            playbook: playbook.into(),
        }
    }

    fn at(&self, now: DateTime<Utc>) -> ClaimRequest<'_> {
        ClaimRequest {
            customer_id: &self.customer,
            feedback_id: &self.feedback,
            playbook: &self.playbook,
            purpose: purpose_of(self.playbook.as_str()),
            now,
            caps: CapPolicy::default(),
            unless_suppressed: &[],
        }
    }
}

fn purpose_of(playbook: &str) -> Purpose {
    match playbook {
        "detractor_recovery" | "solved_but_still_negative" => Purpose::Service,
        _ => Purpose::Marketing,
    }
}

fn intent(i: usize, customer: &str) -> FollowUpIntent {
    FollowUpIntent {
        feedback_id: FeedbackId::parse(&format!("fb-{i}")).unwrap(),
        customer_id: CustomerId::parse(customer).unwrap(),
        playbook: "detractor_recovery".into(),
        purpose: Purpose::Service,
        priority: 100,
        template: "detractor_recovery".into(),
        channels: vec![ContactChannel::Email],
        not_before: test_now() - Duration::hours(1),
        occurred_at: Some(test_now() - Duration::hours(2)),
        top_negative_theme: None,
        nps_score: Some(2),
        ticket_id: None,
        theme_label: Some("Delivery".into()),
        inbound: Some(feedloop_core::envelope::Channel::Email),
        locale: None,
        sentiment: Some(-0.6),
        delivery_attempts: 0,
        first_seen: Vec::new(),
        staff_task: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_intents_for_one_customer_send_exactly_one() {
    let stack = Stack::start("caps").await;
    verify_sender(&stack).await;
    // The customer's profile (and contact block) comes from a real ingest.
    let body = survey(
        "seed",
        "cust-1",
        2,
        "2026-11-24T08:00:00Z",
        "email",
        json!({"email": "one@example.com"}),
    );
    SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0)
        .send_all(&[body])
        .await
        .unwrap();
    let plain = Ingest::lexicon(store(&stack), Arc::new(test_now)).with_settings(Settings {
        aggregate_shards: 2,
        max_concurrency: 4,
        ..Settings::local(30.0)
    });
    while poll_once(
        &SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0),
        &plain,
        10,
    )
    .await
    .unwrap()
    .0 > 0
    {}

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
    let body = survey(
        "f1",
        "c1",
        1,
        "2026-11-24T09:00:00Z",
        "email",
        json!({"name": "Ada", "email": "ada@example.com"}),
    );
    SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0)
        .send_all(&[body])
        .await
        .unwrap();
    drain_ingest(&stack, &ingest(&stack, test_now())).await;
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

fn sample_sns(name: &str) -> feedloop_followup::notifications::SnsEvent {
    let p =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../events/{name}.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    match feedloop_followup::Incoming::from_value(v).unwrap() {
        feedloop_followup::Incoming::Notifications(e) => e,
        other => panic!("{name}: {other:?}"),
    }
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
    let body = survey(
        "f-gone",
        "c-gone",
        2,
        "2026-11-24T08:00:00Z",
        "email",
        json!({"email": "GONE@example.com"}),
    );
    SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0)
        .send_all(&[body])
        .await
        .unwrap();
    drain_ingest(&stack, &ingest(&stack, test_now())).await;
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
    let first = survey(
        "f1",
        "c-unsub",
        2,
        "2026-11-24T09:00:00Z",
        "email",
        json!({"name": "Ada", "email": "ada@example.com"}),
    );
    SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0)
        .send_all(&[first])
        .await
        .unwrap();
    drain_ingest(&stack, &ingest(&stack, test_now())).await;
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
    let second = survey(
        "f2",
        "c-unsub",
        1,
        "2026-12-04T09:00:00Z",
        "email",
        json!({"name": "Ada", "email": "ada@example.com"}),
    );
    SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0)
        .send_all(&[second])
        .await
        .unwrap();
    drain_ingest(&stack, &ingest(&stack, later)).await;
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

/// Erases the customer while their message is with the provider.
struct EraseWhileSending {
    inner: AwsDelivery,
    api: feedloop_api::Api<DynamoStore>,
    customer: CustomerId,
}

impl Deliver for EraseWhileSending {
    async fn deliver(
        &self,
        m: &feedloop_core::followup::plan::Message,
        p: Purpose,
    ) -> Result<String, DeliveryError> {
        let id = self.inner.deliver(m, p).await?;
        self.api.erase(&self.customer).await.unwrap();
        Ok(id)
    }
    async fn hand_to_staff(
        &self,
        t: &feedloop_kit::ports::followup::StaffTask,
    ) -> Result<(), DeliveryError> {
        self.inner.hand_to_staff(t).await
    }
}

/// Everything stored under a customer's partition.
async fn items_under(stack: &Stack, customer: &str) -> usize {
    let out = stack
        .ddb()
        .query()
        .table_name(&stack.names.table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CUST#{customer}")),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.count() as usize
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
            survey(
                &format!("f-race-{i}"),
                c,
                1,
                "2026-11-24T08:00:00Z",
                "email",
                json!({"email": format!("{c}@example.com")}),
            )
        })
        .collect();
    SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0)
        .send_all(&bodies)
        .await
        .unwrap();
    drain_ingest(&stack, &ingest(&stack, test_now())).await;
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
    assert_eq!(items_under(&stack, "c-race-1").await, 0);

    // WHEN c-race-2 is erased while their apology is with SES
    let base = dispatcher(&stack, DeliveryMode::Live, test_now());
    let racing = Dispatcher {
        store: base.store,
        deliver: EraseWhileSending {
            inner: base.deliver,
            api: api(),
            customer: CustomerId::parse("c-race-2").unwrap(),
        },
        requeue: base.requeue,
        templates: base.templates,
        policy: base.policy,
        mode: base.mode,
        suppression_salt: base.suppression_salt,
        clock: base.clock,
        claim_lease: base.claim_lease,
    };
    let reports = drain_followups(&stack, &racing).await;

    // THEN the record finds its claim gone and writes nothing back; c-race-1's intent,
    // dispatched too, is suppressed before any claim
    let suppressed: u32 = reports.iter().map(|r| r.suppressed).sum();
    assert_eq!(suppressed, 2, "{reports:?}");
    assert_eq!(items_under(&stack, "c-race-2").await, 0);
    assert_eq!(items_under(&stack, "c-race-1").await, 0);
    assert_eq!(
        SentMail::all(&stack.moto_data().await).len(),
        1,
        "only the one already out"
    );
}
