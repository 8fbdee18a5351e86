//! What pooling a sentence from its text's forward pass costs, on dev data only:
//! each `sst5_dev` sentence is followed by another dev sentence, and its per-sentence
//! 3-way label is compared with gold, once pooled in context (what the analyzer does)
//! and once encoded alone (twice the encoder work). Also the hybrid throughput of both
//! on the bench's short texts, one thread.
//!
//! `cargo run --release -p feedloop-neural --example sentence_context [EVAL_DIR]`

use std::sync::Arc;
use std::time::Instant;

use feedloop_core::analysis::Analyzer;
use feedloop_core::neural::{EncodeError, SentenceEncoder, SharedEncoder};
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_neural::{resolve_model_dir, BertEncoder};

/// The same encoder without its one-pass `encode_parts`: every sentence encoded alone.
struct Alone(Arc<BertEncoder>);

impl SentenceEncoder for Alone {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError> {
        self.0.encode(texts)
    }
}

fn label(compound: f64) -> &'static str {
    match compound {
        c if c >= 0.05 => "positive",
        c if c <= -0.05 => "negative",
        _ => "neutral",
    }
}

fn main() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let eval_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/eval".into());
    let model =
        Arc::new(BertEncoder::load(&resolve_model_dir(None).expect("model")).expect("load"));
    let build = |e: SharedEncoder| {
        Analyzer::build(Mode::Hybrid, Taxonomy::default_small_business(), Some(e))
            .expect("hybrid analyzer")
    };
    let pooled = build(model.clone());
    let alone = build(Arc::new(Alone(model)));

    let corpus = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/parity/vader_3.3.2.jsonl"
    );
    let all: Vec<String> = std::fs::read_to_string(corpus)
        .expect("parity corpus")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("row");
            v["text"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    let short: Vec<&str> = all
        .iter()
        .step_by(all.len() / 512)
        .take(512)
        .map(String::as_str)
        .collect();
    for (name, a) in [
        ("pooled in context", &pooled),
        ("every sentence alone", &alone),
    ] {
        let t = Instant::now();
        for chunk in short.chunks(32) {
            std::hint::black_box(a.analyze_texts(chunk).expect("analysis"));
        }
        let rate = short.len() as f64 / t.elapsed().as_secs_f64();
        println!("hybrid, {name}: {rate:.1} short texts/s (batch 32, 1 thread)");
    }

    let dev = format!("{eval_dir}/sentiment/sst5_dev.jsonl");
    let rows: Vec<(String, String)> = std::fs::read_to_string(&dev)
        .unwrap_or_else(|e| panic!("{dev}: {e}"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("row");
            let text = v["text"].as_str().unwrap_or("").to_owned();
            (
                text,
                v["gold"]["sentiment"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let (mut pairs, mut right_pooled, mut right_alone) = (0, 0, 0);
    let (mut mixed, mut mixed_pooled, mut mixed_alone) = (0, 0, 0);
    for (i, (text, gold)) in rows.iter().enumerate() {
        let (next, next_gold) = &rows[(i * 7 + 3) % rows.len()];
        let both = format!("{text} {next}");
        let p = pooled.analyze_text(&both).expect("analysis");
        if p.sentences.len() != 2 {
            continue; // the splitter saw more than the two sentences
        }
        let a = alone.analyze_text(&both).expect("analysis");
        let (hit_p, hit_a) = (
            label(p.sentences[0].compound) == gold,
            label(a.sentences[0].compound) == gold,
        );
        pairs += 1;
        right_pooled += hit_p as usize;
        right_alone += hit_a as usize;
        if gold != "neutral" && next_gold != "neutral" && gold != next_gold {
            mixed += 1;
            mixed_pooled += hit_p as usize;
            mixed_alone += hit_a as usize;
        }
    }
    let pct = |a: usize, n: usize| a as f64 / n.max(1) as f64;
    println!(
        "sst5_dev, first sentence of {pairs} pairs, 3-way accuracy: pooled {:.3}, alone {:.3}",
        pct(right_pooled, pairs),
        pct(right_alone, pairs)
    );
    println!(
        "  {mixed} pairs of opposite sign: pooled {:.3}, alone {:.3}",
        pct(mixed_pooled, mixed),
        pct(mixed_alone, mixed)
    );
}
