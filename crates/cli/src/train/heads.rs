//! Fitting the heads and choosing their settings on held-out rows: the sentiment heads
//! (three-class with its neutral band, five-class, valence) for the neural and hybrid
//! modes, and the restaurant category head with its thresholds.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use feedloop_core::eval::{self, Record, Split};
use feedloop_core::neural::{
    category_features, cosine, LinearHead, SentenceEncoder, SentimentHeads,
};
use feedloop_core::text;
use feedloop_core::themes::Taxonomy;
use feedloop_neural::select::{
    accuracy, choose_l2, class_thresholds, neutral_band, similarity_threshold,
};
use feedloop_neural::train::{fit_linear, fit_multilabel, fit_softmax};
use feedloop_neural::BertEncoder;
use serde_json::json;

use super::rows::TrainRows;
use super::{
    class3, features, load, settings, sha256_file, Embedder, EvalFiles, Features, L2_GRID, THREE,
};

pub(super) struct SentimentFit {
    pub neural: SentimentHeads,
    pub hybrid: SentimentHeads,
    pub neural_report: serde_json::Value,
    pub hybrid_report: serde_json::Value,
}

/// The five-class label of a record: its stars, 1..=5, as 0..=4.
fn stars(r: &Record) -> u32 {
    u32::from(r.gold.stars5.unwrap_or(3).clamp(1, 5)) - 1
}

/// Both modes' sentiment heads: three-class on every train row, five-class on SST
/// train, every setting chosen on SST dev (which is added to the inputs).
pub(super) fn sentiment(
    files: &EvalFiles,
    embedder: &Embedder,
    rows: &mut TrainRows,
) -> Result<SentimentFit> {
    let refs3: Vec<&str> = rows.texts.iter().map(String::as_str).collect();
    let f3 = features(&refs3, embedder.embed("sentiment3", &refs3)?);
    let sst_train = load(&files.sentiment("sst5_train"))?;
    let refs5: Vec<&str> = sst_train.iter().map(|r| r.text.as_str()).collect();
    let y5: Vec<u32> = sst_train.iter().map(stars).collect();
    let f5 = features(&refs5, embedder.embed("sst5_train", &refs5)?);
    let dev = load(&files.sentiment("sst5_dev"))?;
    let dev_refs: Vec<&str> = dev.iter().map(|r| r.text.as_str()).collect();
    let dev_y3: Vec<u32> = dev
        .iter()
        .map(|r| r.gold.sentiment.as_deref().and_then(class3).unwrap_or(1))
        .collect();
    let dev_y5: Vec<u32> = dev.iter().map(stars).collect();
    let fdev = features(&dev_refs, embedder.embed("sst5_dev", &dev_refs)?);
    rows.inputs.push(
        json!({"file": "sentiment/sst5_dev.jsonl", "sha256": sha256_file(&files.sentiment("sst5_dev"))?,
        "split": "file (choosing settings only)", "rows_used": dev.len()}),
    );
    let valence: Vec<(usize, f32)> = rows
        .valence
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, (v / 4.0) as f32)))
        .collect();
    let data = |pick: fn(&Features) -> &Vec<Vec<f32>>| SentimentData {
        valence: &valence,
        x: pick(&f3),
        y3: &rows.y,
        x5: pick(&f5),
        y5: &y5,
        dev_x: pick(&fdev),
        dev_y3: &dev_y3,
        dev_y5: &dev_y5,
    };
    let (neural, neural_report) = fit_sentiment("neural", data(|f| &f.neural))?;
    let (hybrid, hybrid_report) = fit_sentiment("hybrid", data(|f| &f.hybrid))?;
    Ok(SentimentFit {
        neural,
        hybrid,
        neural_report,
        hybrid_report,
    })
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
    let three = choose_l2(&L2_GRID, |l2| {
        let head = fit_softmax(d.x, d.y3, &classes3, settings(l2))?;
        let (band, acc) = neutral_band(&head, d.dev_x, d.dev_y3);
        eprintln!("{name} 3-class l2 {l2:e}: dev accuracy {acc:.4} (neutral bias {band:+.2})");
        anyhow::Ok(((head, band), acc))
    })?;
    let five = choose_l2(&L2_GRID, |l2| {
        let head = fit_softmax(d.x5, d.y5, &classes5, settings(l2))?;
        let acc = accuracy(&head, d.dev_x, d.dev_y5);
        eprintln!("{name} 5-class l2 {l2:e}: dev accuracy {acc:.4}");
        anyhow::Ok((head, acc))
    })?;
    let vx: Vec<Vec<f32>> = d.valence.iter().map(|(i, _)| d.x[*i].clone()).collect();
    let vy: Vec<f32> = d.valence.iter().map(|(_, v)| *v).collect();
    let dev_stars: Vec<f64> = d.dev_y5.iter().map(|s| f64::from(*s)).collect();
    let valence = choose_l2(&L2_GRID, |l2| {
        let head = fit_linear(&vx, &vy, "valence", settings(l2))?;
        let pred: Vec<f64> = d.dev_x.iter().map(|r| head.logits(r)[0]).collect();
        let r = eval::pearson(&pred, &dev_stars).unwrap_or(0.0);
        eprintln!("{name} valence l2 {l2:e}: dev r with SST stars {r:.4}");
        anyhow::Ok((head, r))
    })?;
    let (Some(three), Some(five), Some(valence)) = (three, five, valence) else {
        bail!("empty settings grid");
    };
    let (three_head, band) = three.fitted;
    let report = json!({
        "valence": {"l2": valence.l2, "rows": vy.len(), "dev_pearson_r_with_stars5": valence.score, "dev_grid": valence.grid},
        "three_class": {"l2": three.l2, "neutral_bias": band, "dev_accuracy": three.score, "dev_grid": three.grid},
        "five_class": {"l2": five.l2, "dev_accuracy": five.score, "dev_grid": five.grid},
    });
    Ok((
        SentimentHeads {
            three_class: three_head,
            five_class: five.fitted,
            neutral_bias: band,
            valence: valence.fitted,
        },
        report,
    ))
}

pub(super) struct CategoryFit {
    pub head: LinearHead,
    pub thresholds: Vec<f64>,
    pub report: serde_json::Value,
    pub similarity: BTreeMap<String, serde_json::Value>,
}

/// Restaurant categories: settings and thresholds on a held-out 30% of SemEval train,
/// then refit on all of it; and the similarity thresholds of the taxonomy's exemplars.
pub(super) fn categories(files: &EvalFiles, embedder: &Embedder) -> Result<CategoryFit> {
    let semeval = load(&files.themes("semeval14_restaurants_train"))?;
    let classes: Vec<String> = semeval
        .iter()
        .flat_map(|r| r.gold.themes.clone().unwrap_or_default())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
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
    let chosen = choose_l2(&L2_GRID, |l2| {
        let head = fit_multilabel(
            &fit_x,
            &theme_sets(&fit_r, &classes),
            &classes,
            settings(l2),
        )?;
        let (t, f) = class_thresholds(&head, &hold_x, &theme_sets(&hold_r, &classes));
        eprintln!("categories l2 {l2:e}: held-out micro-F1 {f:.4}");
        anyhow::Ok((t, f))
    })?;
    let Some(chosen) = chosen else {
        bail!("empty settings grid");
    };
    let head = fit_multilabel(
        &sem_x,
        &theme_sets(&all, &classes),
        &classes,
        settings(chosen.l2),
    )?;
    Ok(CategoryFit {
        head,
        thresholds: chosen.fitted,
        report: json!({"l2": chosen.l2, "held_out_micro_f1": chosen.score, "grid": chosen.grid,
            "thresholds": "per class, best F1 on the held-out 30% of train"}),
        similarity: calibrate_similarity(&restaurants, embedder.encoder, &all, &sem_emb)?,
    })
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
        let (threshold, f1, phrases_only) = similarity_threshold(&rows);
        eprintln!(
            "similarity {}: threshold {:.2}, train F1 {:.4} (phrases alone {:.4})",
            theme.id, threshold, f1, phrases_only
        );
        out.insert(
            theme.id.clone(),
            json!({"threshold": threshold, "train_f1": f1, "phrases_only_train_f1": phrases_only}),
        );
    }
    Ok(out)
}
