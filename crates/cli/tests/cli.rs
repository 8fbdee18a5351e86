//! The `feedloop` binary end to end: exit codes, output shape, error reporting.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn feedloop(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedloop"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Standard output read as one JSON document a line.
fn json_lines(out: &std::process::Output) -> Vec<Value> {
    let text = String::from_utf8(out.stdout.clone()).expect("UTF-8 output");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}
#[test]
fn demo_prints_the_full_report() {
    let out = feedloop(&["demo"], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "Overall NPS",
        "NPS by theme",
        "Top detractor drivers",
        "Segments",
        "Most at-risk customers",
        "  5. cust-",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("  rejected demo message ")
                && l.ends_with(": envelope is invalid: nps_score: 11 is outside 0..=10")),
        "{text}"
    );
}

#[test]
fn demo_json_covers_200_feedbacks_45_customers_and_all_kinds() {
    let out = feedloop(&["demo", "--json"], None);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["applied"].as_u64().unwrap() >= 200);
    assert_eq!(v["customers"], 45);
    assert_eq!(v["duplicates"], 1);
    assert_eq!(v["rejected"], 2);
    assert_eq!(v["at_risk"].as_array().unwrap().len(), 5);
    let risks: Vec<f64> = v["at_risk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["churn_risk"]["score"].as_f64().unwrap())
        .collect();
    assert!(
        risks.windows(2).all(|w| w[0] >= w[1]),
        "sorted by risk: {risks:?}"
    );
    let nps = v["nps"].as_f64().unwrap();
    let r = &v["responses"];
    let (p, d, t) = (
        r["promoters"].as_f64().unwrap(),
        r["detractors"].as_f64().unwrap(),
        r["promoters"].as_f64().unwrap()
            + r["passives"].as_f64().unwrap()
            + r["detractors"].as_f64().unwrap(),
    );
    assert!((nps - 100.0 * (p - d) / t).abs() < 1e-9);

    let followups = v["followups"].as_array().unwrap();
    let sent: Vec<&Value> = followups
        .iter()
        .filter(|f| f["status"] == "dry_run")
        .collect();
    assert!(sent.len() >= 10, "the demo shows follow-ups it would send");
    assert!(
        followups.iter().any(|f| f["status"] == "skipped"),
        "and ones the guards stopped"
    );
    for f in &sent {
        let preview = f["preview"].as_str().unwrap();
        assert!(!preview.contains("{{") && !preview.is_empty(), "{f}");
    }
    let playbooks: std::collections::BTreeSet<&str> = sent
        .iter()
        .map(|f| f["playbook"].as_str().unwrap())
        .collect();
    assert!(
        playbooks.contains("detractor_recovery") && playbooks.contains("promoter_review_ask"),
        "{playbooks:?}"
    );

    let dir = feedloop_tests::scratch_dir("demo");
    let path = dir.join("demo.jsonl");
    assert!(
        feedloop(&["demo", "--export", path.to_str().unwrap()], None)
            .status
            .success()
    );
    let kinds: std::collections::BTreeSet<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<Value>(l).ok()?["kind"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(
        ["review", "survey", "ticket"]
            .iter()
            .all(|k| kinds.contains(*k)),
        "{kinds:?}"
    );
}

#[test]
fn analyze_reads_stdin_line_by_line_as_json() {
    let out = feedloop(
        &["analyze", "--mode", "reference", "-"],
        Some("VADER is smart, handsome, and funny.\nNot bad at all\n\n"),
    );
    assert!(out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["compound"], 0.8316);
    assert_eq!(lines[0]["pos"], 0.746);
    assert_eq!(lines[1]["compound"], 0.431);
    assert_eq!(lines[1]["label"], "positive");
    assert_eq!(lines[2]["compound"], Value::Null);
    assert_eq!(lines[2]["skipped"], "empty text");
}

#[test]
fn analyze_one_text_names_themes_and_refuses_other_languages() {
    let out = feedloop(
        &[
            "analyze",
            "--json",
            "The parcel never arrived. Staff were lovely though.",
        ],
        None,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sentences = v["sentences"].as_array().unwrap();
    assert!(sentences[0]["compound"].as_f64().unwrap() < -0.05, "{v}");
    assert!(sentences[1]["compound"].as_f64().unwrap() > 0.05, "{v}");
    let themes: Vec<&str> = v["themes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["theme"].as_str().unwrap())
        .collect();
    assert_eq!(themes, ["delivery", "staff"]);
    // German has a head over the multilingual encoder; Russian has none and says so.
    let out = feedloop(
        &[
            "analyze",
            "--json",
            "--mode",
            "hybrid",
            "Der Kundenservice war sehr unfreundlich und die Lieferung kam viel zu spät.",
        ],
        None,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["language"], "de", "{v}");
    assert_eq!(v["label"], "negative", "{v}");
    let out = feedloop(
        &[
            "analyze",
            "Посылка так и не пришла, и никто не ответил на мои письма.",
        ],
        None,
    );
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("sentiment: none (unsupported language: ru)"));
}

#[test]
fn process_reports_bad_lines_and_keeps_going() {
    let out = feedloop(&["process", &fixture("mixed.jsonl")], None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rejections make the exit code 1"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("messages 6: 3 applied, 1 duplicate (ignored), 2 rejected; 3 customers"),
        "{text}"
    );
    assert!(text.contains("rejected line 2: envelope is invalid: nps_score: 11 is outside 0..=10"));
    assert!(text.contains("rejected line 3: envelope is not valid JSON"));

    let out = feedloop(&["process", "--json", &fixture("mixed.jsonl")], None);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["outcome"], "applied");
    assert_eq!(lines[0]["nps_category"], "detractor");
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[4]["outcome"], "duplicate");
    assert_eq!(lines[6]["summary"]["rejected"], 2);
}

#[test]
fn eval_prints_the_metrics_the_gold_allows() {
    let out = feedloop(
        &[
            "eval",
            "--json",
            "--taxonomy",
            "restaurants",
            &fixture("tiny_eval.jsonl"),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n"], 2);
    assert_eq!(v["sentiment"]["accuracy"], 1.0);
    assert_eq!(v["themes"]["micro_f1"], 1.0);
    assert_eq!(v["aspect_polarity"]["accuracy"], 1.0);
    assert!(v.get("pearson_r").is_none());
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let out = feedloop(&["analyze", "--mode", "magic", "x"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mode \"magic\""));
    let out = feedloop(&["process", "/nonexistent/file.jsonl"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("opening /nonexistent/file.jsonl"));
}

#[test]
fn process_accepts_a_byte_order_mark_and_reports_a_line_that_is_not_utf8_by_number() {
    // GIVEN a file saved by a spreadsheet: a BOM, CRLF endings, one Latin-1 line
    let dir = feedloop_tests::scratch_dir("utf8");
    let path = dir.join("latin1.jsonl");
    let good = |id: &str| {
        format!(
            r#"{{"feedback_id":"{id}","customer_id":"c-{id}","kind":"review","occurred_at":"2026-11-01T10:00:00Z","rating":5,"text":"Great coffee"}}"#
        )
        .into_bytes()
    };
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(good("a"));
    bytes.extend(b"\r\n");
    bytes.extend(br#"{"feedback_id":"b","customer_id":"c-b","kind":"review","occurred_at":"2026-11-01T10:00:00Z","rating":1,"text":"Caf"#);
    bytes.extend(b"\xe9 froid\"}\r\n");
    bytes.extend(good("c"));
    bytes.extend(b"\n");
    std::fs::write(&path, &bytes).unwrap();

    // WHEN it is processed
    let out = feedloop(
        &["process", "--mode", "lexicon", path.to_str().unwrap()],
        None,
    );

    // THEN the first and last lines are applied and line 2 is reported, not fatal
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("messages 3: 2 applied, 0 duplicate (ignored), 1 rejected; 2 customers"),
        "{text}"
    );
    assert!(
        text.contains("rejected line 2: not valid UTF-8 (first bad byte at column"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn closed_sets_and_dates_are_checked_by_the_argument_parser() {
    // GIVEN report options that are not a granularity or not a date
    for args in [
        &["report", "nps", "--granularity", "month"][..],
        &["report", "drivers", "--from", "2026-13-01"][..],
    ] {
        // WHEN the command line is parsed, THEN it fails before any AWS call, naming the value
        let out = feedloop(args, None);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("invalid value"), "{args:?}: {err}");
    }
    // AND eval prints metrics line by line without --json, one object with it
    let plain = feedloop(
        &[
            "eval",
            "--taxonomy",
            "restaurants",
            &fixture("tiny_eval.jsonl"),
        ],
        None,
    );
    let text = String::from_utf8(plain.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("sentiment.accuracy")),
        "{text}"
    );
    assert!(serde_json::from_str::<Value>(&text).is_err());
}
