//! Commands against a deployed (or local) stack: send, profile, segment, reports,
//! erase, dead-letter queue. Queries go through the same routes as the HTTP API, in
//! process, so the CLI and the API cannot disagree.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use chrono::Utc;
use feedloop_api::Api;
use feedloop_aws::DynamoStore;
use feedloop_core::envelope::parse_envelope;
use feedloop_core::keys::StackKeys;
use futures::stream::{self, StreamExt};
use serde_json::{json, Map, Value};

use crate::target::Resolved;

/// SQS limits: 10 entries and 256 KiB per batch.
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;
/// Attempts per entry (throttling, 5xx) before it counts as failed.
const SEND_ATTEMPTS: u32 = 5;

/// Queries need no stack key: cursors never leave this process, so a per-process one
/// signs them. Only the erase reads the stack secret (`keyed_api`).
fn api(r: &Resolved) -> Result<Api<DynamoStore>> {
    let process_secret = format!(
        "cli-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or(0)
    )
    .repeat(2);
    keyed_api(r, StackKeys::derive(&process_secret)?)
}

fn keyed_api(r: &Resolved, keys: StackKeys) -> Result<Api<DynamoStore>> {
    Ok(Api {
        store: r.store()?,
        keys,
        clock: std::sync::Arc::new(Utc::now),
    })
}

/// Call a route; a non-2xx answer becomes an error with the API's code and message.
async fn call(
    api: &Api<DynamoStore>,
    method: &str,
    path: &str,
    q: &[(&str, String)],
) -> Result<Value> {
    let query: HashMap<String, String> =
        q.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let r = api.handle(method, path, &query).await;
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    if r.status >= 300 {
        bail!(
            "{} ({})",
            v["error"]["message"].as_str().unwrap_or("request failed"),
            v["error"]["code"].as_str().unwrap_or("error")
        );
    }
    Ok(v)
}

fn encode(id: &str) -> String {
    id.replace('%', "%25").replace('/', "%2F")
}

fn print_json(v: &Value) -> Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.digits$}"))
}

pub async fn profile(r: &Resolved, id: &str, json: bool) -> Result<ExitCode> {
    let api = api(r)?;
    let p = call(&api, "GET", &format!("/customers/{}", encode(id)), &[]).await?;
    let fb = call(
        &api,
        "GET",
        &format!("/customers/{}/feedback", encode(id)),
        &[("limit", "5".into())],
    )
    .await?;
    let fu = call(
        &api,
        "GET",
        &format!("/customers/{}/followups", encode(id)),
        &[],
    )
    .await?;
    if json {
        return print_json(
            &json!({"profile": p, "recent_feedback": fb["items"], "followups": fu["items"]}),
        );
    }
    let pr = &p["profile"];
    println!(
        "customer        {}",
        p["customer_id"].as_str().unwrap_or(id)
    );
    println!("segment         {}", p["segment"].as_str().unwrap_or("-"));
    let reasons: Vec<&str> = p["churn_risk"]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "churn risk      {}  {}",
        num(&p["churn_risk"]["score"], 2),
        reasons.join("; ")
    );
    println!(
        "feedback        {} (first {}, last {})",
        pr["feedback_count"],
        pr["first_feedback_at"].as_str().unwrap_or("-"),
        pr["last_feedback_at"].as_str().unwrap_or("-")
    );
    println!(
        "NPS category    {}",
        p["nps_category"].as_str().unwrap_or("-")
    );
    println!(
        "sentiment       {} (time-decayed)",
        num(&p["decayed_sentiment"], 3)
    );
    println!("recent feedback (newest first):");
    for f in fb["items"].as_array().into_iter().flatten() {
        println!(
            "  {}  {:<7} {:>6}  {}",
            f["occurred_at"]
                .as_str()
                .unwrap_or("")
                .get(..10)
                .unwrap_or(""),
            f["kind"].as_str().unwrap_or(""),
            num(&f["compound"], 3),
            f["excerpt"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(70)
                .collect::<String>()
        );
    }
    println!("follow-ups:");
    let items = fu["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("  none");
    }
    for a in items {
        println!(
            "  {}  {:<32} {:<8} {}",
            a["at"].as_str().unwrap_or("").get(..16).unwrap_or(""),
            a["playbook"].as_str().unwrap_or(""),
            a["status"].as_str().unwrap_or(""),
            a["reason"].as_str().or(a["preview"].as_str()).unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn segment(r: &Resolved, name: &str, limit: usize, json: bool) -> Result<ExitCode> {
    let api = api(r)?;
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    while items.len() < limit {
        let mut q = vec![("limit", (limit - items.len()).min(100).to_string())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page = call(&api, "GET", &format!("/segments/{name}"), &q).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    if json {
        return print_json(&json!({"segment": name, "items": items}));
    }
    println!("{:<40} {:>10}", "customer", "churn risk");
    for m in &items {
        println!(
            "{:<40} {:>10}",
            m["customer_id"].as_str().unwrap_or(""),
            num(&m["churn_risk"], 2)
        );
    }
    println!(
        "{} customer(s) in {name}{}",
        items.len(),
        if cursor.is_some() {
            " shown (more: raise --limit)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn range_query(range: crate::cloud::DateRange) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(f) = range.from {
        q.push(("from", f.to_string()));
    }
    if let Some(t) = range.to {
        q.push(("to", t.to_string()));
    }
    q
}

pub async fn report_nps(
    r: &Resolved,
    range: crate::cloud::DateRange,
    granularity: crate::cloud::Granularity,
    json: bool,
) -> Result<ExitCode> {
    let mut q = range_query(range);
    q.push(("granularity", granularity.as_str().to_owned()));
    let v = call(&api(r)?, "GET", "/reports/nps", &q).await?;
    if json {
        return print_json(&v);
    }
    println!(
        "NPS {} to {}: {} ({} responses)",
        v["from"].as_str().unwrap_or(""),
        v["to"].as_str().unwrap_or(""),
        num(&v["nps"], 1),
        ["promoters", "passives", "detractors"]
            .iter()
            .map(|k| v["responses"][k].as_u64().unwrap_or(0))
            .sum::<u64>()
    );
    println!(
        "{:<12} {:>8} {:>10} {:>9} {:>10} {:>8}",
        "period", "NPS", "promoters", "passives", "detractors", "feedback"
    );
    for p in v["points"].as_array().into_iter().flatten() {
        println!(
            "{:<12} {:>8} {:>10} {:>9} {:>10} {:>8}",
            p["period"].as_str().unwrap_or(""),
            num(&p["nps"], 1),
            p["promoters"].to_string(),
            p["passives"].to_string(),
            p["detractors"].to_string(),
            p["feedback"].to_string()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn report_drivers(
    r: &Resolved,
    range: crate::cloud::DateRange,
    json: bool,
) -> Result<ExitCode> {
    let v = call(&api(r)?, "GET", "/reports/drivers", &range_query(range)).await?;
    if json {
        return print_json(&v);
    }
    println!(
        "NPS drivers {} to {} (NPS {}), most costly first:",
        v["from"].as_str().unwrap_or(""),
        v["to"].as_str().unwrap_or(""),
        num(&v["nps"], 1)
    );
    println!(
        "{:<20} {:>8} {:>9} {:>9} {:>12}",
        "theme", "mentions", "NPS with", "without", "impact (pts)"
    );
    for d in v["drivers"].as_array().into_iter().flatten() {
        println!(
            "{:<20} {:>8} {:>9} {:>9} {:>12}",
            d["theme"].as_str().unwrap_or(""),
            d["mentions"].to_string(),
            num(&d["nps_with"], 1),
            num(&d["nps_without"], 1),
            num(&d["impact"], 2)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn erase(r: &Resolved, id: &str, yes: bool, json: bool) -> Result<ExitCode> {
    let keys = r.keys().await?;
    if !yes {
        eprintln!("This deletes customer {id}'s profile, feedback, follow-up history and rejects, and suppresses them for good. Re-run with --yes.");
        return Ok(ExitCode::from(1));
    }
    let v = call(
        &keyed_api(r, keys)?,
        "DELETE",
        &format!("/customers/{}", encode(id)),
        &[],
    )
    .await?;
    if json {
        return print_json(&v);
    }
    let d = &v["deleted"];
    println!(
        "erased {id}: profile {}, feedback {}, follow-ups {}, rejects {}, other {}; {} suppression key(s) kept",
        if d["profile"] == true { "deleted" } else { "none" },
        d["feedback"],
        d["followups"],
        d["rejects"],
        d["other"],
        d["suppression_keys"]
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    fn as_str(self) -> &'static str {
        match self {
            Switch::On => "on",
            Switch::Off => "off",
        }
    }
}

pub struct ConsentSwitches {
    pub email: Option<Switch>,
    pub sms: Option<Switch>,
    pub phone: Option<Switch>,
}

/// `PUT /customers/{id}/consent` through the same router as the HTTP API.
pub async fn consent(
    r: &Resolved,
    id: &str,
    switches: &ConsentSwitches,
    source: &str,
    json: bool,
) -> Result<ExitCode> {
    let mut q: Vec<(&str, String)> = [
        ("email", switches.email),
        ("sms", switches.sms),
        ("phone", switches.phone),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v.as_str().to_owned())))
    .collect();
    if q.is_empty() {
        bail!("say at least one of --email, --sms, --phone (on or off)");
    }
    q.push(("source", source.to_owned()));
    let v = call(
        &api(r)?,
        "PUT",
        &format!("/customers/{}/consent", encode(id)),
        &q,
    )
    .await?;
    if json {
        return print_json(&v);
    }
    let show = |k: &str| match v["in_force"][k].as_bool() {
        Some(true) => "on",
        Some(false) => "off",
        None => "not given",
    };
    println!(
        "consent for {id} now: email {}, sms {}, phone {} (recorded as consent:{source})",
        show("email"),
        show("sms"),
        show("phone")
    );
    Ok(ExitCode::SUCCESS)
}

/// Column mapping for CSV input: envelope field -> header.
pub struct CsvMapping {
    pub columns: Vec<(String, String)>,
    pub kind: Option<String>,
}

const CSV_FIELDS: [&str; 17] = [
    "feedback_id",
    "customer_id",
    "kind",
    "occurred_at",
    "text",
    "nps_score",
    "csat",
    "rating",
    "ticket_id",
    "status",
    "priority",
    "channel",
    "source",
    "locale",
    "customer.email",
    "customer.name",
    "customer.phone",
];

/// Turn CSV rows into envelopes: (line number, envelope or the reason it is invalid).
pub fn csv_envelopes(src: &[u8], m: &CsvMapping) -> Result<Vec<(usize, Result<String, String>)>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(feedloop_core::lines::strip_bom(src));
    let headers: Vec<String> = rdr
        .headers()
        .context("reading the CSV header")?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut map: Vec<(String, usize)> = Vec::new();
    for field in CSV_FIELDS {
        let header = m
            .columns
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, h)| h.as_str())
            .unwrap_or(field);
        if let Some(i) = headers.iter().position(|h| h == header) {
            map.push((field.to_owned(), i));
        }
    }
    for (f, h) in &m.columns {
        if !CSV_FIELDS.contains(&f.as_str()) {
            bail!(
                "--column {f}={h}: unknown field (fields: {})",
                CSV_FIELDS.join(", ")
            );
        }
        if !headers.contains(h) {
            bail!(
                "--column {f}={h}: the CSV has no column {h:?} (columns: {})",
                headers.join(", ")
            );
        }
    }
    let mut out = Vec::new();
    for (i, row) in rdr.records().enumerate() {
        let line = i + 2;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                out.push((line, Err(format!("not valid CSV: {e}"))));
                continue;
            }
        };
        let mut env = Map::new();
        let mut customer = Map::new();
        if let Some(k) = &m.kind {
            env.insert("kind".into(), json!(k));
        }
        let mut problem = None;
        for (field, idx) in &map {
            let cell = row.get(*idx).unwrap_or("").trim();
            if cell.is_empty() {
                continue;
            }
            let value = if ["nps_score", "csat", "rating"].contains(&field.as_str()) {
                match cell.parse::<i64>() {
                    Ok(n) => json!(n),
                    Err(_) => {
                        problem = Some(format!("{field}: {cell:?} is not a whole number"));
                        break;
                    }
                }
            } else {
                json!(cell)
            };
            match field.strip_prefix("customer.") {
                Some(sub) => {
                    customer.insert(sub.to_owned(), value);
                }
                None => {
                    env.insert(field.clone(), value);
                }
            }
        }
        if !customer.is_empty() {
            env.insert("customer".into(), Value::Object(customer));
        }
        out.push((
            line,
            problem.map_or_else(|| Ok(Value::Object(env).to_string()), Err),
        ));
    }
    Ok(out)
}

pub struct SendSummary {
    pub sent: usize,
    pub invalid: Vec<(usize, String)>,
    pub failed: Vec<(usize, String)>,
}

pub async fn send(
    r: &Resolved,
    file: &Path,
    csv_map: Option<CsvMapping>,
    concurrency: usize,
    json: bool,
) -> Result<ExitCode> {
    let src = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let rows: Vec<(usize, Result<String, String>)> = match csv_map {
        Some(m) => csv_envelopes(&src, &m)?,
        None => feedloop_core::lines::numbered_lines(&src[..])
            .map(|(n, l)| (n, l.map_err(|e| e.to_string())))
            .collect(),
    };
    // Validate before sending: a bad line is reported here, not discovered as a reject.
    let now = Utc::now();
    let mut invalid = Vec::new();
    let mut valid: Vec<(usize, String)> = Vec::new();
    for (line, row) in rows {
        match row.and_then(|b| {
            parse_envelope(b.as_bytes(), now)
                .map(|_| b)
                .map_err(|e| e.to_string())
        }) {
            Ok(b) => valid.push((line, b)),
            Err(e) => invalid.push((line, e)),
        }
    }
    let mut batches: Vec<Vec<(usize, String)>> = Vec::new();
    let mut cur: Vec<(usize, String)> = Vec::new();
    let mut bytes = 0;
    for (line, body) in valid {
        if cur.len() == BATCH_ENTRIES || bytes + body.len() > BATCH_BYTES {
            batches.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += body.len();
        cur.push((line, body));
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    let total: usize = batches.iter().map(Vec::len).sum();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} messages  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let sqs = aws_sdk_sqs::Client::new(&r.sdk);
    let url = r.queue_url()?.to_owned();
    let results: Vec<(usize, Vec<(usize, String)>)> = stream::iter(batches)
        .map(|batch| {
            let (sqs, url, bar) = (sqs.clone(), url.clone(), bar.clone());
            async move {
                let out = send_batch(&sqs, &url, batch).await;
                bar.inc(out.0 as u64 + out.1.len() as u64);
                out
            }
        })
        .buffer_unordered(concurrency.clamp(1, 64))
        .collect()
        .await;
    bar.finish_and_clear();
    let summary = SendSummary {
        sent: results.iter().map(|r| r.0).sum(),
        invalid,
        failed: results.into_iter().flat_map(|r| r.1).collect(),
    };
    let ok = summary.invalid.is_empty() && summary.failed.is_empty();
    if json {
        let lines = |v: &[(usize, String)]| {
            v.iter()
                .map(|(l, e)| json!({"line": l, "error": e}))
                .collect::<Vec<_>>()
        };
        print_json(
            &json!({"sent": summary.sent, "invalid": lines(&summary.invalid), "failed": lines(&summary.failed)}),
        )?;
    } else {
        println!(
            "sent {}, invalid {}, failed {}",
            summary.sent,
            summary.invalid.len(),
            summary.failed.len()
        );
        for (l, e) in summary.invalid.iter().take(50) {
            println!("  line {l}: invalid: {e}");
        }
        for (l, e) in summary.failed.iter().take(50) {
            println!("  line {l}: not sent: {e}");
        }
        if summary.invalid.len() + summary.failed.len() > 100 {
            println!("  ... (--json lists all)");
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Send one batch, retrying the entries SQS failed (unless the sender is at fault).
/// Returns (sent, failed entries with their reason).
async fn send_batch(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    batch: Vec<(usize, String)>,
) -> (usize, Vec<(usize, String)>) {
    let mut pending = batch;
    let mut sent = 0;
    let mut failed = Vec::new();
    for attempt in 1..=SEND_ATTEMPTS {
        let entries: Vec<SendMessageBatchRequestEntry> = pending
            .iter()
            .filter_map(|(line, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("l{line}"))
                    .message_body(body)
                    .build()
                    .ok()
            })
            .collect();
        let retry_all =
            |why: String, pending: &mut Vec<(usize, String)>, failed: &mut Vec<(usize, String)>| {
                if attempt == SEND_ATTEMPTS {
                    failed.extend(pending.drain(..).map(|(l, _)| (l, why.clone())));
                }
            };
        match sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                sent += out.successful().len();
                let mut again = Vec::new();
                for f in out.failed() {
                    let line: usize = f.id().trim_start_matches('l').parse().unwrap_or(0);
                    let Some(pos) = pending.iter().position(|(l, _)| *l == line) else {
                        continue;
                    };
                    let item = pending.remove(pos);
                    let why = format!("{}: {}", f.code(), f.message().unwrap_or(""));
                    if f.sender_fault() || attempt == SEND_ATTEMPTS {
                        failed.push((item.0, why));
                    } else {
                        again.push(item);
                    }
                }
                pending = again;
            }
            Err(e) => retry_all(format!("{e}"), &mut pending, &mut failed),
        }
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
    (sent, failed)
}

pub async fn dlq_list(r: &Resolved, max: usize, json: bool) -> Result<ExitCode> {
    let sqs = aws_sdk_sqs::Client::new(&r.sdk);
    let url = r.dlq_url()?;
    // Peek: received with a zero visibility timeout, so nothing leaves the queue.
    let mut seen: HashMap<String, Value> = HashMap::new();
    for _ in 0..(max / 10 + 3) {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .context("receiving from the dead-letter queue")?;
        let msgs = out.messages();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            let id = m.message_id().unwrap_or_default().to_owned();
            let count = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .cloned()
                .unwrap_or_default();
            seen.entry(id.clone()).or_insert_with(|| json!({"message_id": id, "receive_count": count, "body": m.body().unwrap_or_default()}));
        }
        if seen.len() >= max {
            break;
        }
    }
    let mut items: Vec<Value> = seen.into_values().collect();
    items.sort_by(|a, b| a["message_id"].as_str().cmp(&b["message_id"].as_str()));
    items.truncate(max);
    if json {
        return print_json(&json!({"items": items}));
    }
    println!(
        "{} message(s) in the dead-letter queue (showing up to {max}):",
        items.len()
    );
    for m in &items {
        let body: String = m["body"].as_str().unwrap_or("").chars().take(90).collect();
        println!(
            "  {}  received {}x  {body}",
            m["message_id"].as_str().unwrap_or(""),
            m["receive_count"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Move messages from the DLQ back to the ingest queue: send first, then delete, so a
/// crash in between duplicates (harmless: ingest dedupes) rather than loses.
pub async fn dlq_redrive(r: &Resolved, max: usize, dry_run: bool, json: bool) -> Result<ExitCode> {
    let sqs = aws_sdk_sqs::Client::new(&r.sdk);
    let (dlq, target) = (r.dlq_url()?.to_owned(), r.queue_url()?.to_owned());
    if dry_run {
        let out = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .context("reading the dead-letter queue depth")?;
        let n: usize = out
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let would = n.min(max);
        if json {
            return print_json(&json!({"dry_run": true, "would_move": would}));
        }
        println!("dry run: would move {would} message(s) to the ingest queue");
        return Ok(ExitCode::SUCCESS);
    }
    let mut moved = 0;
    while moved < max {
        let out = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages((max - moved).min(10) as i32)
            .visibility_timeout(60)
            .send()
            .await
            .context("receiving from the dead-letter queue")?;
        let msgs = out.messages().to_vec();
        if msgs.is_empty() {
            break;
        }
        let entries: Vec<SendMessageBatchRequestEntry> = msgs
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(m.body().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        let sent = sqs
            .send_message_batch()
            .queue_url(&target)
            .set_entries(Some(entries))
            .send()
            .await
            .context("sending to the ingest queue")?;
        let ok: Vec<usize> = sent
            .successful()
            .iter()
            .filter_map(|s| s.id().trim_start_matches('m').parse().ok())
            .collect();
        let deletes: Vec<DeleteMessageBatchRequestEntry> = ok
            .iter()
            .filter_map(|&i| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("d{i}"))
                    .receipt_handle(msgs[i].receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        if !deletes.is_empty() {
            sqs.delete_message_batch()
                .queue_url(&dlq)
                .set_entries(Some(deletes))
                .send()
                .await
                .context("deleting moved messages from the dead-letter queue")?;
        }
        moved += ok.len();
        if !sent.failed().is_empty() {
            eprintln!(
                "{} message(s) could not be sent back; they stay in the dead-letter queue",
                sent.failed().len()
            );
            break;
        }
        eprint!("\rmoved {moved}");
    }
    eprintln!();
    if json {
        return print_json(&json!({"dry_run": false, "moved": moved}));
    }
    println!("moved {moved} message(s) from the dead-letter queue to the ingest queue");
    Ok(ExitCode::SUCCESS)
}

/// `feedloop report followups`: the per-variant A/B counters, one row per variant.
pub async fn report_followups(target: &crate::target::AwsTarget, json: bool) -> Result<ExitCode> {
    let store = target.resolve().await?.store()?;
    let mut rows = store
        .followup_stats()
        .await
        .context("reading follow-up statistics")?;
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(p, v, s)| {
                serde_json::json!({
                    "playbook": p, "variant": v, "sent": s.sent, "responded": s.responded,
                    "response_rate": s.response_rate(), "mean_nps_change": s.mean_nps_change(),
                    "mean_sentiment_change": s.mean_sentiment_change(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("No follow-ups sent yet (in dry-run mode nothing is sent; see the follow-up history of a customer).");
        return Ok(ExitCode::SUCCESS);
    }
    let opt = |v: Option<f64>, p: usize| v.map_or("-".to_owned(), |v| format!("{v:+.p$}"));
    println!(
        "{:<34} {:<8} {:>6} {:>9} {:>7} {:>8} {:>10}",
        "playbook", "variant", "sent", "responded", "rate", "ΔNPS", "Δsentiment"
    );
    for (p, v, s) in &rows {
        println!(
            "{:<34} {:<8} {:>6} {:>9} {:>7} {:>8} {:>10}",
            p,
            v,
            s.sent,
            s.responded,
            s.response_rate()
                .map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0)),
            opt(s.mean_nps_change(), 1),
            opt(s.mean_sentiment_change(), 3),
        );
    }
    Ok(ExitCode::SUCCESS)
}
