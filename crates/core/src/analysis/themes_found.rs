//! Which themes a text's sentences carry: by the category head, or by phrase and
//! exemplar similarity, each found theme then made a mention with its sentence.

use super::{Analyzer, Prepared, SentenceScore, ThemeExemplars, ThemeMention, ThemeSource};
use crate::neural::{category_features, cosine, LinearHead};
use crate::pii;

/// A theme found in a sentence, before it becomes a mention.
pub(super) struct Found {
    pub theme: String,
    pub phrase: String,
    pub sentence_index: usize,
    pub source: ThemeSource,
    pub score: Option<f64>,
}

/// Themes from the category head: each class over its threshold, once per text.
pub(super) fn head_themes(
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

impl Analyzer {
    /// Themes by phrase, then (with exemplar vectors) by similarity where no phrase
    /// found that theme in that sentence; the fallback theme when nothing matched.
    pub(super) fn matched_themes(
        &self,
        p: &Prepared,
        sentence_vectors: &[Option<&[f32]>],
    ) -> Vec<Found> {
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

    pub(super) fn mention(
        &self,
        p: &Prepared,
        sentence_scores: &[SentenceScore],
        f: Found,
    ) -> ThemeMention {
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
}
