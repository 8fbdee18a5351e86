//! `make bench`: single-thread throughput of both sentiment modes on the committed
//! parity corpus, and Python vaderSentiment timed on the same corpus in the same run.
//! Set FEEDLOOP_PYTHON to a Python with vaderSentiment 3.3.2 (the Makefile does).

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use feedloop_core::analysis::Analyzer;
use feedloop_core::sentiment::{Mode, Scorer};
use feedloop_core::themes::Taxonomy;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/parity/vader_3.3.2.jsonl"
);

fn best_of<F: FnMut()>(rounds: usize, mut f: F) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let src = std::fs::read_to_string(CORPUS).expect("parity corpus is committed");
    let texts = feedloop_core::eval::texts_of_jsonl(&src).expect("valid rows");
    let bytes: usize = texts.iter().map(String::len).sum();
    println!(
        "corpus: {} texts, {:.1} KiB ({})",
        texts.len(),
        bytes as f64 / 1024.0,
        CORPUS
    );
    let rounds = 30;
    let mut results = Vec::new();
    for (name, mode) in [("reference", Mode::Reference), ("feedloop", Mode::Lexicon)] {
        let scorer = Scorer::new(mode);
        // One untimed pass: lexicon parsing, page faults and CPU clock ramp-up.
        for t in &texts {
            black_box(scorer.scores(t));
        }
        let secs = best_of(rounds, || {
            for t in &texts {
                black_box(scorer.scores(black_box(t)));
            }
        });
        let rate = texts.len() as f64 / secs;
        println!("rust {name:<9} sentiment only : {rate:>12.0} texts/s (best of {rounds})");
        results.push((name, rate));
    }
    let analyzer = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let secs = best_of(3, || {
        for t in &texts {
            let _ = black_box(analyzer.analyze_text(black_box(t)));
        }
    });
    println!(
        "rust full analysis (language, sentences, themes): {:>8.0} texts/s",
        texts.len() as f64 / secs
    );

    let python = std::env::var("FEEDLOOP_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/python_vader.py");
    match Command::new(&python).args([script, CORPUS, "3"]).output() {
        Ok(out) if out.status.success() => {
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("python prints JSON");
            let py = v["texts_per_sec"].as_f64().unwrap_or(f64::NAN);
            println!("python vaderSentiment 3.3.2    : {py:>12.0} texts/s (best of 3, {python})");
            for (name, rate) in results {
                println!("ratio rust {name} / python   : {:>11.1}x", rate / py);
            }
        }
        Ok(out) => println!(
            "python timing failed ({python}): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => println!("python timing skipped: cannot run {python}: {e}"),
    }
}
