//! Language detection. Only English gets a sentiment score: VADER's lexicon is English
//! and a score for another language would be confidently wrong, which is worse than none.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use whatlang::{Detector, Lang};

/// Below this many letters a trigram detector is guessing; short feedback ("ok",
/// "great!!") is scored as English rather than refused.
const MIN_LETTERS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Language {
    /// ISO 639-1 where one exists (`en`, `de`), else ISO 639-3.
    pub code: String,
    pub confidence: f64,
    /// False when the text was too short or ambiguous to tell and English was assumed.
    pub reliable: bool,
}

impl Language {
    pub fn is_english(&self) -> bool {
        self.code == "en"
    }
}

/// Restricting the candidates to languages feedback realistically arrives in avoids
/// the classic trigram confusions of short English text with Scots, Latin or Tagalog.
fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| {
        Detector::with_allowlist(vec![
            Lang::Eng,
            Lang::Deu,
            Lang::Fra,
            Lang::Spa,
            Lang::Por,
            Lang::Ita,
            Lang::Nld,
            Lang::Swe,
            Lang::Dan,
            Lang::Nob,
            Lang::Fin,
            Lang::Pol,
            Lang::Ces,
            Lang::Tur,
            Lang::Rus,
            Lang::Ukr,
            Lang::Ell,
            Lang::Ara,
            Lang::Heb,
            Lang::Hin,
            Lang::Jpn,
            Lang::Kor,
            Lang::Cmn,
            Lang::Vie,
            Lang::Ind,
            Lang::Ron,
            Lang::Hun,
            Lang::Tha,
        ])
    })
}

fn iso639_1(lang: Lang) -> &'static str {
    match lang {
        Lang::Eng => "en",
        Lang::Deu => "de",
        Lang::Fra => "fr",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Ita => "it",
        Lang::Nld => "nl",
        Lang::Swe => "sv",
        Lang::Dan => "da",
        Lang::Nob => "nb",
        Lang::Fin => "fi",
        Lang::Pol => "pl",
        Lang::Ces => "cs",
        Lang::Tur => "tr",
        Lang::Rus => "ru",
        Lang::Ukr => "uk",
        Lang::Ell => "el",
        Lang::Ara => "ar",
        Lang::Heb => "he",
        Lang::Hin => "hi",
        Lang::Jpn => "ja",
        Lang::Kor => "ko",
        Lang::Cmn => "zh",
        Lang::Vie => "vi",
        Lang::Ind => "id",
        Lang::Ron => "ro",
        Lang::Hun => "hu",
        Lang::Tha => "th",
        other => other.code(),
    }
}

/// Common English function words. Trigram detectors are unreliable on one-sentence
/// feedback; English text, however short, is full of these or of sentiment words from
/// the VADER lexicon, and other languages are not.
const ENGLISH_FUNCTION_WORDS: &[&str] = &[
    "a", "about", "after", "all", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by",
    "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "my", "no", "not", "of", "on",
    "or", "our", "she", "so", "than", "that", "the", "their", "them", "then", "there", "they",
    "this", "to", "too", "us", "very", "was", "we", "were", "what", "when", "which", "who", "will",
    "with", "would", "you", "your", "also", "again", "back", "because", "came", "come", "down",
    "even", "ever", "get", "got", "here", "hour", "i'm", "i've", "it's", "like", "made", "make",
    "many", "more", "much", "new", "off", "one", "only", "out", "over", "perhaps", "really",
    "should", "some", "still", "these", "those", "two", "up", "use", "went", "where", "while",
    "why", "buy", "item", "product", "service", "food", "order", "ordered", "price", "priced",
    "phone", "battery", "works", "work", "time", "long", "life", "call", "calls", "gone", "done",
    "means", "keep", "running", "try", "list", "bar", "tables",
];

fn english_word_share(text: &str) -> f64 {
    let words = crate::text::words(text);
    if words.is_empty() {
        return 0.0;
    }
    let lexicon = crate::sentiment::vader::Lexicon::get();
    let hits = words
        .iter()
        .filter(|(_, w)| {
            ENGLISH_FUNCTION_WORDS.contains(&w.as_str()) || lexicon.valence(w).is_some()
        })
        .count();
    hits as f64 / words.len() as f64
}

pub fn detect(text: &str) -> Language {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let assumed = Language {
        code: "en".into(),
        confidence: 0.0,
        reliable: false,
    };
    if letters < MIN_LETTERS {
        return assumed;
    }
    let Some(info) = detector().detect(text) else {
        return assumed;
    };
    let code = iso639_1(info.lang());
    if code == "en" {
        return Language {
            code: code.into(),
            confidence: info.confidence(),
            reliable: info.is_reliable(),
        };
    }
    // A non-Latin script is never English; a Latin-script guess is trusted when the
    // detector is sure or the text has almost none of the words every English sentence has.
    if info.is_reliable()
        || info.script() != whatlang::Script::Latin
        || english_word_share(text) < 0.15
    {
        return Language {
            code: code.into(),
            confidence: info.confidence(),
            reliable: info.is_reliable(),
        };
    }
    assumed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_and_short_text_are_english() {
        assert!(detect("The parcel never arrived and nobody answered my emails.").is_english());
        assert!(detect("great!!").is_english());
    }

    #[test]
    fn other_languages_are_named() {
        assert_eq!(
            detect("Das Paket ist nie angekommen und niemand hat auf meine E-Mails geantwortet.")
                .code,
            "de"
        );
        assert_eq!(
            detect("Le colis n'est jamais arrivé et personne n'a répondu à mes courriels.").code,
            "fr"
        );
        assert_eq!(
            detect("El paquete nunca llegó y nadie respondió a mis correos electrónicos.").code,
            "es"
        );
        assert_eq!(
            detect("Посылка так и не пришла, и никто не ответил на мои письма.").code,
            "ru"
        );
    }
}
