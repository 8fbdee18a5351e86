//! Sentiment scoring: the VADER reference, feedloop's lexicon, and the neural modes
//! (whose heads live in [`crate::neural`] and whose encoder is a port).

pub mod vader;

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use vader::{Overlay, PolarityScores, Vader};

/// Which scorer to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// VADER 3.3.2 exactly, for comparability with published numbers.
    Reference,
    /// Reference plus the feedloop lexicon for customer feedback (was `feedloop`).
    #[serde(alias = "feedloop")]
    Lexicon,
    /// The sentence encoder and a trained head.
    Neural,
    /// The sentence encoder plus the lexicon's four scores, and a trained head: the
    /// default wherever the model is installed.
    Hybrid,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Reference, Mode::Lexicon, Mode::Neural, Mode::Hybrid];

    /// Whether this mode runs the sentence encoder.
    pub fn needs_encoder(self) -> bool {
        matches!(self, Mode::Neural | Mode::Hybrid)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Reference => "reference",
            Mode::Lexicon => "lexicon",
            Mode::Neural => "neural",
            Mode::Hybrid => "hybrid",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reference" => Ok(Mode::Reference),
            "lexicon" | "feedloop" => Ok(Mode::Lexicon),
            "neural" => Ok(Mode::Neural),
            "hybrid" => Ok(Mode::Hybrid),
            other => Err(format!(
                "unknown mode {other:?} (expected reference, lexicon, neural or hybrid)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Label {
    Positive,
    Neutral,
    Negative,
}

impl Label {
    /// VADER's recommended thresholds on the compound score.
    pub fn from_compound(c: f64) -> Label {
        if c >= 0.05 {
            Label::Positive
        } else if c <= -0.05 {
            Label::Negative
        } else {
            Label::Neutral
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Positive => "positive",
            Label::Neutral => "neutral",
            Label::Negative => "negative",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub compound: f64,
    pub pos: f64,
    pub neu: f64,
    pub neg: f64,
    pub label: Label,
}

impl Sentiment {
    /// No opinion either way.
    pub fn neutral() -> Sentiment {
        Sentiment {
            compound: 0.0,
            pos: 0.0,
            neu: 1.0,
            neg: 0.0,
            label: Label::Neutral,
        }
    }
}

impl From<PolarityScores> for Sentiment {
    fn from(s: PolarityScores) -> Self {
        Sentiment {
            compound: s.compound,
            pos: s.pos,
            neu: s.neu,
            neg: s.neg,
            label: Label::from_compound(s.compound),
        }
    }
}

const FEEDLOOP_LEXICON: &str = include_str!("../../data/feedloop_lexicon.tsv");

fn feedloop_overlay() -> &'static Overlay {
    static O: OnceLock<Overlay> = OnceLock::new();
    O.get_or_init(|| {
        let mut o = Overlay::default();
        for line in FEEDLOOP_LEXICON.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((entry, valence)) = line.split_once('\t') else {
                continue;
            };
            let Ok(valence) = valence.trim().parse::<f64>() else {
                continue;
            };
            let words: Vec<String> = entry.split_whitespace().map(str::to_lowercase).collect();
            match words.len() {
                0 => {}
                1 => {
                    o.words.insert(words[0].clone(), valence);
                }
                _ => o.add_phrase(words, valence),
            }
        }
        o
    })
}

/// Scores texts in one mode. Cheap to copy; the lexicons are shared statics.
#[derive(Clone, Copy)]
pub struct Scorer {
    vader: Vader,
    overlay: Option<&'static Overlay>,
}

impl Scorer {
    pub fn new(mode: Mode) -> Scorer {
        // The neural modes use the lexicon for their VADER features (hybrid) and for
        // nothing else; the head decides the score.
        let overlay = match mode {
            Mode::Reference => None,
            Mode::Lexicon | Mode::Neural | Mode::Hybrid => Some(feedloop_overlay()),
        };
        Scorer {
            vader: Vader::default(),
            overlay,
        }
    }

    pub fn scores(&self, text: &str) -> PolarityScores {
        self.vader.polarity_scores_with(text, self.overlay)
    }

    pub fn sentiment(&self, text: &str) -> Sentiment {
        self.scores(text).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedloop_mode_scores_factual_complaints_that_vader_misses() {
        let reference = Scorer::new(Mode::Reference);
        let feedloop = Scorer::new(Mode::Lexicon);
        for text in [
            "I still can't log in",
            "The parcel never arrived",
            "Still waiting for my refund",
        ] {
            assert_eq!(reference.sentiment(text).label, Label::Neutral, "{text}");
            assert_eq!(feedloop.sentiment(text).label, Label::Negative, "{text}");
        }
    }

    #[test]
    fn feedloop_phrases_respect_negation_and_keep_reference_elsewhere() {
        let feedloop = Scorer::new(Mode::Lexicon);
        assert_eq!(
            feedloop.sentiment("We will come back").label,
            Label::Positive
        );
        assert_eq!(
            feedloop.sentiment("We won't come back").label,
            Label::Negative
        );
        let plain = "The food was good but the service was terrible!";
        assert_eq!(
            feedloop.scores(plain),
            Scorer::new(Mode::Reference).scores(plain)
        );
    }
}
