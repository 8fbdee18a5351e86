//! `make bench-ingest`: the ingest handler over the in-memory store on one thread, in
//! SQS batches of 10, lexicon and hybrid analysis: messages/s per thread and where the
//! time goes (parse, analysis, fold, store). Parse, analysis and fold are the handler's
//! own functions timed alone on the same messages; "store and batching" is what the
//! handler took beyond them (the in-memory store's reads and commits, the follow-up
//! decision's hand-over, the batch driver). In Lambda the store is DynamoDB: see the
//! README's capacity table for what that changes.
//!
//! Messages: the committed parity corpus's texts (6,150 short real-world texts) as
//! surveys, reviews and tickets of 2,000 customers. `FEEDLOOP_MODEL_DIR` (or `models/`)
//! points at the encoder for the hybrid run; without it only lexicon runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, TimeZone, Utc};
use feedloop_core::analysis::Analyzer;
use feedloop_core::envelope::parse_envelope;
use feedloop_core::followup::Playbook;
use feedloop_core::records::effects;
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_ingest::{Ingest, Settings};
use feedloop_memory::MemoryStore;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/parity/vader_3.3.2.jsonl"
);
const BATCH: usize = 10;
const SHARDS: u16 = 8;
const HALF_LIFE: f64 = 30.0;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn messages(n: usize) -> Vec<String> {
    let src = std::fs::read_to_string(CORPUS).expect("the parity corpus is committed");
    let texts: Vec<String> = src
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    // Only what the envelope accepts (a few corpus texts are empty, and a review or
    // a ticket needs text): poison has its own path and is not what is measured.
    (0..)
        .map(|i| {
            let text = &texts[i % texts.len()];
            let customer = format!("cust-{:04}", (i * 7919) % 2_000);
            let mut v = serde_json::json!({
                "feedback_id": format!("fb-{i}"),
                "customer_id": customer,
                "occurred_at": format!("2026-11-{:02}T{:02}:00:00Z", 1 + i % 23, i % 24),
                "text": text,
            });
            match i % 3 {
                0 => {
                    v["kind"] = "survey".into();
                    v["nps_score"] = (i % 11).into();
                }
                1 => {
                    v["kind"] = "review".into();
                    v["rating"] = (1 + i % 5).into();
                }
                _ => {
                    v["kind"] = "ticket".into();
                    v["ticket_id"] = format!("T-{i}").into();
                    v["status"] = "open".into();
                    v["subject"] = "Help".into();
                }
            }
            v.to_string()
        })
        .filter(|b| parse_envelope(b.as_bytes(), now()).is_ok())
        .take(n)
        .collect()
}

fn event(batch: &[String], offset: usize) -> SqsEvent {
    let ids = (offset..).map(|i| Some(format!("m-{i}")));
    feedloop_kit::batch::event(ids.zip(batch.iter().cloned()))
}

fn run(name: &str, analyzer: Analyzer, bodies: &[String]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let ingest = Ingest::new(
        MemoryStore::default(),
        analyzer.clone(),
        Settings {
            half_life_days: HALF_LIFE,
            aggregate_shards: SHARDS,
            max_concurrency: BATCH,
            max_followup_age_hours: 24 * 365,
        },
        Arc::new(now),
    )
    .with_followups(
        Playbook::default_rules(),
        feedloop_kit::ports::ingest::NoFollowUps,
    );

    // The handler, end to end.
    let t = Instant::now();
    let (mut applied, mut other) = (0, Vec::new());
    for (k, batch) in bodies.chunks(BATCH).enumerate() {
        let (response, report) = rt
            .block_on(ingest.handle(event(batch, k * BATCH)))
            .expect("a valid batch");
        assert!(response.batch_item_failures.is_empty());
        applied += report.processed;
        if report.processed as usize != batch.len() {
            other.push(format!("{report:?}"));
        }
    }
    let total = t.elapsed().as_secs_f64();
    assert_eq!(
        applied as usize,
        bodies.len(),
        "every message applied once: {other:?}"
    );

    // Its parts alone, on the same messages and batches.
    let t = Instant::now();
    let parsed: Vec<Vec<_>> = bodies
        .chunks(BATCH)
        .map(|b| {
            b.iter()
                .map(|body| {
                    parse_envelope(body.as_bytes(), now())
                        .expect("valid")
                        .feedback
                })
                .collect()
        })
        .collect();
    let parse = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let analyzed: Vec<_> = parsed
        .into_iter()
        .flat_map(|b| analyzer.analyze_batch(b).expect("analysis"))
        .collect();
    let analysis = t.elapsed().as_secs_f64();
    let playbook = Playbook::default_rules();
    let mut profiles = HashMap::new();
    let t = Instant::now();
    for af in &analyzed {
        let current = profiles.remove(af.feedback.customer_id.as_str());
        let fx = effects(current, af, HALF_LIFE, SHARDS);
        std::hint::black_box(playbook.decide(af, &fx.profile));
        profiles.insert(af.feedback.customer_id.to_string(), fx.profile);
    }
    let fold = t.elapsed().as_secs_f64();
    let store = (total - parse - analysis - fold).max(0.0);
    let pct = |x: f64| 100.0 * x / total;
    let per = |x: f64| 1e6 * x / bodies.len() as f64;
    println!(
        "{name:<8} {:>6} msgs: {:>8.0} msgs/s per thread ({:.0} µs each) | parse {:.0} µs ({:.1}%), analysis {:.0} µs ({:.1}%), fold {:.0} µs ({:.1}%), store and batching {:.0} µs ({:.1}%)",
        bodies.len(),
        bodies.len() as f64 / total,
        per(total),
        per(parse),
        pct(parse),
        per(analysis),
        pct(analysis),
        per(fold),
        pct(fold),
        per(store),
        pct(store),
    );
}

fn main() {
    // One thread: the figures are per vCPU (rayon would use every core for the encoder).
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let taxonomy = Taxonomy::default_small_business();
    let n: usize = std::env::var("FEEDLOOP_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let bodies = messages(n);
    // One untimed pass: lexicon tables, page faults, clock ramp-up.
    run(
        "warm-up",
        Analyzer::new(Mode::Lexicon, taxonomy.clone()),
        &bodies[..n.min(2_000)],
    );
    for _ in 0..3 {
        run(
            "lexicon",
            Analyzer::new(Mode::Lexicon, taxonomy.clone()),
            &bodies,
        );
    }
    match feedloop_neural::resolve_model_dir(None) {
        Ok(dir) => {
            let analyzer = feedloop_neural::analyzer(
                Mode::Hybrid,
                taxonomy,
                feedloop_neural::ModelDirs {
                    english: Some(&dir),
                    multilingual: None,
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let hybrid_n = n.min(
                std::env::var("FEEDLOOP_BENCH_HYBRID_MESSAGES")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1_000),
            );
            run("warm-up", analyzer.clone(), &bodies[..100]);
            run("hybrid", analyzer, &bodies[..hybrid_n]);
        }
        Err(e) => println!("hybrid: skipped ({e})"),
    }
}
