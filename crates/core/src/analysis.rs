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
    category_features, cosine, hybrid_features, EncodeError, Heads, HeadsError, LanguageHead,
    LinearHead, MultilingualHeads, SentenceEncoder, SentimentHeads, SharedEncoder,
};
use crate::nps::NpsCategory;
use crate::pii;
use crate::sentiment::{Mode, Scorer, Sentiment};
use crate::text::{self, Span};
use crate::themes::{Taxonomy, ThemeHit};

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

/// A theme found in a sentence, before it becomes a mention.
struct Found {
    theme: String,
    phrase: String,
    sentence_index: usize,
    source: ThemeSource,
    score: Option<f64>,
}

/// Themes from the category head: each class over its threshold, once per text.
fn head_themes(
    p: &Prepared,
    head: &LinearHead,
    thresholds: &[f64],
    sentence_vectors: &[Option<&[f32]>],
) -> Vec<Found> {
    let mut themes: Vec<Found> = Vec::new();
    for (si, v) in sentence_vectors.iter().enumerate() {
        let Some(v) = v else { continue };
        let hits: Vec<&str> = p
            .hits
            .iter()
            .filter(|h| h.sentence_index == si && !h.phrase.is_empty())
            .map(|h| h.theme.as_str())
            .collect();
        let x = category_features(v, &head.classes, &hits);
        for ((c, prob), t) in head.classes.iter().zip(head.sigmoid(&x)).zip(thresholds) {
            if prob >= *t && !themes.iter().any(|m| &m.theme == c) {
                themes.push(Found {
                    theme: c.clone(),
                    phrase: String::new(),
                    sentence_index: si,
                    source: ThemeSource::Head,
                    score: Some(prob),
                });
            }
        }
    }
    themes
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
    /// An analyzer for the modes that need no encoder (`reference`, `lexicon`).
    ///
    /// # Panics
    /// For `neural` and `hybrid`, which need [`Analyzer::build`] with an encoder.
    pub fn new(mode: Mode, taxonomy: Taxonomy) -> Analyzer {
        assert!(
            !mode.needs_encoder(),
            "{mode} mode needs Analyzer::build with an encoder"
        );
        Analyzer {
            mode,
            scorer: Scorer::new(mode),
            taxonomy,
            neural: None,
            multilingual: None,
        }
    }

    /// An analyzer for any mode. The neural modes need `encoder`; the taxonomy's
    /// phrases and examples are embedded here, once.
    pub fn build(
        mode: Mode,
        taxonomy: Taxonomy,
        encoder: Option<SharedEncoder>,
    ) -> Result<Analyzer, AnalyzerError> {
        if !mode.needs_encoder() {
            return Ok(Analyzer::new(mode, taxonomy));
        }
        Analyzer::build_with_heads(mode, taxonomy, encoder, Heads::shipped()?)
    }

    /// [`Analyzer::build`] with heads other than the shipped ones (training, a user's
    /// own fine-tuned model).
    pub fn build_with_heads(
        mode: Mode,
        taxonomy: Taxonomy,
        encoder: Option<SharedEncoder>,
        heads: Heads,
    ) -> Result<Analyzer, AnalyzerError> {
        if !mode.needs_encoder() {
            return Ok(Analyzer::new(mode, taxonomy));
        }
        let encoder = encoder.ok_or(AnalyzerError::NeedsEncoder(mode))?;
        if heads.embedding_dim != encoder.dim() {
            return Err(HeadsError::Dim {
                trained: heads.embedding_dim,
                encoder: encoder.dim(),
            }
            .into());
        }
        let exemplars = embed_exemplars(&taxonomy, encoder.as_ref(), true, |t| {
            Some(t.similarity_threshold)
        })?;
        let hybrid = mode == Mode::Hybrid;
        Ok(Analyzer {
            mode,
            scorer: Scorer::new(mode),
            taxonomy,
            neural: Some(Arc::new(Neural {
                encoder,
                heads: if hybrid { heads.hybrid } else { heads.neural },
                hybrid,
                exemplars,
                categories: (heads.restaurant_categories, heads.restaurant_thresholds),
                themes_from_head: false,
            })),
            multilingual: None,
        })
    }

    /// Score the languages the shipped multilingual heads cover with `encoder` (the
    /// multilingual encoder) instead of refusing them.
    pub fn with_multilingual(self, encoder: SharedEncoder) -> Result<Analyzer, AnalyzerError> {
        self.with_multilingual_heads(encoder, MultilingualHeads::shipped()?)
    }

    /// [`Analyzer::with_multilingual`] with heads other than the shipped ones.
    pub fn with_multilingual_heads(
        self,
        encoder: SharedEncoder,
        heads: MultilingualHeads,
    ) -> Result<Analyzer, AnalyzerError> {
        if heads.embedding_dim != encoder.dim() {
            return Err(HeadsError::Dim {
                trained: heads.embedding_dim,
                encoder: encoder.dim(),
            }
            .into());
        }
        // Examples only: the phrases are English keywords, which match nothing across
        // languages and were most of the cold start (2.8 s with them, both encoders).
        let exemplars = embed_exemplars(&self.taxonomy, encoder.as_ref(), false, |t| {
            t.multilingual_similarity_threshold
        })?;
        Ok(Analyzer {
            multilingual: Some(Arc::new(Multilingual {
                encoder,
                heads,
                exemplars,
            })),
            ..self
        })
    }

    /// Languages scored besides English (none without the multilingual tier).
    pub fn languages(&self) -> Vec<&str> {
        self.multilingual
            .as_ref()
            .map(|m| m.heads.languages.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Themes from the trained restaurant-category head instead of phrases and
    /// exemplars (neural modes, with a taxonomy that defines those categories).
    pub fn with_category_head(self) -> Result<Analyzer, AnalyzerError> {
        let Some(neural) = &self.neural else {
            return Err(AnalyzerError::NeedsEncoder(self.mode));
        };
        if let Some(missing) = neural
            .categories
            .0
            .classes
            .iter()
            .find(|c| self.taxonomy.label(c).is_none())
        {
            return Err(AnalyzerError::CategoriesNotInTaxonomy {
                head: missing.clone(),
                taxonomy: self.taxonomy.name.clone(),
            });
        }
        let n = Neural {
            encoder: neural.encoder.clone(),
            heads: neural.heads.clone(),
            hybrid: neural.hybrid,
            exemplars: Vec::new(),
            categories: neural.categories.clone(),
            themes_from_head: true,
        };
        Ok(Analyzer {
            neural: Some(Arc::new(n)),
            ..self
        })
    }

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

    /// Themes by phrase, then (with exemplar vectors) by similarity where no phrase
    /// found that theme in that sentence; the fallback theme when nothing matched.
    fn matched_themes(&self, p: &Prepared, sentence_vectors: &[Option<&[f32]>]) -> Vec<Found> {
        let fallback = self.taxonomy.fallback();
        let mut themes: Vec<Found> = p
            .hits
            .iter()
            .filter(|h| !(Some(h.theme.as_str()) == fallback && h.phrase.is_empty()))
            .map(|h| Found {
                theme: h.theme.clone(),
                phrase: h.phrase.clone(),
                sentence_index: h.sentence_index,
                source: ThemeSource::Phrase,
                score: None,
            })
            .collect();
        // The category head reads the English encoder's vectors; another language's
        // sentences match the exemplars its own encoder embedded.
        let exemplars = match (p.multilingual, self.neural.as_deref()) {
            (true, _) => self.multilingual.as_deref().map(|m| m.exemplars.as_slice()),
            (false, n) => n.map(|n| n.exemplars.as_slice()),
        };
        if let Some(exemplars) = exemplars {
            self.similar_themes(exemplars, sentence_vectors, &mut themes);
            themes.sort_by_key(|m| m.sentence_index);
        }
        if themes.is_empty() && !p.spans.is_empty() {
            if let Some(fb) = fallback {
                themes.push(Found {
                    theme: fb.to_owned(),
                    phrase: String::new(),
                    sentence_index: 0,
                    source: ThemeSource::Phrase,
                    score: None,
                });
            }
        }
        themes
    }

    fn similar_themes(
        &self,
        exemplars: &[ThemeExemplars],
        sentence_vectors: &[Option<&[f32]>],
        themes: &mut Vec<Found>,
    ) {
        for (si, v) in sentence_vectors.iter().enumerate() {
            let Some(v) = v else { continue };
            for ex in exemplars {
                let id = &self.taxonomy.themes()[ex.theme].id;
                if themes
                    .iter()
                    .any(|m| &m.theme == id && m.sentence_index == si)
                {
                    continue;
                }
                let best = ex
                    .vectors
                    .iter()
                    .map(|e| cosine(v, e))
                    .fold(f64::MIN, f64::max);
                if best >= ex.threshold {
                    themes.push(Found {
                        theme: id.clone(),
                        phrase: String::new(),
                        sentence_index: si,
                        source: ThemeSource::Similarity,
                        score: Some(best),
                    });
                }
            }
        }
    }

    fn mention(&self, p: &Prepared, sentence_scores: &[SentenceScore], f: Found) -> ThemeMention {
        let si = f.sentence_index;
        let sentence = p.spans.get(si).map(|s| s.of(p.text)).unwrap_or_default();
        ThemeMention {
            label: self.taxonomy.label(&f.theme).unwrap_or(&f.theme).to_owned(),
            theme: f.theme,
            phrase: f.phrase,
            sentence: pii::redact(sentence),
            sentence_index: si,
            sentiment: sentence_scores.get(si).map(|s| s.compound),
            source: f.source,
            score: f.score,
        }
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

/// The exemplars of every theme with examples and a threshold (`threshold` reads it
/// from the theme: each encoder's cosines have their own scale).
fn embed_exemplars(
    taxonomy: &Taxonomy,
    encoder: &dyn SentenceEncoder,
    with_phrases: bool,
    threshold: impl Fn(&crate::themes::Theme) -> Option<f64>,
) -> Result<Vec<ThemeExemplars>, EncodeError> {
    let mut texts: Vec<&str> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    for (ti, t) in taxonomy.themes().iter().enumerate() {
        // Phrases count as exemplars only for themes that opted in with examples:
        // a lone word like "app" is too vague to match sentences by similarity.
        if t.examples.is_empty() || threshold(t).is_none() {
            continue;
        }
        let phrases = if with_phrases {
            &t.phrase_texts[..]
        } else {
            &[]
        };
        for e in t.examples.iter().chain(phrases) {
            texts.push(e);
            owners.push(ti);
        }
    }
    let vectors = encoder.encode(&texts)?;
    let mut out: Vec<ThemeExemplars> = Vec::new();
    for (ti, v) in owners.into_iter().zip(vectors) {
        match out.iter_mut().find(|e| e.theme == ti) {
            Some(e) => e.vectors.push(v),
            None => out.push(ThemeExemplars {
                theme: ti,
                vectors: vec![v],
                threshold: threshold(&taxonomy.themes()[ti]).unwrap_or(f64::INFINITY),
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn themes_carry_their_sentence_sentiment() {
        let a = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
        let r = a
            .analyze_text(
                "The staff were lovely. Delivery took forever and the parcel was damaged!",
            )
            .unwrap();
        let staff = r.themes.iter().find(|t| t.theme == "staff").unwrap();
        let delivery = r.themes.iter().find(|t| t.theme == "delivery").unwrap();
        assert!(staff.sentiment.unwrap() > 0.3);
        assert!(delivery.sentiment.unwrap() < -0.3);
        assert_eq!(delivery.sentence_index, 1);
        assert_eq!(r.sentences.len(), 2);
    }

    #[test]
    fn non_english_gets_no_score_and_a_reason() {
        let a = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
        let r = a
            .analyze_text(
                "Das Paket ist nie angekommen und niemand hat auf meine E-Mails geantwortet.",
            )
            .unwrap();
        assert_eq!(r.sentiment, None);
        assert_eq!(r.skipped.as_deref(), Some("unsupported language: de"));
    }
}

#[cfg(test)]
mod neural_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::neural::{EncodeError, HeadsError, SentenceEncoder};
    use crate::sentiment::Label;

    const DIM: usize = 8;

    /// Axis 0: pleasant words, axis 1: unpleasant ones, axis 2: waiting, axis 7: bias.
    struct FakeEncoder {
        calls: AtomicUsize,
        seen: Mutex<Vec<String>>,
        fail: bool,
    }

    impl FakeEncoder {
        fn new(fail: bool) -> Arc<FakeEncoder> {
            Arc::new(FakeEncoder {
                calls: AtomicUsize::new(0),
                seen: Mutex::new(Vec::new()),
                fail,
            })
        }
    }

    impl SentenceEncoder for FakeEncoder {
        fn dim(&self) -> usize {
            DIM
        }
        fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(EncodeError("out of memory".into()));
            }
            self.seen
                .lock()
                .unwrap()
                .extend(texts.iter().map(|t| t.to_string()));
            Ok(texts
                .iter()
                .map(|t| {
                    let t = t.to_lowercase();
                    let has = |ws: &[&str]| ws.iter().any(|w| t.contains(w)) as u8 as f32;
                    let mut v = vec![0.0; DIM];
                    v[0] = has(&["lovely", "great"]);
                    v[1] = has(&["never arrived", "nobody answered", "late"]);
                    v[2] = has(&["forever", "ages", "wait"]);
                    v[7] = 0.1;
                    v
                })
                .collect())
        }
    }

    fn head(classes: &[&str], weights: Vec<Vec<f32>>, dim: usize) -> LinearHead {
        LinearHead {
            classes: classes.iter().map(|c| c.to_string()).collect(),
            weights: weights
                .into_iter()
                .map(|mut w| {
                    w.resize(dim, 0.0);
                    w
                })
                .collect(),
            bias: vec![0.0; classes.len()],
        }
    }

    fn heads() -> Heads {
        let sentiment = |dim| SentimentHeads {
            three_class: head(
                &["negative", "neutral", "positive"],
                vec![
                    vec![0.0, 6.0],
                    vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0],
                    vec![6.0],
                ],
                dim,
            ),
            five_class: head(
                &["1", "2", "3", "4", "5"],
                vec![vec![0.0, 6.0], vec![], vec![], vec![], vec![6.0]],
                dim,
            ),
            neutral_bias: 0.0,
            valence: head(&["valence"], vec![vec![0.5, -0.5]], dim),
        };
        let categories = [
            "ambience",
            "anecdotes/miscellaneous",
            "food",
            "price",
            "service",
        ];
        Heads {
            provenance: serde_json::json!({}),
            model_sha256: String::new(),
            embedding_dim: DIM,
            neural: sentiment(DIM),
            hybrid: sentiment(DIM + crate::neural::HYBRID_EXTRA),
            restaurant_categories: head(&categories, vec![vec![]; 5], DIM + 5),
            restaurant_thresholds: vec![0.5; 5],
        }
    }

    fn taxonomy() -> Taxonomy {
        Taxonomy::from_toml(
            r#"
[[theme]]
id = "speed"
label = "Speed & wait time"
phrases = ["slow"]
examples = ["I waited for ages"]
similarity_threshold = 0.9
[[theme]]
id = "staff"
label = "Staff"
phrases = ["staff"]
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_batch_is_one_encoder_call_covering_texts_and_their_sentences() {
        // GIVEN a neural analyzer (its exemplars were embedded at build: one call)
        let enc = FakeEncoder::new(false);
        let a = Analyzer::build_with_heads(Mode::Neural, taxonomy(), Some(enc.clone()), heads())
            .unwrap();
        assert_eq!(enc.calls.load(Ordering::SeqCst), 1);
        enc.seen.lock().unwrap().clear();

        // WHEN two texts, one of two sentences, are analysed together
        let r = a
            .analyze_texts(&[
                "The parcel never arrived and nobody answered. The staff were lovely though.",
                "Great coffee",
            ])
            .unwrap();

        // THEN one more call encoded both texts and the two sentences of the first
        assert_eq!(enc.calls.load(Ordering::SeqCst), 2);
        assert_eq!(enc.seen.lock().unwrap().len(), 4);
        // and each sentence keeps its own sign while the head scores the whole text
        assert_eq!(r[0].sentences.len(), 2);
        assert!(r[0].sentences[0].compound < -0.05);
        assert!(r[0].sentences[1].compound > 0.05);
        assert_eq!(r[1].sentiment.unwrap().label, Label::Positive);
        assert_eq!(r[1].stars, Some(5));
        let staff = r[0].themes.iter().find(|t| t.theme == "staff").unwrap();
        assert_eq!(
            (staff.source, staff.sentence_index),
            (ThemeSource::Phrase, 1)
        );
        assert!(staff.sentiment.unwrap() > 0.05);
    }

    #[test]
    fn a_paraphrase_reaches_a_theme_by_similarity_with_its_score() {
        let enc = FakeEncoder::new(false);
        let a = Analyzer::build_with_heads(Mode::Hybrid, taxonomy(), Some(enc), heads()).unwrap();
        let r = a.analyze_text("It took forever.").unwrap();
        let speed = r.themes.iter().find(|t| t.theme == "speed").expect("speed");
        assert_eq!(speed.source, ThemeSource::Similarity);
        assert!(speed.score.unwrap() >= 0.9);
        assert_eq!(speed.phrase, "");
        // a phrase hit is reported as such, not twice
        let r = a.analyze_text("Slow, I waited ages.").unwrap();
        let hits: Vec<_> = r.themes.iter().filter(|t| t.theme == "speed").collect();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].source, ThemeSource::Phrase);
    }

    #[test]
    fn the_neural_modes_refuse_to_run_without_an_encoder() {
        for mode in [Mode::Neural, Mode::Hybrid] {
            let err = Analyzer::build(mode, taxonomy(), None)
                .err()
                .expect("must fail");
            assert!(err.to_string().contains("make model"), "{err}");
        }
        assert!(Analyzer::build(Mode::Lexicon, taxonomy(), None).is_ok());
    }

    #[test]
    fn an_encoder_failure_is_an_error_not_a_silent_lexicon_score() {
        let enc = FakeEncoder::new(false);
        let a = Analyzer::build_with_heads(Mode::Hybrid, taxonomy(), Some(enc), heads()).unwrap();
        assert!(a.analyze_text("fine").is_ok());
        let broken = FakeEncoder::new(true);
        let err = Analyzer::build_with_heads(Mode::Hybrid, taxonomy(), Some(broken), heads())
            .err()
            .expect("exemplar embedding fails");
        assert!(matches!(err, AnalyzerError::Encode(_)), "{err}");
    }

    #[test]
    fn heads_for_another_encoder_size_are_refused() {
        let mut h = heads();
        h.embedding_dim = 384;
        let err =
            Analyzer::build_with_heads(Mode::Neural, taxonomy(), Some(FakeEncoder::new(false)), h)
                .err()
                .unwrap();
        assert!(
            matches!(err, AnalyzerError::Heads(HeadsError::Dim { .. })),
            "{err}"
        );
    }

    fn german_heads() -> MultilingualHeads {
        let three_class = head(
            &["negative", "neutral", "positive"],
            vec![vec![0.0, 6.0], vec![0.0; 8], vec![6.0]],
            DIM,
        );
        MultilingualHeads {
            provenance: serde_json::json!({}),
            model_sha256: String::new(),
            embedding_dim: DIM,
            languages: [(
                "de".to_owned(),
                LanguageHead {
                    three_class,
                    neutral_bias: 0.0,
                },
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn a_language_with_a_head_goes_to_the_multilingual_encoder_and_others_are_refused() {
        // GIVEN an English encoder and a multilingual one with a German head only
        let english = FakeEncoder::new(false);
        let other = FakeEncoder::new(false);
        let a =
            Analyzer::build_with_heads(Mode::Hybrid, taxonomy(), Some(english.clone()), heads())
                .unwrap()
                .with_multilingual_heads(other.clone(), german_heads())
                .unwrap();
        english.seen.lock().unwrap().clear();
        other.seen.lock().unwrap().clear();
        let german =
            "Das Paket kam viel zu late an und niemand hat auf meine Nachrichten geantwortet.";
        let french = "Le colis n'est jamais arrivé et personne n'a répondu à mes courriels.";

        // WHEN English, German and French texts are analysed together
        let r = a
            .analyze_texts(&["The parcel never arrived.", german, french])
            .unwrap();

        // THEN German is scored by its head over the multilingual encoder's vector
        assert_eq!(r[1].language.code, "de");
        assert_eq!(r[1].skipped, None);
        let s = r[1].sentiment.expect("scored");
        assert_eq!(s.label, crate::sentiment::Label::Negative);
        assert!(s.compound < -0.5, "{s:?}");
        assert_eq!(other.seen.lock().unwrap().as_slice(), [german]);
        // English stays with its own encoder; French has no head and says so
        assert_eq!(
            english.seen.lock().unwrap().as_slice(),
            ["The parcel never arrived."]
        );
        assert_eq!(r[2].sentiment, None);
        assert_eq!(r[2].skipped.as_deref(), Some("unsupported language: fr"));
        assert_eq!(a.languages(), ["de"]);
    }

    #[test]
    fn multilingual_themes_use_their_own_threshold_and_none_turns_similarity_off() {
        let tax = |extra: &str| {
            Taxonomy::from_toml(&format!(
                "{extra}\n[[theme]]\nid = \"speed\"\nlabel = \"Speed\"\nphrases = [\"slow\"]\nexamples = [\"I waited for ages\"]\nsimilarity_threshold = 0.9\n"
            ))
            .unwrap()
        };
        let text = "Wir haben ewig gewartet, wait wait, und niemand kam an den Tisch zu uns.";
        for (extra, want) in [
            ("multilingual_similarity_threshold = 0.5", true),
            ("", false),
        ] {
            let a = Analyzer::build_with_heads(
                Mode::Neural,
                tax(extra),
                Some(FakeEncoder::new(false)),
                heads(),
            )
            .unwrap()
            .with_multilingual_heads(FakeEncoder::new(false), german_heads())
            .unwrap();
            let r = a.analyze_text(text).unwrap();
            assert_eq!(r.language.code, "de");
            let found = r
                .themes
                .iter()
                .any(|m| m.theme == "speed" && m.source == ThemeSource::Similarity);
            assert_eq!(found, want, "{extra:?}: {:?}", r.themes);
        }
    }
}
