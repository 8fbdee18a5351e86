//! No personal data in logs. Every path that handles a customer runs over moto with a
//! log capture at the most verbose level of our own crates: ingest of good and poison
//! messages (a wrong-typed field holding an e-mail, a bad e-mail, a customer id that
//! is an e-mail address), a live follow-up through SES, a malformed intent quoting an
//! address, an SES complaint, the customer's one-click unsubscribe, and the API's
//! consent change, read and erase. None of
//! the seeded names, addresses, numbers, texts or subjects may appear in what was
//! logged.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use feedloop_api::Api;
use feedloop_aws::followups::{AwsDelivery, AwsFollowUps};
use feedloop_aws::{DynamoStore, SqsQueue};
use feedloop_core::followup::plan::DispatchPolicy;
use feedloop_core::followup::unsubscribe::UnsubscribeLinks;
use feedloop_core::followup::Playbook;
use feedloop_followup::notifications::{Notifications, SnsEvent};
use feedloop_followup::Dispatcher;
use feedloop_ingest::poller::{succeeded, to_event};
use feedloop_ingest::{Ingest, Settings};
use feedloop_kit::ports::ingest::MessageQueue;
use feedloop_tests::harness::{SentMail, Stack};
use feedloop_tests::test_now;
use serde_json::json;

const NAME: &str = "Zebulon Quixote";
const EMAIL: &str = "zebulon.quixote@example.org";
const PHONE: &str = "+447400555123";
const TEXT: &str = "marmalade catapult";
const SUBJECT: &str = "platypus invoice";
/// A customer id that is itself an e-mail address.
const EMAIL_ID: &str = "yolanda.vex@example.net";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn envelopes() -> Vec<String> {
    let who = json!({"name": NAME, "email": EMAIL, "phone": PHONE, "timezone": "Europe/London",
                     "consent": {"email": true, "sms": true}});
    vec![
        json!({"feedback_id": "f-1", "customer_id": "cust-pii", "kind": "survey",
               "occurred_at": "2026-11-24T08:00:00Z", "nps_score": 1, "channel": "email",
               "text": format!("Awful, a {TEXT} would have been faster."), "customer": who})
        .to_string(),
        json!({"feedback_id": "f-2", "customer_id": "cust-pii", "kind": "ticket",
               "occurred_at": "2026-11-24T08:05:00Z", "ticket_id": "T-1", "status": "open",
               "subject": format!("{SUBJECT} for {NAME}"), "text": format!("{TEXT} again, call {PHONE}")})
        .to_string(),
        json!({"feedback_id": "f-3", "customer_id": EMAIL_ID, "kind": "review",
               "occurred_at": "2026-11-24T08:10:00Z", "rating": 2, "text": "Meh."})
        .to_string(),
        // Poison: values that must not be quoted back.
        json!({"feedback_id": "p-1", "customer_id": "cust-pii", "kind": "survey",
               "occurred_at": "2026-11-24T08:00:00Z", "nps_score": EMAIL, "text": TEXT})
        .to_string(),
        json!({"feedback_id": "p-2", "customer_id": "cust-pii", "kind": "survey",
               "occurred_at": "2026-11-24T08:00:00Z", "nps_score": 3, "text": TEXT,
               "customer": {"name": NAME, "email": format!("{NAME} <{EMAIL}"), "phone": format!("call {PHONE} now")}})
        .to_string(),
        json!({"feedback_id": EMAIL, "customer_id": EMAIL_ID, "kind": PHONE,
               "occurred_at": NAME, "text": TEXT})
        .to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_seeded_personal_data_reaches_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,feedloop_core=trace,feedloop_ingest=trace,feedloop_followup=trace,feedloop_api=trace,feedloop_aws=trace",
        ))
        .with_writer(move || writer.clone())
        .init();

    let stack = Stack::start("pii").await;
    let keys =
        feedloop_core::keys::StackKeys::derive("logs-pii-secret-0123456789abcdef0123").unwrap();
    let store = DynamoStore::new(stack.ddb(), &stack.names.table, 365);
    let ses = aws_sdk_sesv2::Client::new(&stack.sdk);
    ses.create_email_identity()
        .email_identity("care@acme.test")
        .send()
        .await
        .unwrap();

    // Ingest, follow-up intents on the queue.
    let ingest = Ingest::lexicon(store.clone(), Arc::new(test_now))
        .with_settings(Settings::sized(2, 2))
        .with_followups(
            Playbook::default_rules(),
            AwsFollowUps {
                store: store.clone(),
                sqs: stack.sqs(),
                queue_url: stack.urls.followup.clone(),
            },
        );
    stack.send_ingest(&envelopes()).await;
    let rejected: u32 = stack
        .drain_ingest(&ingest)
        .await
        .iter()
        .map(|r| r.rejected)
        .sum();
    assert_eq!(rejected, 3, "the three poison messages were recorded");

    // Dispatch live, plus an intent whose bad field holds an address.
    let fq = SqsQueue::new(stack.sqs(), &stack.urls.followup, 0);
    fq.send_all(&[
        json!({"feedback_id": "f-x", "customer_id": "cust-pii", "playbook": EMAIL,
                         "purpose": EMAIL})
        .to_string(),
    ])
    .await
    .unwrap();
    let dispatcher = Dispatcher::new(
        store.clone(),
        AwsDelivery {
            ses: ses.clone(),
            sns: aws_sdk_sns::Client::new(&stack.sdk),
            from: "care@acme.test".into(),
            reply_to: Some("care@acme.test".into()),
            configuration_set: None,
            events: aws_sdk_eventbridge::Client::new(&stack.sdk),
            staff_event_bus: "default".into(),
        },
        fq.clone(),
        keys.suppression_salt.clone(),
        Arc::new(test_now),
    )
    .with_policy(DispatchPolicy {
        company: Some("Acme Bikes".into()),
        unsubscribe: Some(UnsubscribeLinks {
            url: "https://api.example.test/unsubscribe".into(),
            key: keys.unsubscribe_key.clone(),
        }),
        ..DispatchPolicy::default()
    });
    let (mut sent, mut bad_intents) = (0, 0);
    loop {
        let msgs = fq.receive(10).await.unwrap();
        if msgs.is_empty() {
            break;
        }
        let (resp, report) = dispatcher.handle(to_event(&msgs)).await.unwrap();
        fq.ack(&succeeded(&msgs, &resp)).await.unwrap();
        sent += report.sent;
        bad_intents += report.rejected;
    }
    assert_eq!(
        (sent, bad_intents),
        (1, 1),
        "one apology went out, one intent was poison"
    );
    let mails = SentMail::all(&stack.moto_data().await);
    assert!(
        mails.iter().any(|m| m.to == [EMAIL]),
        "the mail itself went to the seeded address: {mails:?}"
    );
    let unsubscribe_link = mails[0].header("List-Unsubscribe").expect("a link");

    // An SES complaint about the address.
    let complaint = json!({"eventType": "Complaint", "mail": {"messageId": "ses-1", "destination": [EMAIL]},
        "complaint": {"feedbackId": "fb-1", "complainedRecipients": [{"emailAddress": EMAIL}]}});
    let event: SnsEvent = serde_json::from_value(json!({"Records": [{"EventSource": "aws:sns",
        "Sns": {"MessageId": "sns-1", "Message": complaint.to_string()}}]}))
    .unwrap();
    let notifications = Notifications {
        store: store.clone(),
        suppression_salt: keys.suppression_salt.clone(),
        clock: Arc::new(test_now),
    };
    assert_eq!(notifications.handle(&event).await.unwrap().suppressed, 1);

    // The API: consent change, read, erase, for both customers.
    let api = Api {
        store: store.clone(),
        keys: keys.clone(),
        clock: Arc::new(test_now),
    };
    // The customer's own one-click unsubscribe, from the link in the mail.
    let token = unsubscribe_link
        .split(", ")
        .next()
        .unwrap()
        .trim_matches(['<', '>'])
        .split_once("?token=")
        .map(|(_, t)| t.to_owned())
        .unwrap();
    let one_click: HashMap<String, String> = [("token".into(), token)].into();
    for method in ["GET", "POST"] {
        let r = api.handle(method, "/unsubscribe", &one_click).await;
        assert_eq!(r.status, 200, "{method}: {}", r.body);
    }
    let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    for id in ["cust-pii", EMAIL_ID] {
        let path = format!("/customers/{id}/consent");
        let r = api
            .handle(
                "PUT",
                &path,
                &q(&[("email", "off"), ("source", "phone-call")]),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = api
            .handle("GET", &format!("/customers/{id}"), &q(&[]))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = api
            .handle("DELETE", &format!("/customers/{id}"), &q(&[]))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    let logged = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    let lines = logged.lines().count();
    assert!(lines >= 10, "the capture saw the run: {lines} lines");
    for seeded in [
        NAME,
        "Zebulon",
        "Quixote",
        EMAIL,
        "zebulon.quixote",
        PHONE,
        "7400555123",
        TEXT,
        SUBJECT,
        EMAIL_ID,
        "yolanda",
    ] {
        let hits: Vec<&str> = logged.lines().filter(|l| l.contains(seeded)).collect();
        assert!(
            hits.is_empty(),
            "{seeded:?} logged {} times, e.g. {}",
            hits.len(),
            hits[0]
        );
    }
    println!("log capture: {lines} lines, none with the seeded personal data");
}
