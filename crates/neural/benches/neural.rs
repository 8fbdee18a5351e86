//! `make bench` (second part): neural and hybrid throughput on ONE thread, batch 1 and
//! batch 32, on short texts and ~100-word reviews, beside the lexicon modes, Python
//! VADER and (when .venv-parity exists) the same model in sentence-transformers. Also
//! the cold start (load + exemplars + first text) and peak RSS.

use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use feedloop_core::analysis::Analyzer;
use feedloop_core::neural::SharedEncoder;
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_neural::{resolve_model_dir, BertEncoder};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/parity/vader_3.3.2.jsonl"
);

fn texts_per_sec(texts: &[String], batch: usize, rounds: usize, f: impl Fn(&[&str])) -> f64 {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    f(&refs[..batch.min(refs.len())]);
    let best = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for chunk in refs.chunks(batch) {
                f(chunk);
            }
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    texts.len() as f64 / best
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn python(var: &str, args: &[&str]) -> Option<f64> {
    let py = std::env::var(var).ok()?;
    if !std::path::Path::new(&py).exists() {
        return None;
    }
    let out = Command::new(&py).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "{py} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()?["texts_per_sec"].as_f64()
}

fn main() {
    // One thread: the figure that matters for a 1-vCPU Lambda.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let started = Instant::now();
    let dir = resolve_model_dir(None).unwrap_or_else(|e| panic!("{e}"));
    let model = BertEncoder::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let loaded = started.elapsed();
    let encoder: SharedEncoder = Arc::new(model);
    let hybrid = Analyzer::build(
        Mode::Hybrid,
        Taxonomy::default_small_business(),
        Some(encoder.clone()),
    )
    .expect("hybrid analyzer");
    let built = started.elapsed();
    hybrid
        .analyze_text("The parcel never arrived.")
        .expect("first text");
    let first = started.elapsed();
    println!(
        "cold start (1 thread): model load {:.0} ms, + taxonomy exemplars {:.0} ms, + first text {:.0} ms = {:.0} ms",
        loaded.as_secs_f64() * 1e3,
        (built - loaded).as_secs_f64() * 1e3,
        (first - built).as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3
    );
    let neural = Analyzer::build(
        Mode::Neural,
        Taxonomy::default_small_business(),
        Some(encoder.clone()),
    )
    .expect("neural analyzer");
    let lexicon = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());

    let src = std::fs::read_to_string(CORPUS).expect("parity corpus is committed");
    let all = feedloop_core::eval::texts_of_jsonl(&src).expect("valid rows");
    // Per-message latency on one thread: one feedback text at a time, as a batch of 1.
    {
        let texts: Vec<&String> = all.iter().step_by(24).take(256).collect();
        let mut ms: Vec<f64> = texts
            .iter()
            .map(|t| {
                let s = Instant::now();
                black_box(hybrid.analyze_text(t).expect("analysis"));
                s.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "hybrid per-message analysis, 1 thread, {} texts: p50 {:.1} ms, p99 {:.1} ms",
            ms.len(),
            ms[ms.len() / 2],
            ms[ms.len() * 99 / 100]
        );
    }
    // Short texts: 512 of the VADER parity corpus (tweet-length). Reviews: the same
    // sentences joined into ~100-word texts.
    let short: Vec<String> = all
        .iter()
        .step_by(all.len() / 512)
        .take(512)
        .cloned()
        .collect();
    let mut reviews = Vec::new();
    let mut cur = String::new();
    for t in &all {
        cur.push_str(t);
        cur.push_str(". ");
        if cur.split_whitespace().count() >= 100 {
            reviews.push(std::mem::take(&mut cur));
            if reviews.len() == 32 {
                break;
            }
        }
    }
    let short_words: usize = short.iter().map(|t| t.split_whitespace().count()).sum();
    println!(
        "texts: {} short (mean {:.1} words), {} reviews (~100 words)",
        short.len(),
        short_words as f64 / short.len() as f64,
        reviews.len()
    );
    let mut rows: Vec<(String, f64)> = Vec::new();
    for (set, texts) in [("short", &short), ("review", &reviews)] {
        let lex = texts_per_sec(texts, 32, 3, |b| {
            black_box(lexicon.analyze_texts(b).expect("lexicon"));
        });
        rows.push((format!("{set:<6} lexicon  (full analysis)"), lex));
        for batch in [1, 32] {
            let rounds = if batch == 1 { 1 } else { 2 };
            let mut record = |label: String, rate: f64| {
                println!("{label}: {rate:.1} texts/s");
                rows.push((label, rate));
            };
            let enc = texts_per_sec(texts, batch, rounds, |b| {
                black_box(encoder.encode(b).expect("encode"));
            });
            record(format!("{set:<6} encoder only   batch {batch:>2}"), enc);
            for (name, a) in [("neural", &neural), ("hybrid", &hybrid)] {
                let r = texts_per_sec(texts, batch, rounds, |b| {
                    black_box(a.analyze_texts(b).expect("analysis"));
                });
                record(format!("{set:<6} {name}   (full)  batch {batch:>2}"), r);
            }
        }
        print!(".");
        std::io::stdout().flush().ok();
    }
    println!();
    let tmp = std::env::temp_dir().join("feedloop-bench-short.jsonl");
    let mut f = std::fs::File::create(&tmp).expect("temp file");
    for t in &short {
        writeln!(f, "{}", serde_json::json!({ "text": t })).expect("write");
    }
    let vader_script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/python_vader.py");
    let torch_script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/torch_minilm.py");
    let tmp_s = tmp.to_string_lossy().to_string();
    let dir_s = dir.to_string_lossy().to_string();
    let py_vader = python("FEEDLOOP_PYTHON", &[vader_script, &tmp_s, "3"]);
    let torch32 = python(
        "FEEDLOOP_TORCH_PYTHON",
        &[torch_script, &dir_s, &tmp_s, "32"],
    );
    let torch1 = python(
        "FEEDLOOP_TORCH_PYTHON",
        &[torch_script, &dir_s, &tmp_s, "1"],
    );
    for (name, rate) in &rows {
        let mut line = format!("{name}: {rate:>9.1} texts/s");
        if let (Some(v), true) = (py_vader, name.starts_with("short")) {
            line.push_str(&format!("  ({:.2}x Python VADER)", rate / v));
        }
        if let (Some(t), true) = (
            torch32,
            name.starts_with("short") && name.ends_with("batch 32"),
        ) {
            line.push_str(&format!("  ({:.2}x PyTorch batch 32)", rate / t));
        }
        if let (Some(t), true) = (
            torch1,
            name.starts_with("short") && name.ends_with("batch  1"),
        ) {
            line.push_str(&format!("  ({:.2}x PyTorch batch 1)", rate / t));
        }
        println!("{line}");
    }
    match py_vader {
        Some(v) => println!("python vaderSentiment 3.3.2 (short): {v:>9.1} texts/s"),
        None => println!("python vaderSentiment: not timed (set FEEDLOOP_PYTHON)"),
    }
    match (torch1, torch32) {
        (Some(a), Some(b)) => println!(
            "python sentence-transformers, 1 thread (short): batch 1 {a:.1} texts/s, batch 32 {b:.1} texts/s"
        ),
        _ => println!("sentence-transformers: not timed (make parity-embeddings creates .venv-parity)"),
    }
    println!("peak RSS {:.0} MiB", peak_rss_mib());
}
