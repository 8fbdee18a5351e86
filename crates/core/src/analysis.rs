//! The analysis of one feedback: language, sentiment (whole text and per sentence),
//! themes with their sentence's sentiment, NPS category and a PII-free excerpt.
//!
//! In the neural modes every text of a call is encoded together: whole texts, their
//! sentences, in one [`SentenceEncoder::encode`] call (an SQS batch is one call).
//!
//! Long because the analyzer's modes (reference, lexicon, neural, hybrid) share one
//! batching path; about a third of the file is its tests.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::envelope::Feedback;
use crate::language::{self, Language};
use crate::neural::{
    hybrid_features, EncodeError, Heads, HeadsError, LanguageHead, LinearHead, MultilingualHeads,
    SentenceEncoder, SentimentHeads, SharedEncoder,
};
use crate::nps::NpsCategory;
use crate::pii;
use crate::sentiment::{Mode, Scorer, Sentiment};
use crate::text::{self, Span};
use crate::themes::{Taxonomy, ThemeHit};

mod builders;
mod themes_found;
use themes_found::head_themes;

/// Characters of (redacted) text kept on profiles and feedback items.
pub const EXCERPT_CHARS: usize = 280;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceScore {
    pub text: String,
    pub compound: f64,
}

/// How a theme was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThemeSource {
    /// A taxonomy phrase matched (or the fallback theme, with an empty phrase).
    #[default]
    Phrase,
    /// The sentence's embedding is close to one of the theme's exemplars.
    Similarity,
    /// The trained category head (restaurant categories).
    Head,
}

/// A theme found in the text, with the sentence it was found in and that sentence's
/// sentiment: the aspect sentiment the driver analysis uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThemeMention {
    pub theme: String,
    pub label: String,
    pub phrase: String,
    pub sentence: String,
    pub sentence_index: usize,
    pub sentiment: Option<f64>,
    #[serde(default)]
    pub source: ThemeSource,
    /// Cosine similarity (similarity) or probability (head); none for phrases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextAnalysis {
    pub language: Language,
    /// None when the text is empty or not English (see `skipped`).
    pub sentiment: Option<Sentiment>,
    pub skipped: Option<String>,
    pub sentences: Vec<SentenceScore>,
    pub themes: Vec<ThemeMention>,
    /// SST-style class 1 (very negative) ..= 5 (very positive): the five-class head in
    /// the neural modes, fixed compound bins otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stars: Option<u8>,
    /// Set when a long text reached the per-text limits: how many sentences were
    /// scored without the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyzedFeedback {
    pub feedback: Feedback,
    pub analysis: TextAnalysis,
    pub nps_category: Option<NpsCategory>,
    /// The text with e-mails, phones and card numbers replaced, cut to [`EXCERPT_CHARS`].
    pub excerpt: String,
}

impl AnalyzedFeedback {
    pub fn compound(&self) -> Option<f64> {
        self.analysis.sentiment.map(|s| s.compound)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error(
        "{0} mode needs the sentence encoder (the neural model): install it with `make model` \
         or choose --mode lexicon"
    )]
    NeedsEncoder(Mode),
    #[error(transparent)]
    Heads(#[from] HeadsError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("the category head predicts {head:?}, which taxonomy {taxonomy:?} does not define")]
    CategoriesNotInTaxonomy { head: String, taxonomy: String },
}

/// Lexicon-mode 1..=5 bins on the compound score, for files graded in five classes.
pub fn stars_from_compound(c: f64) -> u8 {
    match c {
        c if c <= -0.5 => 1,
        c if c < -0.05 => 2,
        c if c <= 0.05 => 3,
        c if c < 0.5 => 4,
        _ => 5,
    }
}

struct ThemeExemplars {
    theme: usize,
    vectors: Vec<Vec<f32>>,
    threshold: f64,
}

struct Neural {
    encoder: SharedEncoder,
    heads: SentimentHeads,
    hybrid: bool,
    exemplars: Vec<ThemeExemplars>,
    /// The restaurant-category head and its per-class thresholds.
    categories: (LinearHead, Vec<f64>),
    /// Themes come from `categories` instead of phrases and exemplars.
    themes_from_head: bool,
}

/// The tier for every language but English: its own encoder, a head per language and
/// the taxonomy's exemplars embedded by that encoder (they match across languages).
struct Multilingual {
    encoder: SharedEncoder,
    heads: MultilingualHeads,
    exemplars: Vec<ThemeExemplars>,
}

/// Everything needed to analyse feedback; build once, share freely.
#[derive(Clone)]
pub struct Analyzer {
    mode: Mode,
    scorer: Scorer,
    taxonomy: Taxonomy,
    neural: Option<Arc<Neural>>,
    multilingual: Option<Arc<Multilingual>>,
}

/// One text on its way through [`Analyzer::analyze_texts`].
struct Prepared<'a> {
    text: &'a str,
    language: Language,
    spans: Vec<Span>,
    hits: Vec<ThemeHit>,
    skipped: Option<String>,
    /// Scored by the multilingual tier (a language other than English with a head).
    multilingual: bool,
    /// Index of the whole text's embedding, then of each sentence's.
    /// The text's vector and each sentence's (`None`: past the encoder's budget).
    slots: Option<(usize, Vec<Option<usize>>)>,
}

impl Analyzer {
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    pub fn analyze_text(&self, text: &str) -> Result<TextAnalysis, AnalyzerError> {
        let mut v = self.analyze_texts(&[text])?;
        Ok(v.remove(0))
    }

    /// Analyse many texts; in the neural modes they share one encoder call.
    pub fn analyze_texts(&self, texts: &[&str]) -> Result<Vec<TextAnalysis>, AnalyzerError> {
        let mut prepared: Vec<Prepared> = texts
            .iter()
            .map(|&text| {
                let language = language::detect(text);
                let spans = text::sentences(text);
                let hits = self.taxonomy.find_in(text, &spans, &language.code);
                let multilingual = !language.is_english()
                    && self
                        .multilingual
                        .as_ref()
                        .is_some_and(|m| m.heads.head(&language.code).is_some());
                let skipped = if text.trim().is_empty() {
                    Some("empty text".to_owned())
                } else if !language.is_english() && !multilingual {
                    Some(format!("unsupported language: {}", language.code))
                } else {
                    None
                };
                Prepared {
                    text,
                    language,
                    spans,
                    hits,
                    skipped,
                    multilingual,
                    slots: None,
                }
            })
            .collect();
        let mut embeddings = Vec::new();
        if let Some(n) = &self.neural {
            let english = |p: &Prepared| p.skipped.is_none() && !p.multilingual;
            encode_into(n.encoder.as_ref(), &mut prepared, english, &mut embeddings)?;
        }
        if let Some(m) = &self.multilingual {
            let other = |p: &Prepared| p.skipped.is_none() && p.multilingual;
            encode_into(m.encoder.as_ref(), &mut prepared, other, &mut embeddings)?;
        }
        Ok(prepared
            .into_iter()
            .map(|p| self.finish(p, &embeddings))
            .collect())
    }

    fn score(
        &self,
        text: &str,
        language: Option<&LanguageHead>,
        embedding: Option<&[f32]>,
    ) -> (Sentiment, Option<u8>) {
        if let Some(head) = language {
            // Never the English scorer for another language: no vector, no opinion.
            let s = embedding.map_or_else(Sentiment::neutral, |e| head.sentiment(e));
            return (s, Some(stars_from_compound(s.compound)));
        }
        match (&self.neural, embedding) {
            (Some(n), Some(e)) => {
                let features;
                let x = if n.hybrid {
                    features = hybrid_features(e, &self.scorer.scores(text));
                    features.as_slice()
                } else {
                    e
                };
                (n.heads.sentiment(x), Some(n.heads.stars(x)))
            }
            _ => {
                let s = self.scorer.sentiment(text);
                (s, Some(stars_from_compound(s.compound)))
            }
        }
    }

    fn finish(&self, p: Prepared, embeddings: &[Vec<f32>]) -> TextAnalysis {
        let language_head = self
            .multilingual
            .as_deref()
            .filter(|_| p.multilingual)
            .and_then(|m| m.heads.head(&p.language.code));
        let note = beyond_budget_note(&p, language_head.is_some());
        let (sentiment, stars, sentence_scores) = if p.skipped.is_some() {
            (None, None, Vec::new())
        } else {
            self.sentiments(&p, language_head, embeddings)
        };
        let sentence_vectors: Vec<Option<&[f32]>> = match &p.slots {
            Some((_, s)) => s
                .iter()
                .map(|j| j.and_then(|i| embeddings.get(i)).map(Vec::as_slice))
                .collect(),
            None => Vec::new(),
        };
        let found = match self.neural.as_deref().filter(|_| !p.multilingual) {
            Some(Neural {
                categories: (head, thresholds),
                themes_from_head: true,
                ..
            }) => head_themes(&p, head, thresholds, &sentence_vectors),
            _ => self.matched_themes(&p, &sentence_vectors),
        };
        let themes = found
            .into_iter()
            .map(|f| self.mention(&p, &sentence_scores, f))
            .collect();
        TextAnalysis {
            language: p.language,
            sentiment,
            skipped: p.skipped,
            sentences: sentence_scores,
            themes,
            stars,
            note,
        }
    }

    /// The whole text's sentiment and stars, and each sentence's compound.
    fn sentiments(
        &self,
        p: &Prepared,
        language_head: Option<&LanguageHead>,
        embeddings: &[Vec<f32>],
    ) -> (Option<Sentiment>, Option<u8>, Vec<SentenceScore>) {
        let emb = |i: usize| embeddings.get(i).map(Vec::as_slice);
        let (whole, per_sentence) = match &p.slots {
            Some((w, s)) => (Some(*w), s.as_slice()),
            None => (None, [].as_slice()),
        };
        let scores: Vec<SentenceScore> = p
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let vector = per_sentence.get(i).copied().flatten().and_then(emb);
                SentenceScore {
                    text: s.of(p.text).to_owned(),
                    compound: self.score(s.of(p.text), language_head, vector).0.compound,
                }
            })
            .collect();
        let (sentiment, stars) = self.score(p.text, language_head, whole.and_then(emb));
        (Some(sentiment), stars, scores)
    }

    pub fn analyze(&self, feedback: Feedback) -> Result<AnalyzedFeedback, AnalyzerError> {
        let mut v = self.analyze_batch(vec![feedback])?;
        Ok(v.remove(0))
    }

    /// Analyse the feedback of one batch together (one encoder call in neural modes).
    pub fn analyze_batch(
        &self,
        feedback: Vec<Feedback>,
    ) -> Result<Vec<AnalyzedFeedback>, AnalyzerError> {
        let texts: Vec<String> = feedback.iter().map(analysed_text).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let analyses = self.analyze_texts(&refs)?;
        Ok(feedback
            .into_iter()
            .zip(analyses)
            .zip(&texts)
            .map(|((feedback, analysis), text)| AnalyzedFeedback {
                nps_category: feedback.details.nps_score().map(NpsCategory::from_score),
                excerpt: pii::excerpt(text, EXCERPT_CHARS),
                feedback,
                analysis,
            })
            .collect())
    }
}

/// Encode the texts `take` selects, each with its sentences, in one encoder call;
/// append the vectors to `flat` and point each text's slots at them.
fn encode_into(
    encoder: &dyn SentenceEncoder,
    prepared: &mut [Prepared],
    take: impl Fn(&Prepared) -> bool,
    flat: &mut Vec<Vec<f32>>,
) -> Result<(), AnalyzerError> {
    // A one-sentence text is its own sentence: only longer texts have parts.
    let own = |p: &Prepared, s: &Span| s.of(p.text).trim() == p.text.trim();
    let mut texts: Vec<&str> = Vec::new();
    let mut parts: Vec<Vec<std::ops::Range<usize>>> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    for (k, p) in prepared.iter().enumerate() {
        if take(p) {
            texts.push(p.text);
            parts.push(
                p.spans
                    .iter()
                    .filter(|s| !own(p, s))
                    .map(|s| s.start..s.end)
                    .collect(),
            );
            owners.push(k);
        }
    }
    if texts.is_empty() {
        return Ok(());
    }
    let vectors = encoder.encode_parts(&texts, &parts)?;
    let wrong = vectors.len() != texts.len()
        || vectors
            .iter()
            .zip(&parts)
            .any(|(v, p)| v.parts.len() != p.len());
    if wrong {
        return Err(EncodeError(
            "the encoder returned a different number of vectors than asked".into(),
        )
        .into());
    }
    for (k, v) in owners.into_iter().zip(vectors) {
        let p = &mut prepared[k];
        let whole = flat.len();
        flat.push(v.whole);
        let mut pooled = v.parts.into_iter();
        let mut sentences = Vec::with_capacity(p.spans.len());
        for s in &p.spans {
            if own(p, s) {
                sentences.push(Some(whole));
            } else if let Some(v) = pooled.next().flatten() {
                flat.push(v);
                sentences.push(Some(flat.len() - 1));
            } else {
                sentences.push(None);
            }
        }
        p.slots = Some((whole, sentences));
    }
    Ok(())
}

/// What a result says when the encoder's per-text budget left sentences without a
/// vector of their own (thousands of lines): the count, and how they were scored.
fn beyond_budget_note(p: &Prepared, language_head: bool) -> Option<String> {
    let (_, per_sentence) = p.slots.as_ref()?;
    let without = per_sentence.iter().filter(|s| s.is_none()).count();
    (without > 0).then(|| {
        let how = if language_head {
            "left neutral (no lexicon for this language)"
        } else {
            "scored by the lexicon"
        };
        format!(
            "long text: {without} of {} sentences past the model's per-text limit ({} tokens, {} more sentences) {how}",
            per_sentence.len(),
            crate::neural::MAX_TEXT_TOKENS,
            crate::neural::MAX_SENTENCES_ALONE,
        )
    })
}

/// The text to analyse: a ticket's subject stands in for an empty body, since it is
/// often the only statement of the problem.
fn analysed_text(feedback: &Feedback) -> String {
    if let crate::envelope::Details::Ticket {
        subject: Some(subject),
        ..
    } = &feedback.details
    {
        if feedback.text.trim().is_empty() {
            return subject.clone();
        }
    }
    feedback.text.clone()
}

#[cfg(test)]
mod neural_tests;
#[cfg(test)]
mod tests;
