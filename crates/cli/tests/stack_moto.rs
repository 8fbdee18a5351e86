//! The `feedloop` binary against a stack on moto: `send` 2,000 envelopes, ingest them,
//! then the CLI and the API (same routes, in process) give the same answers; erase
//! leaves only the suppression entries; the DLQ can be listed and redriven.

use feedloop_api::views::{CustomerView, DriversReport, NpsReport, SegmentPage};
use feedloop_core::profile::Segment;
use feedloop_kit::ports::query::Member;
use std::process::{Command, Output};
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use feedloop_api::Api;
use feedloop_aws::{DynamoStore, SqsQueue};
use feedloop_followup::handler::Handled;
use feedloop_followup::Dispatcher;
use feedloop_ingest::{Ingest, Settings};
use feedloop_tests::harness::Stack;
use feedloop_tests::http::{all_pages, assert_cursor_stays_with, get};
use feedloop_tests::{envelopes, test_now};
use serde_json::Value;

fn feedloop(stack: &Stack, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_feedloop"))
        .args(args)
        .args([
            "--endpoint-url",
            &stack.moto.endpoint,
            "--prefix",
            prefix(stack),
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("the binary runs");
    out
}

fn prefix(stack: &Stack) -> &str {
    stack.names.table.strip_suffix("-table").unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

fn store(stack: &Stack) -> DynamoStore {
    DynamoStore::new(stack.ddb(), &stack.names.table, 365).with_aggregate_shards(2)
}

/// The suppression list's item for one salted key, as stored.
async fn suppression_entry(
    stack: &Stack,
    key: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    let out = stack
        .ddb()
        .get_item()
        .table_name(&stack.names.table)
        .key("PK", AttributeValue::S(format!("SUPP#{key}")))
        .key("SK", AttributeValue::S("SUPP".into()))
        .send()
        .await
        .unwrap();
    out.item().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_ingest_then_cli_and_api_agree_and_erase_leaves_only_suppression() {
    let stack = Stack::start("cli-e2e").await;
    let dir = feedloop_tests::scratch_dir("cli");
    let file = dir.join("feedback.jsonl");
    let mut lines = envelopes(2000, 60, 7);
    lines.insert(10, "{not json".into());
    lines.insert(500, r#"{"feedback_id":"x","customer_id":"c","kind":"survey","occurred_at":"2026-10-01T00:00:00Z","nps_score":11}"#.into());
    std::fs::write(&file, lines.join("\n")).unwrap();

    let out = feedloop(&stack, &["send", file.to_str().unwrap(), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "invalid lines make the exit code 1"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["sent"], 2000, "{summary}");
    let invalid: Vec<u64> = summary["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["line"].as_u64().unwrap())
        .collect();
    assert_eq!(invalid, [11, 501]);
    assert!(summary["failed"].as_array().unwrap().is_empty());

    // The ingest function's work, with real SQS batches.
    let ingest =
        Ingest::lexicon(store(&stack), Arc::new(test_now)).with_settings(Settings::sized(2, 8));
    let reports = stack.drain_ingest(&ingest).await;
    assert_eq!(reports.iter().map(|r| r.processed).sum::<u32>(), 2000);

    let api = Api {
        store: store(&stack),
        keys: stack.keys().await,
        clock: Arc::new(test_now),
    };
    for id in ["cust-0001", "cust-0017", "cust-0042"] {
        let (status, p) = get(&api, &format!("/customers/{id}"), &[]).await;
        assert_eq!(status, 200);
        let cli = json_of(&feedloop(&stack, &["profile", id, "--json"]));
        // Both sides read as the query service's view: a renamed or missing field fails
        // here, not as a "-" in a table.
        let (cli_view, api_view): (CustomerView, CustomerView) = (
            serde_json::from_value(cli["profile"].clone()).unwrap(),
            serde_json::from_value(p).unwrap(),
        );
        assert_eq!(cli_view, api_view);
        let (_, fb) = get(
            &api,
            &format!("/customers/{id}/feedback"),
            &[("limit", "5")],
        )
        .await;
        assert_eq!(cli["recent_feedback"], fb["items"]);
    }
    let mut total = 0;
    for seg in Segment::ALL.map(|s| s.as_str()) {
        let cli = json_of(&feedloop(
            &stack,
            &["segment", seg, "--limit", "1000", "--json"],
        ));
        let api_items = all_pages(&api, &format!("/segments/{seg}"), "7").await;
        let cli_page: SegmentPage = serde_json::from_value(cli).unwrap();
        let api_members: Vec<Member> =
            serde_json::from_value(Value::Array(api_items.clone())).unwrap();
        assert_eq!(cli_page.items, api_members, "segment {seg}");
        assert_eq!(cli_page.segment.as_str(), seg);
        total += api_items.len();
    }
    assert_eq!(total, 60, "every customer in exactly one segment");

    let range = ["--from", "2026-10-01", "--to", "2026-10-31"];
    let cli_nps = json_of(&feedloop(
        &stack,
        &[
            &["report", "nps", "--granularity", "week", "--json"][..],
            &range,
        ]
        .concat(),
    ));
    let (_, api_nps) = get(
        &api,
        "/reports/nps",
        &[
            ("from", "2026-10-01"),
            ("to", "2026-10-31"),
            ("granularity", "week"),
        ],
    )
    .await;
    assert_eq!(
        serde_json::from_value::<NpsReport>(cli_nps).unwrap(),
        serde_json::from_value::<NpsReport>(api_nps.clone()).unwrap()
    );
    let surveys = lines
        .iter()
        .filter(|l| l.contains("\"kind\":\"survey\"") && l.contains("fb-7-"))
        .count() as u64;
    let r = &api_nps["responses"];
    assert_eq!(
        r["promoters"].as_u64().unwrap()
            + r["passives"].as_u64().unwrap()
            + r["detractors"].as_u64().unwrap(),
        surveys
    );
    let cli_drivers = json_of(&feedloop(
        &stack,
        &[&["report", "drivers", "--json"][..], &range].concat(),
    ));
    let (_, api_drivers) = get(
        &api,
        "/reports/drivers",
        &[("from", "2026-10-01"), ("to", "2026-10-31")],
    )
    .await;
    assert_eq!(
        serde_json::from_value::<DriversReport>(cli_drivers).unwrap(),
        serde_json::from_value::<DriversReport>(api_drivers).unwrap()
    );

    // Cursor tampering on the real store.
    assert_cursor_stays_with(&api, "cust-0001", "cust-0002").await;

    // The dashboard from the table.
    let r = api.handle("GET", "/dashboard", &Default::default()).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=\"drivers-chart\""));

    // Staff record an opt-out through the CLI: a versioned write on the real table that
    // the next read (and the dispatcher's contact lookup) sees.
    let consent = json_of(&feedloop(
        &stack,
        &[
            "consent",
            "cust-0018",
            "--email",
            "off",
            "--source",
            "phone-call",
            "--json",
        ],
    ));
    assert_eq!(consent["in_force"]["email"], false, "{consent}");
    assert_eq!(
        consent["consent"]["email"]["feedback_id"],
        "consent:phone-call"
    );
    let (_, after) = get(&api, "/customers/cust-0018", &[]).await;
    assert_eq!(
        after["profile"]["consent"]["email"]["value"], false,
        "{after}"
    );
    assert_eq!(
        after["profile"]["consent"]["email"]["feedback_id"],
        "consent:phone-call"
    );

    // Erase one customer through the CLI.
    let erased = json_of(&feedloop(
        &stack,
        &["erase", "cust-0017", "--yes", "--json"],
    ));
    assert_eq!(erased["deleted"]["profile"], true);
    assert!(erased["deleted"]["feedback"].as_u64().unwrap() > 10);
    assert_eq!(
        stack.items_under("cust-0017").await,
        0,
        "nothing left under the customer"
    );
    let key = feedloop_core::followup::suppression::keys(
        &stack.keys().await.suppression_salt,
        "cust-0017",
        None,
    )[0]
    .clone();
    let item = suppression_entry(&stack, &key)
        .await
        .expect("the suppression entry (salted hash of the id)");
    assert!(
        !format!("{item:?}").contains("cust-0017"),
        "no personal data in the suppression entry"
    );
    assert_eq!(
        erased["deleted"]["suppression_keys"], 1,
        "no contact block in this data: the id only"
    );
    let (status, _) = get(&api, "/customers/cust-0017", &[]).await;
    assert_eq!(status, 404);

    // A follow-up intent for the erased customer, dispatched afterwards: suppressed.
    let d = Dispatcher::new(
        store(&stack),
        feedloop_memory::Outbox::default(),
        feedloop_memory::RequeueList::default(),
        stack.keys().await.suppression_salt,
        Arc::new(test_now),
    );
    let intent = serde_json::json!({"feedback_id": "late", "customer_id": "cust-0017", "playbook": "detractor_recovery",
        "purpose": "service", "priority": 100, "template": "detractor_recovery", "channels": ["email"],
        "not_before": "2026-11-24T00:00:00Z", "top_negative_theme": null, "nps_score": 2, "ticket_id": null});
    assert_eq!(
        d.process("m", &intent.to_string()).await.unwrap(),
        Handled::Suppressed
    );
    assert_eq!(
        stack.items_under("cust-0017").await,
        0,
        "the suppressed follow-up wrote nothing"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_send_and_dead_letter_list_and_redrive() {
    let stack = Stack::start("cli-dlq").await;
    let dir = feedloop_tests::scratch_dir("csv");
    let csv = dir.join("reviews.csv");
    std::fs::write(
        &csv,
        // Saved by a spreadsheet: a byte-order mark before the header.
        "\u{feff}Review ID,Customer,Date,Stars,Comment\nr1,c1,2026-10-01T10:00:00Z,5,\"Great, fast delivery\"\nr2,c2,2026-10-02T10:00:00Z,two,Bad\nr3,c3,2026-10-03T10:00:00Z,1,\"Broke after a day, \"\"awful\"\"\"\n",
    )
    .unwrap();
    let out = feedloop(
        &stack,
        &[
            "send",
            csv.to_str().unwrap(),
            "--kind",
            "review",
            "--column",
            "feedback_id=Review ID",
            "--column",
            "customer_id=Customer",
            "--column",
            "occurred_at=Date",
            "--column",
            "rating=Stars",
            "--column",
            "text=Comment",
            "--json",
        ],
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["sent"], 2, "{s}");
    assert_eq!(s["invalid"][0]["line"], 3);
    assert!(s["invalid"][0]["error"]
        .as_str()
        .unwrap()
        .contains("rating"));

    // A JSON Lines file with one line in Latin-1: reported by number, the rest is sent.
    let jsonl = dir.join("mixed-encoding.jsonl");
    let mut bytes = br#"{"feedback_id":"j1","customer_id":"c9","kind":"review","occurred_at":"2026-10-04T10:00:00Z","rating":4,"text":"Caf"#.to_vec();
    bytes.extend(b"\xe9 ok\"}\n");
    bytes.extend(br#"{"feedback_id":"j2","customer_id":"c9","kind":"review","occurred_at":"2026-10-04T11:00:00Z","rating":4,"text":"ok"}"#);
    std::fs::write(&jsonl, bytes).unwrap();
    let out = feedloop(&stack, &["send", jsonl.to_str().unwrap(), "--json"]);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["sent"], 1, "{s}");
    assert_eq!(s["invalid"][0]["line"], 1, "{s}");
    assert!(
        s["invalid"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("not valid UTF-8"),
        "{s}"
    );

    let dlq = SqsQueue::new(stack.sqs(), &stack.urls.ingest_dlq, 0);
    dlq.send_all(&[
        "{\"a\":1}".to_string(),
        "{\"b\":2}".to_string(),
        "{\"c\":3}".to_string(),
    ])
    .await
    .unwrap();
    let listed = json_of(&feedloop(&stack, &["dlq", "list", "--json"]));
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    let dry = json_of(&feedloop(
        &stack,
        &["dlq", "redrive", "--dry-run", "--json"],
    ));
    assert_eq!(dry["would_move"], 3);
    let moved = json_of(&feedloop(&stack, &["dlq", "redrive", "--json"]));
    assert_eq!(moved["moved"], 3);
    let q = SqsQueue::new(stack.sqs(), &stack.urls.ingest, 0);
    let (visible, _) = q.depth().await.unwrap();
    assert_eq!(
        visible, 6,
        "2 from the CSV + 1 from the JSON Lines + 3 redriven"
    );
    let (left, _) = dlq.depth().await.unwrap();
    assert_eq!(left, 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// `--stack NAME`: names and the stack secret from the CloudFormation outputs, as after
/// `sam deploy` (a stack on moto with the same outputs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_outputs_name_the_resources_and_the_stack_secret_salts_the_suppression_list() {
    let stack = Stack::start("cli-cfn").await;
    let secret_arn = feedloop_aws::secrets::ensure_local_secret(&stack.sdk, "deployed-stack-keys")
        .await
        .unwrap();
    let template = serde_json::json!({
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "TableName": {"Value": stack.names.table},
            "IngestQueueUrl": {"Value": stack.urls.ingest},
            "IngestDeadLetterQueueUrl": {"Value": stack.urls.ingest_dlq},
            "SecretArn": {"Value": secret_arn},
        }
    });
    let cfn = aws_sdk_cloudformation::Client::new(&stack.sdk);
    let created = cfn
        .create_stack()
        .stack_name("feedloop-test")
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    assert!(created.stack_id().is_some());
    let salt = feedloop_aws::secrets::stack_keys(&stack.sdk, &secret_arn)
        .await
        .unwrap()
        .suppression_salt;

    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_feedloop"))
            .args(args)
            .args([
                "--endpoint-url",
                &stack.moto.endpoint,
                "--stack",
                "feedloop-test",
            ])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .env_remove("FEEDLOOP_SECRET_ID")
            .output()
            .unwrap()
    };
    let dir = feedloop_tests::scratch_dir("cfn");
    let file = dir.join("one.jsonl");
    std::fs::write(
        &file,
        r#"{"feedback_id":"s1","customer_id":"cfn-1","kind":"survey","occurred_at":"2026-11-20T10:00:00Z","nps_score":2,"customer":{"email":"cfn@example.com"}}"#,
    )
    .unwrap();
    let sent = json_of(&run(&["send", file.to_str().unwrap(), "--json"]));
    assert_eq!(
        sent["sent"], 1,
        "the ingest queue came from the IngestQueueUrl output"
    );
    let ingest =
        Ingest::lexicon(store(&stack), Arc::new(test_now)).with_settings(Settings::sized(2, 2));
    stack.drain_ingest(&ingest).await;
    let p = json_of(&run(&["profile", "cfn-1", "--json"]));
    assert_eq!(
        p["profile"]["profile"]["feedback_count"], 1,
        "the table came from the TableName output"
    );

    let erased = json_of(&run(&["erase", "cfn-1", "--yes", "--json"]));
    assert_eq!(erased["deleted"]["suppression_keys"], 2);
    let contact = feedloop_core::envelope::CustomerInfo {
        email: Some("cfn@example.com".into()),
        ..Default::default()
    };
    for key in feedloop_core::followup::suppression::keys(&salt, "cfn-1", Some(&contact)) {
        assert!(
            suppression_entry(&stack, &key).await.is_some(),
            "suppression entry salted with the key from the SecretArn output"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
