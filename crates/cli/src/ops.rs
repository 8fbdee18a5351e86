//! Commands that move messages: send (JSON Lines or CSV, batched, retried) and the
//! dead-letter queue (list, redrive). Queries are in `query.rs`.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use feedloop_aws::SqsQueue;
use feedloop_core::envelope::parse_envelope;
use feedloop_kit::ports::ingest::MessageQueue;
use futures::stream::{self, StreamExt};
use serde_json::{json, Map, Value};

use crate::query::print_json;
use crate::target::Resolved;

/// SQS limits: 10 entries and 256 KiB per batch.
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;
/// Attempts per entry (throttling, 5xx) before it counts as failed.
const SEND_ATTEMPTS: u32 = 5;

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
    let queue = r.queue(r.queue_url()?);
    let results: Vec<(usize, Vec<(usize, String)>)> = stream::iter(batches)
        .map(|batch| {
            let (queue, bar) = (queue.clone(), bar.clone());
            async move {
                let out = send_batch(&queue, batch).await;
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
    queue: &SqsQueue,
    batch: Vec<(usize, String)>,
) -> (usize, Vec<(usize, String)>) {
    let mut pending = batch;
    let mut sent = 0;
    let mut failed = Vec::new();
    for attempt in 1..=SEND_ATTEMPTS {
        let entries: Vec<(String, String)> = pending
            .iter()
            .map(|(line, body)| (format!("l{line}"), body.clone()))
            .collect();
        match queue.send_batch(&entries).await {
            Ok(out) => {
                sent += out.sent.len();
                let mut again = Vec::new();
                for f in out.failed {
                    let line: usize = f.id.trim_start_matches('l').parse().unwrap_or(0);
                    let Some(pos) = pending.iter().position(|(l, _)| *l == line) else {
                        continue;
                    };
                    let item = pending.remove(pos);
                    if f.sender_fault || attempt == SEND_ATTEMPTS {
                        failed.push((item.0, f.reason));
                    } else {
                        again.push(item);
                    }
                }
                pending = again;
            }
            Err(e) if attempt == SEND_ATTEMPTS => {
                failed.extend(pending.drain(..).map(|(l, _)| (l, e.to_string())));
            }
            Err(_) => {}
        }
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
    (sent, failed)
}

pub async fn dlq_list(r: &Resolved, max: usize, json: bool) -> Result<ExitCode> {
    let dlq = r.queue(r.dlq_url()?);
    let mut seen: HashMap<String, Value> = HashMap::new();
    for _ in 0..(max / 10 + 3) {
        let msgs = dlq
            .peek(10)
            .await
            .context("receiving from the dead-letter queue")?;
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            let count = m.receive_count.map_or_else(String::new, |c| c.to_string());
            seen.entry(m.message_id.clone()).or_insert_with(
                || json!({"message_id": m.message_id, "receive_count": count, "body": m.body}),
            );
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
    let (dlq, target) = (r.queue(r.dlq_url()?), r.queue(r.queue_url()?));
    if dry_run {
        let (visible, _) = dlq
            .depth()
            .await
            .context("reading the dead-letter queue depth")?;
        let would = (visible.max(0) as usize).min(max);
        if json {
            return print_json(&json!({"dry_run": true, "would_move": would}));
        }
        println!("dry run: would move {would} message(s) to the ingest queue");
        return Ok(ExitCode::SUCCESS);
    }
    let mut moved = 0;
    while moved < max {
        let msgs = dlq
            .take((max - moved).min(10), 60)
            .await
            .context("receiving from the dead-letter queue")?;
        if msgs.is_empty() {
            break;
        }
        let entries: Vec<(String, String)> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("m{i}"), m.body.clone()))
            .collect();
        let sent = target
            .send_batch(&entries)
            .await
            .context("sending to the ingest queue")?;
        let ok: Vec<_> = sent
            .sent
            .iter()
            .filter_map(|id| id.trim_start_matches('m').parse::<usize>().ok())
            .filter_map(|i| msgs.get(i).cloned())
            .collect();
        dlq.ack(&ok)
            .await
            .context("deleting moved messages from the dead-letter queue")?;
        moved += ok.len();
        if !sent.failed.is_empty() {
            eprintln!(
                "{} message(s) could not be sent back; they stay in the dead-letter queue",
                sent.failed.len()
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
