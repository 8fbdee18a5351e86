//! The test-split table the heads file carries: every mode on every test file.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use feedloop_core::analysis::Analyzer;
use feedloop_core::eval::{self, Split};
use feedloop_core::neural::{Heads, SentenceEncoder};
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_neural::BertEncoder;
use serde_json::json;

use super::load;

/// Every mode on every test file: the figures the heads file carries.
pub(super) fn eval_table(
    heads: &Heads,
    encoder: Arc<BertEncoder>,
    dir: &Path,
) -> Result<Vec<serde_json::Value>> {
    let shared: Arc<dyn SentenceEncoder> = encoder;
    let mut rows = Vec::new();
    let files = [
        ("sentiment/sst5_test.jsonl", false),
        ("sentiment/uci_amazon.jsonl", true),
        ("sentiment/uci_imdb.jsonl", true),
        ("sentiment/uci_yelp.jsonl", true),
        ("sentiment/vader_amazon_snippets.jsonl", true),
        ("sentiment/vader_movie_snippets.jsonl", true),
        ("themes/semeval14_restaurants_test.jsonl", false),
    ];
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| file (test) | mode | n | 3-way acc | 5-class acc | pearson r | theme micro-F1 |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for (file, split) in files {
        let mut records = load(&dir.join(file))?;
        if split {
            records.retain(|r| Split::Test.keeps(&r.id));
        }
        let taxonomy = if file.starts_with("themes/") {
            Taxonomy::restaurants()
        } else {
            Taxonomy::default_small_business()
        };
        let mut variants: Vec<(String, Analyzer)> = Vec::new();
        for mode in Mode::ALL {
            let a = Analyzer::build_with_heads(
                mode,
                taxonomy.clone(),
                Some(shared.clone()),
                heads.clone(),
            )?;
            if file.starts_with("themes/") && mode.needs_encoder() {
                variants.push((
                    format!("{mode}+category-head"),
                    a.clone().with_category_head()?,
                ));
            }
            variants.push((mode.to_string(), a));
        }
        for (name, a) in variants {
            let r = eval::evaluate(&a, &records, |_| {})?;
            let s = r.sentiment.as_ref();
            let cell = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.4}"));
            writeln!(
                out,
                "| {file} | {name} | {} | {} | {} | {} | {} |",
                r.n,
                cell(s.map(|s| s.accuracy)),
                cell(s.and_then(|s| s.five_class_accuracy)),
                cell(r.pearson_r),
                cell(r.themes.as_ref().map(|t| t.micro_f1)),
            )?;
            rows.push(json!({"file": file, "mode": name, "n": r.n,
                "accuracy": s.map(|s| s.accuracy), "macro_f1": s.map(|s| s.macro_f1),
                "five_class_accuracy": s.and_then(|s| s.five_class_accuracy),
                "pearson_r": r.pearson_r, "theme_micro_f1": r.themes.as_ref().map(|t| t.micro_f1)}));
        }
    }
    Ok(rows)
}
