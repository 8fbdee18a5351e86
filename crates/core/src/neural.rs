//! The neural tier's pure half: the sentence-encoder port and the small trained heads
//! that turn an embedding (plus, in hybrid mode, the four VADER scores) into sentiment.
//!
//! The encoder itself (its forward pass, the tokenizer, the weights) lives in
//! `feedloop-neural`;
//! core only sees vectors, so it stays free of ML dependencies and tests can pass a fake.

use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::sentiment::{Label, PolarityScores, Sentiment};

/// Turns texts into unit-length sentence embeddings, one per text, in order.
/// Tokens of a text the encoders read (more is cut): one text costs the same in
/// either tier, whatever its length.
pub const MAX_TEXT_TOKENS: usize = 256;
/// Sentences past that window encoded on their own, per text; later ones get no
/// vector (scored without the model, and the result says so), so a text of thousands
/// of one-word lines costs a bounded number of passes.
pub const MAX_SENTENCES_ALONE: usize = 16;

pub trait SentenceEncoder: Send + Sync {
    /// Length of every vector `encode` returns.
    fn dim(&self) -> usize;
    /// Encode all `texts` at once; implementations batch internally.
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError>;

    /// Encode each text and the byte ranges `parts[i]` of text `i` (its sentences).
    /// The default encodes every part as a text of its own; an encoder that can pool a
    /// part from the text's own pass (one pass instead of two) overrides it.
    fn encode_parts(
        &self,
        texts: &[&str],
        parts: &[Vec<Range<usize>>],
    ) -> Result<Vec<PartVectors>, EncodeError> {
        let mut all: Vec<&str> = texts.to_vec();
        for (t, ps) in texts.iter().zip(parts) {
            all.extend(ps.iter().map(|p| t.get(p.clone()).unwrap_or("")));
        }
        let mut vectors = self.encode(&all)?.into_iter();
        let wholes: Vec<Vec<f32>> = vectors.by_ref().take(texts.len()).collect();
        Ok(wholes
            .into_iter()
            .enumerate()
            .map(|(i, whole)| PartVectors {
                whole,
                parts: vectors
                    .by_ref()
                    .take(parts.get(i).map_or(0, Vec::len))
                    .map(Some)
                    .collect(),
            })
            .collect())
    }
}

/// A text's vector and one per requested part of it, in order. `None`: the encoder's
/// per-text budget was spent before this part (see `BertEncoder`); the caller scores
/// it without the model and says so.
#[derive(Debug, Clone, PartialEq)]
pub struct PartVectors {
    pub whole: Vec<f32>,
    pub parts: Vec<Option<Vec<f32>>>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("sentence encoder failed: {0}")]
pub struct EncodeError(pub String);

pub type SharedEncoder = Arc<dyn SentenceEncoder>;

/// The committed heads, trained by `feedloop train` (see the file for provenance).
pub const HEADS_JSON: &str = include_str!("../data/heads.json");

/// A linear classifier over a feature vector: `softmax(W x + b)` or, for multi-label
/// heads, one sigmoid per row. Standardisation is folded into `W` and `b` at training.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinearHead {
    pub classes: Vec<String>,
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
}

impl LinearHead {
    pub fn logits(&self, x: &[f32]) -> Vec<f64> {
        self.weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| {
                let dot: f64 = w
                    .iter()
                    .zip(x)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                dot + f64::from(*b)
            })
            .collect()
    }

    pub fn softmax(&self, x: &[f32]) -> Vec<f64> {
        softmax(&self.logits(x))
    }

    pub fn sigmoid(&self, x: &[f32]) -> Vec<f64> {
        self.logits(x)
            .into_iter()
            .map(|z| 1.0 / (1.0 + (-z).exp()))
            .collect()
    }

    fn check(&self, name: &str, dim: usize) -> Result<(), HeadsError> {
        let bad = self.weights.len() != self.classes.len()
            || self.bias.len() != self.classes.len()
            || self.weights.iter().any(|w| w.len() != dim);
        if bad {
            return Err(HeadsError::Shape {
                head: name.to_owned(),
                dim,
            });
        }
        Ok(())
    }
}

pub fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Heads for one feature set (embedding only, or embedding + VADER scores).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentimentHeads {
    /// negative / neutral / positive.
    pub three_class: LinearHead,
    /// SST's five classes, very negative .. very positive.
    pub five_class: LinearHead,
    /// Added to p(neutral) before taking the most likely class: how wide the neutral
    /// band is. Chosen on sst5_dev.
    pub neutral_bias: f64,
    /// Linear regression onto human valence / 4 (VADER's -4..4 ratings): the size of
    /// the compound score, inside the range the label allows.
    pub valence: LinearHead,
}

/// Everything `feedloop train` produces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heads {
    /// How the file was made: command, input hashes, the eval table it produced.
    pub provenance: serde_json::Value,
    /// sha256 of the encoder weights the heads were trained on.
    pub model_sha256: String,
    pub embedding_dim: usize,
    pub neural: SentimentHeads,
    pub hybrid: SentimentHeads,
    /// Multi-label head for SemEval-2014's restaurant categories, over the embedding
    /// plus one 0/1 feature per category: did the restaurant taxonomy's phrases match.
    pub restaurant_categories: LinearHead,
    /// Per-category decision thresholds for `restaurant_categories`, chosen on train.
    pub restaurant_thresholds: Vec<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum HeadsError {
    #[error("heads file is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("head {head:?} does not fit {dim}-dimensional features")]
    Shape { head: String, dim: usize },
    #[error(
        "the heads were trained on {trained}-dimensional embeddings, the encoder gives {encoder}"
    )]
    Dim { trained: usize, encoder: usize },
}

impl Heads {
    pub fn parse(src: &str) -> Result<Heads, HeadsError> {
        let h: Heads = serde_json::from_str(src)?;
        let d = h.embedding_dim;
        h.neural.three_class.check("neural.three_class", d)?;
        h.neural.five_class.check("neural.five_class", d)?;
        h.neural.valence.check("neural.valence", d)?;
        h.hybrid.valence.check("hybrid.valence", d + HYBRID_EXTRA)?;
        h.hybrid
            .three_class
            .check("hybrid.three_class", d + HYBRID_EXTRA)?;
        h.hybrid
            .five_class
            .check("hybrid.five_class", d + HYBRID_EXTRA)?;
        let n = h.restaurant_categories.classes.len();
        h.restaurant_categories
            .check("restaurant_categories", d + n)?;
        if h.restaurant_thresholds.len() != h.restaurant_categories.classes.len() {
            return Err(HeadsError::Shape {
                head: "restaurant_thresholds".into(),
                dim: d,
            });
        }
        Ok(h)
    }

    /// The heads shipped with feedloop.
    pub fn shipped() -> Result<Heads, HeadsError> {
        Heads::parse(HEADS_JSON)
    }
}

/// The committed heads of the multilingual tier (see the file for provenance).
pub const MULTILINGUAL_HEADS_JSON: &str = include_str!("../data/heads_multilingual.json");

/// One language's sentiment head over the multilingual encoder's embedding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LanguageHead {
    /// negative / neutral / positive.
    pub three_class: LinearHead,
    /// Added to p(neutral) before taking the most likely class (chosen on val).
    pub neutral_bias: f64,
}

impl LanguageHead {
    /// The label from the head; the compound's size is p(positive) − p(negative), kept
    /// inside the band the label allows (no valence ratings exist for these languages).
    pub fn sentiment(&self, embedding: &[f32]) -> Sentiment {
        let p = self.three_class.softmax(embedding);
        let label = label_of(&p, self.neutral_bias);
        Sentiment {
            compound: calibrated_compound(label, p[2] - p[0]),
            pos: p[2],
            neu: p[1],
            neg: p[0],
            label,
        }
    }
}

/// Everything `feedloop train --multilingual` produces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MultilingualHeads {
    pub provenance: serde_json::Value,
    /// sha256 of the multilingual encoder's model file.
    pub model_sha256: String,
    pub embedding_dim: usize,
    /// ISO 639-1 code -> head. A language without one is not scored.
    pub languages: std::collections::BTreeMap<String, LanguageHead>,
}

impl MultilingualHeads {
    pub fn parse(src: &str) -> Result<MultilingualHeads, HeadsError> {
        let h: MultilingualHeads = serde_json::from_str(src)?;
        for (lang, head) in &h.languages {
            head.three_class
                .check(&format!("languages.{lang}.three_class"), h.embedding_dim)?;
            if head.three_class.classes != ["negative", "neutral", "positive"] {
                return Err(HeadsError::Shape {
                    head: format!("languages.{lang}.three_class"),
                    dim: h.embedding_dim,
                });
            }
        }
        Ok(h)
    }

    pub fn shipped() -> Result<MultilingualHeads, HeadsError> {
        MultilingualHeads::parse(MULTILINGUAL_HEADS_JSON)
    }

    pub fn head(&self, language: &str) -> Option<&LanguageHead> {
        self.languages.get(language)
    }
}

/// Features hybrid mode appends to the embedding: VADER's pos, neu, neg and compound.
pub const HYBRID_EXTRA: usize = 4;

pub fn hybrid_features(embedding: &[f32], vader: &PolarityScores) -> Vec<f32> {
    let mut x = Vec::with_capacity(embedding.len() + HYBRID_EXTRA);
    x.extend_from_slice(embedding);
    x.extend([vader.pos, vader.neu, vader.neg, vader.compound].map(|v| v as f32));
    x
}

/// The label: the most likely class after adding `neutral_bias` to p(neutral).
pub fn label_of(p: &[f64], neutral_bias: f64) -> Label {
    let (neg, neu, pos) = (p[0], p[1], p[2]);
    if neu + neutral_bias >= neg.max(pos) {
        Label::Neutral
    } else if pos >= neg {
        Label::Positive
    } else {
        Label::Negative
    }
}

/// A compound in -1..1 whose VADER thresholds (±0.05, used by every report) give back
/// `label`, and whose size is the predicted valence: neutral texts land strictly inside
/// the band, the others in 0.05..=1 on their side.
pub fn calibrated_compound(label: Label, valence: f64) -> f64 {
    let v = if valence.is_finite() { valence } else { 0.0 };
    match label {
        Label::Neutral => v.clamp(-0.0499, 0.0499),
        Label::Positive => v.clamp(0.05, 1.0),
        Label::Negative => v.clamp(-1.0, -0.05),
    }
}

impl SentimentHeads {
    pub fn sentiment(&self, features: &[f32]) -> Sentiment {
        let p = self.three_class.softmax(features);
        let (neg, neu, pos) = (p[0], p[1], p[2]);
        let label = label_of(&p, self.neutral_bias);
        let valence = self.valence.logits(features)[0];
        Sentiment {
            compound: calibrated_compound(label, valence),
            pos,
            neu,
            neg,
            label,
        }
    }

    /// SST-style class, 1 (very negative) ..= 5 (very positive).
    pub fn stars(&self, features: &[f32]) -> u8 {
        argmax(&self.five_class.softmax(features)) as u8 + 1
    }
}

pub fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, x)| {
            if *x > bv {
                (i, *x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// Category-head features: the embedding, then 1.0 for each class whose taxonomy
/// phrases matched the sentence.
pub fn category_features(embedding: &[f32], classes: &[String], phrase_hits: &[&str]) -> Vec<f32> {
    let mut x = Vec::with_capacity(embedding.len() + classes.len());
    x.extend_from_slice(embedding);
    x.extend(classes.iter().map(|c| {
        if phrase_hits.contains(&c.as_str()) {
            1.0
        } else {
            0.0
        }
    }));
    x
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compound_gives_back_the_label_and_follows_the_margin() {
        for (p, bias) in [
            ([0.2, 0.5, 0.3], 0.0),
            ([0.45, 0.1, 0.45], 0.4),
            ([0.6, 0.3, 0.1], 0.0),
            ([0.05, 0.15, 0.8], 0.1),
        ] {
            let label = label_of(&p, bias);
            let c = calibrated_compound(label, p[2] - p[0] - 0.3);
            assert_eq!(Label::from_compound(c), label, "{p:?}");
            assert!((-1.0..=1.0).contains(&c));
        }
        assert_eq!(calibrated_compound(Label::Positive, 1.7), 1.0);
        assert_eq!(calibrated_compound(Label::Positive, -0.3), 0.05);
        assert_eq!(calibrated_compound(Label::Negative, -1.0), -1.0);
        assert_eq!(calibrated_compound(Label::Neutral, 0.4), 0.0499);
        assert_eq!(calibrated_compound(Label::Neutral, f64::NAN), 0.0);
        assert!(
            calibrated_compound(Label::Positive, 0.2) < calibrated_compound(Label::Positive, 0.7)
        );
    }

    #[test]
    fn the_shipped_heads_parse_and_fit_the_encoder() {
        let h = Heads::shipped().unwrap();
        assert_eq!(h.embedding_dim, 384);
        assert_eq!(
            h.neural.three_class.classes,
            ["negative", "neutral", "positive"]
        );
        assert!((-1.0..1.0).contains(&h.neural.neutral_bias));
    }

    #[test]
    fn a_head_of_the_wrong_shape_is_refused() {
        let mut v: serde_json::Value = serde_json::from_str(HEADS_JSON).unwrap();
        v["neural"]["three_class"]["weights"][0]
            .as_array_mut()
            .unwrap()
            .pop();
        let err = Heads::parse(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("neural.three_class"), "{err}");
    }
}
