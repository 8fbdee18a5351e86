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
use feedloop_core::followup::unsubscribe::UnsubscribeLinks;
use feedloop_core::followup::{
    suppression, ContactChannel, FollowUpIntent, Playbook, PlaybookId, Purpose,
};
use feedloop_followup::handler::Handled;
use feedloop_followup::{DeliveryMode, Dispatcher};
use feedloop_ingest::poller::{succeeded, to_event};
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
    Dispatcher::new(
        store(stack),
        AwsDelivery {
            ses: aws_sdk_sesv2::Client::new(&stack.sdk),
            sns: aws_sdk_sns::Client::new(&stack.sdk),
            from: FROM.into(),
            reply_to: Some("care@acme.test".into()),
            configuration_set: Some(CONFIGURATION_SET.into()),
            events: aws_sdk_eventbridge::Client::new(&stack.sdk),
            staff_event_bus: "default".into(),
        },
        SqsQueue::new(stack.sqs(), &stack.urls.followup, 0),
        SALT,
        Arc::new(move || now),
    )
    .with_policy(DispatchPolicy {
        company: Some("Acme Bikes".into()),
        max_age_hours: feedloop_core::followup::DEFAULT_MAX_AGE_HOURS,
        unsubscribe: Some(UnsubscribeLinks {
            url: UNSUBSCRIBE_URL.into(),
            key: keys().unsubscribe_key,
        }),
        ..DispatchPolicy::default()
    })
    .with_mode(mode)
}

fn ingest(stack: &Stack, now: DateTime<Utc>) -> Ingest<DynamoStore, AwsFollowUps> {
    let store = store(stack);
    let sink = AwsFollowUps {
        store: store.clone(),
        sqs: stack.sqs(),
        queue_url: stack.urls.followup.clone(),
    };
    Ingest::lexicon(store, Arc::new(move || now))
        .with_settings(Settings::sized(2, 4))
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

/// A survey by e-mail from a customer whose contact block holds only the address.
fn mailed_survey(id: &str, customer: &str, score: u8, at: &str, email: &str) -> String {
    survey(id, customer, score, at, "email", json!({ "email": email }))
}

/// A survey by e-mail from Ada (name and address on file).
fn ada_survey(id: &str, customer: &str, score: u8, at: &str) -> String {
    let ada = json!({"name": "Ada", "email": "ada@example.com"});
    survey(id, customer, score, at, "email", ada)
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
    stack.send_ingest(&bodies).await;
    stack.drain_ingest(&ingest(&stack, test_now())).await;
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
    let answer = mailed_survey(
        "f-mail-2",
        "c-mail",
        9,
        "2026-11-26T09:00:00Z",
        "ada@example.com",
    );
    stack.send_ingest(&[answer.clone(), answer]).await;
    stack.drain_ingest(&ingest(&stack, later)).await;
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

fn sample_sns(name: &str) -> feedloop_followup::notifications::SnsEvent {
    let p =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../events/{name}.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    match feedloop_followup::Incoming::from_value(v).unwrap() {
        feedloop_followup::Incoming::Notifications(e) => e,
        other => panic!("{name}: {other:?}"),
    }
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

#[path = "followup_moto/more.rs"]
mod more;
