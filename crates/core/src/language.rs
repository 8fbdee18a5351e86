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

/// The commonest function words of the languages the multilingual tier scores: when
/// the detector is unsure between English and one of these, the text's own words
/// decide ("das essen war so geil" has English "so" and "war", and more German).
fn function_words(code: &str) -> &'static [&'static str] {
    match code {
        "de" => &[
            "der", "die", "das", "und", "ist", "nicht", "ich", "ein", "eine", "zu", "mit", "auf",
            "für", "sich", "es", "auch", "wir", "sie", "du", "mir", "mich", "war", "aber", "noch",
            "schon", "sehr", "nur", "wie", "bei", "von", "kein", "keine", "hat", "habe", "bin",
            "sind", "mal", "doch", "jetzt", "so", "was", "wenn",
        ],
        "fr" => &[
            "le", "la", "les", "de", "des", "du", "un", "une", "et", "est", "pas", "je", "il",
            "elle", "nous", "vous", "que", "qui", "ne", "en", "au", "aux", "pour", "sur", "avec",
            "mais", "très", "c'est", "j'ai", "mon", "ma", "mes", "ce",
        ],
        "es" => &[
            "el", "la", "los", "las", "de", "del", "un", "una", "y", "es", "no", "que", "en",
            "por", "para", "con", "pero", "muy", "mi", "me", "lo", "se", "su", "yo", "está", "fue",
            "al", "como", "más", "ya",
        ],
        "it" => &[
            "il", "lo", "la", "gli", "le", "di", "del", "della", "un", "una", "e", "è", "non",
            "che", "per", "con", "ma", "molto", "mi", "ho", "sono", "si", "ti", "in", "da", "al",
            "come", "più", "anche",
        ],
        "pt" => &[
            "o", "os", "a", "as", "de", "do", "da", "dos", "das", "um", "uma", "e", "é", "não",
            "que", "em", "no", "na", "por", "para", "com", "mas", "muito", "eu", "meu", "minha",
            "se", "foi", "está", "você",
        ],
        "nl" => &[
            "de", "het", "een", "en", "is", "niet", "ik", "van", "op", "te", "met", "voor", "maar",
            "zijn", "was", "heel", "je", "we", "er", "dat", "die",
        ],
        _ => &[],
    }
}

/// The text without what says nothing about its language: @mentions and links.
fn without_handles(text: &str) -> String {
    text.split_whitespace()
        .filter(|t| !t.starts_with('@') && !t.starts_with("http") && !t.starts_with("www."))
        .collect::<Vec<_>>()
        .join(" ")
}

fn share(words: &[String], hit: impl Fn(&str) -> bool) -> f64 {
    if words.is_empty() {
        return 0.0;
    }
    words.iter().filter(|w| hit(w)).count() as f64 / words.len() as f64
}

fn english_word_share(words: &[String]) -> f64 {
    let lexicon = crate::sentiment::vader::Lexicon::get();
    share(words, |w| {
        ENGLISH_FUNCTION_WORDS.contains(&w) || lexicon.valence(w).is_some()
    })
}

pub fn detect(text: &str) -> Language {
    let text = &without_handles(text);
    let words: Vec<String> = crate::text::words(text)
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let assumed = Language {
        code: "en".into(),
        confidence: 0.0,
        reliable: false,
    };
    let Some(info) = detector().detect(text) else {
        return assumed;
    };
    let code = iso639_1(info.lang());
    if letters < MIN_LETTERS {
        // Too short for trigrams: English unless the words themselves say otherwise
        // (a function word of the guessed language, or letters English does not use,
        // and no English word).
        let english = english_word_share(&words);
        let own = share(&words, |w| function_words(code).contains(&w));
        let foreign_letters = text.chars().any(|c| c.is_alphabetic() && !c.is_ascii());
        let told = info.script() == whatlang::Script::Latin
            && code != "en"
            && (own > english || (foreign_letters && english == 0.0));
        if !told {
            return assumed;
        }
        return Language {
            code: code.into(),
            confidence: info.confidence(),
            reliable: false,
        };
    }
    if code == "en" {
        return Language {
            code: code.into(),
            confidence: info.confidence(),
            reliable: info.is_reliable(),
        };
    }
    // A non-Latin script is never English; a Latin-script guess is trusted when the
    // detector is sure, when the text has almost none of the words every English
    // sentence has, or when it has more of the guessed language's own.
    let english = english_word_share(&words);
    if info.is_reliable()
        || info.script() != whatlang::Script::Latin
        || english < 0.15
        || share(&words, |w| function_words(code).contains(&w)) > english
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
    fn mentions_and_links_do_not_count_and_the_guess_s_own_words_can_outvote_english() {
        // "so" and "war" are English words too; "ich", "das" are not
        assert_eq!(
            detect("ich platze. das essen war so geil, echt jetzt").code,
            "de"
        );
        assert_eq!(
            detect("@user @user @user http://t.co/x Das Essen war kalt und teuer").code,
            "de"
        );
        assert!(detect("@user @user @user the food was cold").is_english());
        assert!(detect("The service was so slow that we left before dessert.").is_english());
        // short: its own words or letters name it; otherwise English is assumed
        assert_eq!(detect("das ist gut").code, "de");
        assert_eq!(detect("Hässliche wahrheit.").code, "de");
        assert!(detect("great!!").is_english());
        assert!(detect("Café was lovely").is_english());
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
