//! The training rows: every text a report is computed on is held out, and the
//! three-class rows come from every train source without it.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Result;
use feedloop_core::eval::{Record, Split};
use serde_json::json;

use super::{class3, load, norm, sha256_file, EvalFiles};

/// The three-class training rows, with what they came from for the provenance.
pub(super) struct TrainRows {
    pub texts: Vec<String>,
    pub y: Vec<u32>,
    /// The human valence (0..=4) where the source has one.
    pub valence: Vec<Option<f64>>,
    /// Rows left out because their text is in a dev or test file.
    pub dropped: usize,
    pub inputs: Vec<serde_json::Value>,
    /// Normalised texts taken (or, for SemEval, looked at) so far: one copy each.
    seen: HashSet<String>,
}

impl TrainRows {
    fn push(&mut self, r: &Record, class: u32) {
        self.texts.push(r.text.clone());
        self.y.push(class);
        self.valence.push(r.gold.valence);
    }
}

/// The sentiment files without their own splits: 70% train by id hash.
const SPLIT_BY_ID: [&str; 5] = [
    "uci_amazon",
    "uci_imdb",
    "uci_yelp",
    "vader_amazon_snippets",
    "vader_movie_snippets",
];

/// Every text any report is computed on: never trained on.
pub(super) fn held_out(files: &EvalFiles) -> Result<HashSet<String>> {
    let mut held_out: HashSet<String> = HashSet::new();
    for f in ["sst5_dev", "sst5_test"] {
        held_out.extend(load(&files.sentiment(f))?.iter().map(|r| norm(&r.text)));
    }
    for f in SPLIT_BY_ID {
        let records = load(&files.sentiment(f))?;
        let test = records.iter().filter(|r| Split::Test.keeps(&r.id));
        held_out.extend(test.map(|r| norm(&r.text)));
    }
    let semeval_test = load(&files.themes("semeval14_restaurants_test"))?;
    held_out.extend(semeval_test.iter().map(|r| norm(&r.text)));
    Ok(held_out)
}

/// Three-class rows from every train source, then the SemEval restaurant sentences
/// whose aspects all share one polarity.
pub(super) fn three_class(files: &EvalFiles, held_out: &HashSet<String>) -> Result<TrainRows> {
    let mut rows = TrainRows {
        texts: Vec::new(),
        y: Vec::new(),
        valence: Vec::new(),
        dropped: 0,
        inputs: Vec::new(),
        seen: HashSet::new(),
    };
    // SST's own train file first: the movie snippets repeat its sentences.
    let sources: Vec<(&str, PathBuf, bool)> = [
        ("sst5_train", false),
        ("vader_movie_snippets", true),
        ("uci_amazon", true),
        ("uci_imdb", true),
        ("uci_yelp", true),
        ("vader_amazon_snippets", true),
    ]
    .into_iter()
    .map(|(name, split)| (name, files.sentiment(name), split))
    .collect();
    for (name, path, split) in &sources {
        let used = sentiment_source(&mut rows, &load(path)?, *split, held_out);
        rows.inputs.push(
            json!({"file": format!("sentiment/{name}.jsonl"), "sha256": sha256_file(path)?,
            "split": if *split { "train (70% by id hash)" } else { "file" }, "rows_used": used}),
        );
    }
    let semeval_path = files.themes("semeval14_restaurants_train");
    let used = semeval_source(&mut rows, &load(&semeval_path)?, held_out);
    rows.inputs.push(json!({"file": "themes/semeval14_restaurants_train.jsonl",
        "sha256": sha256_file(&semeval_path)?,
        "split": "file (sentiment: sentences whose aspects agree; categories: all)", "rows_used": used}));
    eprintln!(
        "three-class training rows: {} ({} dropped: their text is in a dev or test file)",
        rows.texts.len(),
        rows.dropped
    );
    Ok(rows)
}

/// A labelled sentiment file's rows (its train part when `split`); how many were used.
fn sentiment_source(
    rows: &mut TrainRows,
    records: &[Record],
    split: bool,
    held_out: &HashSet<String>,
) -> usize {
    let mut used = 0;
    for r in records
        .iter()
        .filter(|r| !split || Split::Train.keeps(&r.id))
    {
        let Some(c) = r.gold.sentiment.as_deref().and_then(class3) else {
            continue;
        };
        let key = norm(&r.text);
        if held_out.contains(&key) {
            rows.dropped += 1;
            continue;
        }
        if rows.seen.insert(key) {
            rows.push(r, c);
            used += 1;
        }
    }
    used
}

/// SemEval sentences whose aspects agree. A sentence is marked seen before the
/// held-out check, so a repeat of a held-out sentence counts as dropped once.
fn semeval_source(rows: &mut TrainRows, records: &[Record], held_out: &HashSet<String>) -> usize {
    let mut used = 0;
    for r in records {
        let Some(polarity) = agreed_polarity(r) else {
            continue;
        };
        let fresh = rows.seen.insert(norm(&r.text));
        let (Some(c), true) = (class3(polarity), fresh) else {
            continue;
        };
        if held_out.contains(&norm(&r.text)) {
            rows.dropped += 1;
            continue;
        }
        rows.push(r, c);
        used += 1;
    }
    used
}

/// The polarity every (non-conflict) aspect of a sentence has, if they agree.
fn agreed_polarity(r: &Record) -> Option<&str> {
    let mut polarities = r
        .gold
        .aspects
        .iter()
        .flatten()
        .map(|a| a.polarity.as_str())
        .filter(|p| *p != "conflict");
    let first = polarities.next()?;
    polarities.all(|p| p == first).then_some(first)
}
