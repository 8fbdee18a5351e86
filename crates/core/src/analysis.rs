//! The analysis of one feedback: language, sentiment (whole text and per sentence),
//! themes with their sentence's sentiment, NPS category and a PII-free excerpt.

use serde::{Deserialize, Serialize};

use crate::envelope::Feedback;
use crate::language::{self, Language};
use crate::nps::NpsCategory;
use crate::pii;
use crate::sentiment::{Mode, Scorer, Sentiment};
use crate::text;
use crate::themes::Taxonomy;

/// Characters of (redacted) text kept on profiles and feedback items.
pub const EXCERPT_CHARS: usize = 280;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceScore {
    pub text: String,
    pub compound: f64,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextAnalysis {
    pub language: Language,
    /// None when the text is empty or not English (see `skipped`).
    pub sentiment: Option<Sentiment>,
    pub skipped: Option<String>,
    pub sentences: Vec<SentenceScore>,
    pub themes: Vec<ThemeMention>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Everything needed to analyse feedback; build once, share freely.
#[derive(Clone)]
pub struct Analyzer {
    scorer: Scorer,
    taxonomy: Taxonomy,
}

impl Analyzer {
    pub fn new(mode: Mode, taxonomy: Taxonomy) -> Analyzer {
        Analyzer {
            scorer: Scorer::new(mode),
            taxonomy,
        }
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    pub fn analyze_text(&self, text: &str) -> TextAnalysis {
        let language = language::detect(text);
        let spans = text::sentences(text);
        let hits = self.taxonomy.find(text, &spans);
        let (sentiment, skipped, sentence_scores) = if text.trim().is_empty() {
            (None, Some("empty text".to_owned()), Vec::new())
        } else if !language.is_english() {
            (
                None,
                Some(format!("unsupported language: {}", language.code)),
                Vec::new(),
            )
        } else {
            let scores: Vec<SentenceScore> = spans
                .iter()
                .map(|s| SentenceScore {
                    text: s.of(text).to_owned(),
                    compound: self.scorer.scores(s.of(text)).compound,
                })
                .collect();
            (Some(self.scorer.sentiment(text)), None, scores)
        };
        let themes = hits
            .into_iter()
            .map(|h| {
                let sentence = spans
                    .get(h.sentence_index)
                    .map(|s| s.of(text))
                    .unwrap_or_default();
                ThemeMention {
                    label: self.taxonomy.label(&h.theme).unwrap_or(&h.theme).to_owned(),
                    theme: h.theme,
                    phrase: h.phrase,
                    sentence: pii::redact(sentence),
                    sentence_index: h.sentence_index,
                    sentiment: sentence_scores.get(h.sentence_index).map(|s| s.compound),
                }
            })
            .collect();
        TextAnalysis {
            language,
            sentiment,
            skipped,
            sentences: sentence_scores,
            themes,
        }
    }

    pub fn analyze(&self, feedback: Feedback) -> AnalyzedFeedback {
        let mut text = feedback.text.clone();
        // A ticket's subject is often the only statement of the problem.
        if let crate::envelope::Details::Ticket {
            subject: Some(subject),
            ..
        } = &feedback.details
        {
            if text.trim().is_empty() {
                text = subject.clone();
            }
        }
        let analysis = self.analyze_text(&text);
        let nps_category = feedback.details.nps_score().map(NpsCategory::from_score);
        let excerpt = pii::excerpt(&text, EXCERPT_CHARS);
        AnalyzedFeedback {
            feedback,
            analysis,
            nps_category,
            excerpt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn themes_carry_their_sentence_sentiment() {
        let a = Analyzer::new(Mode::Feedloop, Taxonomy::default_small_business());
        let r = a.analyze_text(
            "The staff were lovely. Delivery took forever and the parcel was damaged!",
        );
        let staff = r.themes.iter().find(|t| t.theme == "staff").unwrap();
        let delivery = r.themes.iter().find(|t| t.theme == "delivery").unwrap();
        assert!(staff.sentiment.unwrap() > 0.3);
        assert!(delivery.sentiment.unwrap() < -0.3);
        assert_eq!(delivery.sentence_index, 1);
        assert_eq!(r.sentences.len(), 2);
    }

    #[test]
    fn non_english_gets_no_score_and_a_reason() {
        let a = Analyzer::new(Mode::Feedloop, Taxonomy::default_small_business());
        let r = a.analyze_text(
            "Das Paket ist nie angekommen und niemand hat auf meine E-Mails geantwortet.",
        );
        assert_eq!(r.sentiment, None);
        assert_eq!(r.skipped.as_deref(), Some("unsupported language: de"));
    }
}
