//! The README's commands, run as a new user would run them: every `aws …` and
//! `feedloop …` command in the code blocks of the sections that deploy, send, query and
//! run locally, against moto, with the aws CLI from `.venv-awscli` and this build's
//! `feedloop`. The stack `feedloop` is a CloudFormation stack on moto with the outputs
//! `sam deploy` gives; the files the README names are written first. A command must exit
//! as the README says (0, or the `# exit N:` its comment states); a transcript's first
//! line must have the README's shape (numbers aside); the aws CLI's answers must be JSON
//! and hold what the comment above them promises.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use feedloop_tests::harness::Stack;
use serde_json::Value;

/// The README's sections whose commands this test runs.
const SECTIONS: [&str; 3] = [
    "## HTTP API and CLI (query, send, erase)",
    "## Deploy, send, query (AWS)",
    "## Run it locally",
];
/// Subsections whose commands need more than moto (Docker, `sam local` servers):
/// `tests/sam_local.rs` runs those.
const RUN_ELSEWHERE: [&str; 1] = ["### With SAM CLI"];
/// The address the README's local commands use; the test's moto listens elsewhere.
const README_ENDPOINT: &str = "http://127.0.0.1:4566";

/// One command of the README and what its block says about it.
#[derive(Debug, Clone)]
struct Documented {
    section: &'static str,
    command: String,
    expected_exit: i32,
    /// The first line of output a transcript (`$ feedloop …`) shows.
    first_line: Option<String>,
}

/// The aws CLI: `$FEEDLOOP_AWS_CLI`, else the one `make test` installs.
fn aws_cli() -> PathBuf {
    if let Some(p) = std::env::var_os("FEEDLOOP_AWS_CLI") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-awscli/bin/aws")
}

/// A line's shell state across lines: inside single or double quotes, or neither.
#[derive(Clone, Copy, PartialEq)]
enum Quote {
    None,
    Single,
    Double,
}

fn scan_quotes(line: &str, mut q: Quote) -> Quote {
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (q, c) {
            (Quote::None, '#') => break,
            (Quote::None, '\'') => q = Quote::Single,
            (Quote::None, '"') => q = Quote::Double,
            (Quote::Single, '\'') | (Quote::Double, '"') => q = Quote::None,
            (Quote::None | Quote::Double, '\\') => {
                chars.next();
            }
            _ => {}
        }
    }
    q
}

/// Joins continued lines (`\` at the end, or a quote left open) into one command.
fn logical_lines(block: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut q = Quote::None;
    for line in block {
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
        q = scan_quotes(line, q);
        if q == Quote::None && !line.trim_end().ends_with('\\') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn is_command(line: &str) -> bool {
    let t = line.trim_start();
    let assigned = t
        .split_once("=$(")
        .filter(|(name, _)| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .map(|(_, rest)| rest);
    let first = assigned.unwrap_or(t);
    first.starts_with("aws ") || first.starts_with("feedloop ")
}

/// `# exit 1: why` in a command's trailing comment.
fn expected_exit(command: &str) -> i32 {
    command
        .rsplit_once("# exit ")
        .and_then(|(_, rest)| rest.split(':').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn documented(readme: &str) -> Vec<Documented> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    for section in SECTIONS {
        let start = lines
            .iter()
            .position(|l| *l == section)
            .unwrap_or_else(|| panic!("README has no section {section:?}"));
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.starts_with("## "))
            .map_or(lines.len(), |i| start + 1 + i);
        let mut i = start + 1;
        while i < end {
            if RUN_ELSEWHERE.contains(&lines[i]) {
                i += lines[i + 1..end]
                    .iter()
                    .position(|l| l.starts_with("### "))
                    .map_or(end - i, |j| j + 1);
                continue;
            }
            let Some(lang) = lines[i].strip_prefix("```") else {
                i += 1;
                continue;
            };
            let close = lines[i + 1..end]
                .iter()
                .position(|l| l.starts_with("```"))
                .map(|j| i + 1 + j)
                .unwrap_or_else(|| panic!("unclosed code block at README line {}", i + 1));
            let body = &lines[i + 1..close];
            if lang == "sh" {
                for cmd in logical_lines(body).into_iter().filter(|c| is_command(c)) {
                    out.push(Documented {
                        section,
                        expected_exit: expected_exit(&cmd),
                        command: cmd,
                        first_line: None,
                    });
                }
            } else if lang.is_empty() {
                // A transcript: `$ command`, then what it prints.
                for (k, line) in body.iter().enumerate() {
                    let Some(cmd) = line.strip_prefix("$ ").filter(|c| is_command(c)) else {
                        continue;
                    };
                    out.push(Documented {
                        section,
                        expected_exit: expected_exit(cmd),
                        command: cmd.to_owned(),
                        first_line: body
                            .get(k + 1)
                            .filter(|l| !l.starts_with("$ "))
                            .map(|l| l.to_string()),
                    });
                }
            }
            i = close + 1;
        }
    }
    out
}

/// A line with its numbers (and their signs) replaced by `#` and its spacing collapsed:
/// the shape a transcript promises, whatever today's figures are.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let signed = (c == '-' || c == '+')
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())
            && (i == 0 || chars[i - 1].is_whitespace() || chars[i - 1] == '(');
        if c.is_ascii_digit() || signed {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push('#');
            continue;
        }
        out.push(c);
        i += 1;
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a command puts messages on the ingest queue (the test then drains it, as
/// the deployed functions would).
fn sends(command: &str) -> bool {
    command.contains("feedloop send ") || command.contains("sqs send-message ")
}

fn write_inputs(dir: &Path, feedloop: &Path) {
    let out = Command::new(feedloop)
        .args(["demo", "--export"])
        .arg(dir.join("demo.jsonl"))
        .output()
        .expect("feedloop demo --export runs");
    assert!(out.status.success(), "{out:?}");
    // reviews.jsonl: the demo's valid envelopes (the README's send of it exits 0).
    let demo = std::fs::read_to_string(dir.join("demo.jsonl")).unwrap();
    let now = chrono::Utc::now();
    let valid: Vec<&str> = demo
        .lines()
        .filter(|l| feedloop_core::envelope::parse_envelope(l.as_bytes(), now).is_ok())
        .collect();
    assert!(valid.len() > 200 && valid.len() < demo.lines().count());
    std::fs::write(dir.join("reviews.jsonl"), valid.join("\n")).unwrap();
    // export.csv: the columns the README's mapping names, for customers of its own.
    let mut csv = String::from("Review ID,Customer,Date,Stars,Comment\n");
    for (i, (stars, text)) in [
        (5, "Lovely beans, \"best in town\", fast delivery"),
        (2, "The grinder arrived broken"),
        (4, "Good, but the app logged me out twice"),
    ]
    .iter()
    .enumerate()
    {
        csv.push_str(&format!(
            "csv-{i},csv-cust-{i},2026-11-2{i}T10:00:00Z,{stars},\"{}\"\n",
            text.replace('"', "\"\"")
        ));
    }
    std::fs::write(dir.join("export.csv"), csv).unwrap();
}

/// Outputs as `sam deploy` leaves them, on moto, for `--stack feedloop` and
/// `aws cloudformation describe-stacks --stack-name feedloop`.
async fn create_stack(stack: &Stack, secret_arn: &str) {
    let template = serde_json::json!({
        "Parameters": {"AggregateShards": {"Type": "String", "Default": "8"}},
        "Resources": {"Marker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "TableName": {"Value": stack.names.table},
            "IngestQueueUrl": {"Value": stack.urls.ingest},
            "IngestDeadLetterQueueUrl": {"Value": stack.urls.ingest_dlq},
            "FollowUpQueueUrl": {"Value": stack.urls.followup},
            "SecretArn": {"Value": secret_arn},
        }
    });
    aws_sdk_cloudformation::Client::new(&stack.sdk)
        .create_stack()
        .stack_name("feedloop")
        .template_body(template.to_string())
        .send()
        .await
        .expect("create the stack on moto");
}

/// The script: each command's stdout, stderr and exit code go to files named by its
/// index; variables (`QUEUE=$(…)`) carry to the next command as in a terminal.
fn script(commands: &[(String, bool)], endpoint: &str) -> String {
    let mut s = String::from("set -u\n");
    for (i, (cmd, _)) in commands.iter().enumerate() {
        let cmd = cmd.replace(README_ENDPOINT, endpoint);
        s.push_str(&format!(
            "{{ {cmd}\n}} >out.{i} 2>err.{i}; echo $? >rc.{i}\n"
        ));
        // An assignment must also have produced a value.
        if let Some((name, _)) = cmd.trim_start().split_once("=$(") {
            s.push_str(&format!("test -n \"${{{name}:-}}\" || echo 99 >rc.{i}\n"));
        }
    }
    s
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// What the comment above an aws query promises, checked on its JSON answer.
fn check_aws_answer(cmd: &str, out: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(out).map_err(|e| format!("not JSON ({e}): {out}"))?;
    let count = v["Count"].as_u64().unwrap_or(0);
    if cmd.contains("get-item") {
        let item = &v["Item"];
        for attr in ["segment", "churn_risk", "feedback_count"] {
            if item.get(attr).is_none() {
                return Err(format!("the profile has no {attr}: {v}"));
            }
        }
    } else if (cmd.contains("SEG#at_risk") || cmd.contains("FB#")) && count == 0 {
        return Err(format!("the query found nothing: {v}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_commands_run_against_moto() {
    let aws = aws_cli();
    assert!(
        aws.exists(),
        "{} not found: run `make test` (it installs the aws CLI into .venv-awscli)",
        aws.display()
    );
    let feedloop = PathBuf::from(env!("CARGO_BIN_EXE_feedloop"));
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let docs = documented(&readme);
    let per_section: BTreeMap<&str, usize> = docs.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d.section).or_default() += 1;
        m
    });
    println!("README commands per section: {per_section:?}");
    for s in SECTIONS {
        assert!(
            per_section.get(s).copied().unwrap_or(0) >= 3,
            "section {s:?} has fewer than 3 commands the test can run: {per_section:?}"
        );
    }

    // `make local-up`'s stack (prefix feedloop-local) and a deployed stack's outputs
    // naming the same resources.
    let stack = Stack::start("feedloop-local").await;
    let secret_arn = feedloop_aws::secrets::ensure_local_secret(&stack.sdk, &stack.names.secret)
        .await
        .expect("the stack secret");
    create_stack(&stack, &secret_arn).await;

    let dir = feedloop_tests::scratch_dir("readme");
    write_inputs(&dir, &feedloop);
    // Three messages in the dead-letter queue for the `dlq` transcript.
    let sqs = stack.sqs();
    for i in 0..3 {
        sqs.send_message()
            .queue_url(&stack.urls.ingest_dlq)
            .message_body(format!(
                r#"{{"feedback_id":"dlq-{i}","customer_id":"cust-900","kind":"survey","occurred_at":"2026-11-20T10:00:00Z","nps_score":9}}"#
            ))
            .send()
            .await
            .unwrap();
    }

    // The documented commands in order; after each that sends, the queues are drained
    // as the deployed functions would drain them.
    let drain = "feedloop local drain".to_owned();
    let mut commands: Vec<(String, bool)> = Vec::new();
    let mut doc_index = Vec::new();
    for d in &docs {
        doc_index.push(commands.len());
        commands.push((d.command.clone(), true));
        if sends(&d.command) {
            commands.push((drain.clone(), false));
        }
    }
    std::fs::write(
        dir.join("readme.sh"),
        script(&commands, &stack.moto.endpoint),
    )
    .unwrap();
    // awscli v1's SQS commands ignore AWS_ENDPOINT_URL (aws/aws-cli#8737; every other
    // service honours it): on PATH, `aws` passes the endpoint on explicitly.
    let shim = dir.join("bin");
    std::fs::create_dir_all(&shim).unwrap();
    std::fs::write(
        shim.join("aws"),
        format!(
            "#!/bin/sh\nexec '{}' --endpoint-url \"$AWS_ENDPOINT_URL\" \"$@\"\n",
            aws.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shim.join("aws"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}:{}",
        feedloop.parent().unwrap().display(),
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = Command::new("bash")
        .arg("readme.sh")
        .current_dir(&dir)
        .env("PATH", path)
        .env("AWS_ENDPOINT_URL", &stack.moto.endpoint)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_PAGER", "")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("FEEDLOOP_STACK")
        .env_remove("FEEDLOOP_TABLE")
        .env_remove("FEEDLOOP_QUEUE_URL")
        .env_remove("FEEDLOOP_DLQ_URL")
        .env_remove("FEEDLOOP_SECRET_ID")
        .output()
        .expect("bash runs");
    assert!(run.status.success(), "{run:?}");

    let mut problems = Vec::new();
    for (i, (cmd, is_doc)) in commands.iter().enumerate() {
        let rc: Option<i32> = read(&dir, &format!("rc.{i}")).trim().parse().ok();
        let out = read(&dir, &format!("out.{i}"));
        let err = read(&dir, &format!("err.{i}"));
        let expected = match docs.iter().zip(&doc_index).find(|(_, k)| **k == i) {
            Some((d, _)) => d.expected_exit,
            None => 0,
        };
        println!(
            "[{}] exit {rc:?}: {}",
            if *is_doc { "README" } else { "test" },
            cmd.lines().next().unwrap_or("")
        );
        let mut fail = |why: String| {
            problems.push(format!(
                "{cmd}\n  {why}\n  stdout: {}\n  stderr: {}",
                out.trim(),
                err.trim()
            ));
        };
        if rc != Some(expected) {
            fail(format!("exit {rc:?}, the README says {expected}"));
            continue;
        }
        let first_word = cmd
            .split_once("=$(")
            .map_or(cmd.as_str(), |(_, r)| r)
            .trim_start();
        if first_word.starts_with("aws ") && !cmd.contains("=$(") {
            if let Err(why) = check_aws_answer(cmd, &out) {
                fail(why);
            }
        }
        // A file the command says it writes is there.
        let words: Vec<&str> = cmd.split_whitespace().collect();
        for w in words.windows(2) {
            if matches!(w[0], "--output" | "--export") && w[1].contains('.') {
                let written = std::fs::metadata(dir.join(w[1])).map_or(0, |m| m.len());
                if written == 0 {
                    fail(format!("{} {} wrote nothing", w[0], w[1]));
                }
            }
        }
        let doc = docs
            .iter()
            .zip(&doc_index)
            .find(|(_, k)| **k == i)
            .map(|(d, _)| d);
        if let Some(want) = doc.and_then(|d| d.first_line.as_deref()) {
            let got = out.lines().next().unwrap_or("");
            if shape(got) != shape(want) {
                fail(format!("first line {got:?}; the README shows {want:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} README command(s) did not do what the README says:\n{}",
        problems.len(),
        problems.join("\n")
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn commands_are_found_joined_and_shaped() {
    let block = [
        "QUEUE=$(aws cloudformation describe-stacks --stack-name feedloop \\",
        "  --output text)",
        "aws sqs send-message --message-body '{\"a\":1,",
        "  \"b\":2}'  # it's a comment, its quote is not shell's",
        "make local-up",
        "feedloop send x.jsonl   # exit 1: two bad lines",
    ];
    let lines = logical_lines(&block);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let commands: Vec<_> = lines.iter().filter(|l| is_command(l)).collect();
    assert_eq!(commands.len(), 3);
    assert!(commands[1].contains("\"b\":2}'"));
    assert_eq!(expected_exit(commands[2]), 1);
    assert_eq!(expected_exit(commands[0]), 0);
    assert_eq!(
        shape("NPS 2026-10-26 to 2026-11-23: -8.6 (35 responses)"),
        shape("NPS 2026-01-01 to 2026-02-03:  12.5 (7 responses)")
    );
    assert_ne!(shape("customer cust-016"), shape("no customer cust-016"));
}
