//! Themes (NPS drivers): a taxonomy of phrases matched per sentence, inflection-tolerant.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::text::{self, stem, Span};

pub const DEFAULT_TAXONOMY: &str = include_str!("../../taxonomies/small-business.toml");
pub const RESTAURANT_TAXONOMY: &str = include_str!("../../taxonomies/restaurants.toml");

#[derive(Debug, thiserror::Error)]
pub enum TaxonomyError {
    #[error("taxonomy is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("theme {0:?} is defined twice")]
    DuplicateId(String),
    #[error("theme {0:?} has no phrases")]
    NoPhrases(String),
    #[error("theme {theme:?} has an empty phrase or exclusion")]
    EmptyPhrase { theme: String },
    #[error("theme id {0:?} must be 1..=64 characters of a-z, 0-9, _ / -")]
    BadId(String),
    #[error("fallback theme {0:?} is not defined")]
    UnknownFallback(String),
    #[error("unknown mode {0:?} (expected replace or extend)")]
    BadMode(String),
    #[error("theme {theme:?}: similarity_threshold must be in 0..=1, got {value}")]
    BadThreshold { theme: String, value: f64 },
    #[error(
        "theme {theme:?}: phrases.{language}: language codes are ISO 639-1, two lowercase letters"
    )]
    BadLanguage { theme: String, language: String },
}

/// A theme's phrases: one list for every language, or lists per language
/// (`phrases.en = [...]`, `phrases.de = [...]`). English phrases (and a plain list)
/// are matched in every language, with the English stemmer: loanwords such as
/// "service" or "app" carry over. Another language's phrases are matched only in text
/// detected as that language, stemmed by that language's Snowball stemmer.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PhraseDef {
    All(Vec<String>),
    ByLanguage(std::collections::BTreeMap<String, Vec<String>>),
}

impl PhraseDef {
    /// The phrases for every language, and those of each other language.
    fn split(self) -> (Vec<String>, Vec<(String, Vec<String>)>) {
        match self {
            PhraseDef::All(v) => (v, Vec::new()),
            PhraseDef::ByLanguage(mut m) => {
                let all = m.remove("en").unwrap_or_default();
                (all, m.into_iter().collect())
            }
        }
    }

    fn extend(&mut self, other: PhraseDef) {
        let (mut all, mut local) = std::mem::replace(self, PhraseDef::All(Vec::new())).split();
        let (more, more_local) = other.split();
        all.extend(more);
        for (lang, phrases) in more_local {
            match local.iter_mut().find(|(l, _)| *l == lang) {
                Some((_, v)) => v.extend(phrases),
                None => local.push((lang, phrases)),
            }
        }
        let mut m: std::collections::BTreeMap<String, Vec<String>> = local.into_iter().collect();
        m.insert("en".into(), all);
        *self = PhraseDef::ByLanguage(m);
    }

    fn is_empty(&self) -> bool {
        match self {
            PhraseDef::All(v) => v.is_empty(),
            PhraseDef::ByLanguage(m) => m.values().all(Vec::is_empty),
        }
    }
}

/// The Snowball stemmer for an ISO 639-1 code; none for English (its own stemmer,
/// `text::stem`) and for languages Snowball lacks (their words match as written).
fn stemmer(language: &str) -> Option<rust_stemmers::Stemmer> {
    use rust_stemmers::{Algorithm as A, Stemmer};
    let algorithm = match language {
        "de" => A::German,
        "fr" => A::French,
        "es" => A::Spanish,
        "it" => A::Italian,
        "pt" => A::Portuguese,
        "nl" => A::Dutch,
        "sv" => A::Swedish,
        "da" => A::Danish,
        "nb" | "no" => A::Norwegian,
        "fi" => A::Finnish,
        "ru" => A::Russian,
        "hu" => A::Hungarian,
        "ro" => A::Romanian,
        "tr" => A::Turkish,
        "el" => A::Greek,
        "ar" => A::Arabic,
        _ => return None,
    };
    Some(Stemmer::create(algorithm))
}

/// The word after an elided article or pronoun (`l'application`, `dell'ordine`,
/// `qu'il`): French and Italian write them joined to the next word.
fn elided(word: &str) -> &str {
    match word.find('\'') {
        Some(i) if (1..=4).contains(&i) && i + 1 < word.len() => &word[i + 1..],
        _ => word,
    }
}

fn stem_in(stemmer: Option<&rust_stemmers::Stemmer>, word: &str) -> String {
    match stemmer {
        Some(s) => s.stem(word).into_owned(),
        None => word.to_owned(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxonomyFile {
    name: Option<String>,
    /// `replace` (default) or `extend` the shipped taxonomy.
    mode: Option<String>,
    /// Theme given to a text in which no other theme matched.
    fallback: Option<String>,
    /// Cosine similarity to a theme's exemplars that makes a hit, for themes that do not
    /// set their own (neural modes only).
    similarity_threshold: Option<f64>,
    /// The same for the multilingual encoder, whose cosines run higher; without it,
    /// non-English sentences get themes from phrases only.
    multilingual_similarity_threshold: Option<f64>,
    #[serde(default, rename = "theme")]
    themes: Vec<ThemeDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeDef {
    id: String,
    label: String,
    phrases: PhraseDef,
    #[serde(default)]
    exclude: Vec<String>,
    /// Sentences that mean this theme; in the neural modes a sentence close enough to
    /// one of them (or to a phrase) gets the theme even without a phrase match.
    #[serde(default)]
    examples: Vec<String>,
    similarity_threshold: Option<f64>,
    multilingual_similarity_threshold: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Pat {
    Stem(String),
    /// `word*` in a phrase: any word starting with the prefix.
    Prefix(String),
}

type Phrase = Vec<Pat>;

#[derive(Debug, Clone)]
pub struct Theme {
    pub id: String,
    pub label: String,
    phrases: Vec<Phrase>,
    exclude: Vec<Phrase>,
    /// The phrases as written, embedded as exemplars alongside `examples`.
    pub phrase_texts: Vec<String>,
    pub examples: Vec<String>,
    /// Similarity that makes a hit (the theme's own, else the taxonomy's, else
    /// [`DEFAULT_SIMILARITY_THRESHOLD`]).
    pub similarity_threshold: f64,
    /// The multilingual encoder's threshold (the theme's, else the taxonomy's); none
    /// turns similarity off for other languages.
    pub multilingual_similarity_threshold: Option<f64>,
}

/// Phrases of one language other than English, with its stemmer.
struct LocalPhrases {
    stemmer: Option<rust_stemmers::Stemmer>,
    /// (theme index, phrase), in theme order.
    phrases: Vec<(usize, Phrase)>,
}

impl std::fmt::Debug for LocalPhrases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPhrases")
            .field("stemmed", &self.stemmer.is_some())
            .field("phrases", &self.phrases)
            .finish()
    }
}

/// Used when neither the theme nor the taxonomy sets a threshold: the median of the
/// per-theme thresholds calibrated on SemEval-2014 restaurants train (see README).
pub const DEFAULT_SIMILARITY_THRESHOLD: f64 = 0.55;

/// A compiled taxonomy. Phrases are indexed by their first word's stem so matching a
/// sentence costs one hash lookup per word, whatever the taxonomy size.
#[derive(Debug, Clone)]
pub struct Taxonomy {
    pub name: String,
    themes: Vec<Theme>,
    fallback: Option<usize>,
    by_first_stem: FxHashMap<String, Vec<(usize, usize)>>,
    by_prefix: Vec<(usize, usize)>,
    /// ISO 639-1 code -> that language's own phrases.
    local: FxHashMap<String, std::sync::Arc<LocalPhrases>>,
}

/// One theme found in one sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThemeHit {
    pub theme: String,
    pub sentence_index: usize,
    /// The words that matched, as written.
    pub phrase: String,
}

fn compile(phrase: &str) -> Phrase {
    compile_with(phrase, stem)
}

fn compile_with(phrase: &str, stem: impl Fn(&str) -> String) -> Phrase {
    phrase
        .split_whitespace()
        .filter_map(|piece| {
            let lower = piece.to_lowercase();
            if let Some(p) = lower.strip_suffix('*') {
                return (!p.is_empty()).then(|| Pat::Prefix(p.to_owned()));
            }
            let w: String = lower
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'' || *c == '-')
                .collect();
            (!w.is_empty()).then(|| Pat::Stem(stem(&w)))
        })
        .collect()
}

impl Taxonomy {
    pub fn default_small_business() -> Taxonomy {
        Self::from_toml(DEFAULT_TAXONOMY).expect("the shipped taxonomy is valid (checked by tests)")
    }

    pub fn restaurants() -> Taxonomy {
        Self::from_toml(RESTAURANT_TAXONOMY)
            .expect("the shipped taxonomy is valid (checked by tests)")
    }

    /// Parse a taxonomy file. A file with `mode = "extend"` is merged into the shipped
    /// default (same id: phrases and exclusions are added; new id: theme is added).
    pub fn from_toml(src: &str) -> Result<Taxonomy, TaxonomyError> {
        let file: TaxonomyFile = toml::from_str(src)?;
        let mode = file.mode.as_deref().unwrap_or("replace");
        let (name, mut defs, mut fallback) = match mode {
            "replace" => (
                file.name.clone().unwrap_or_else(|| "custom".into()),
                Vec::new(),
                None,
            ),
            "extend" => {
                let base: TaxonomyFile = toml::from_str(DEFAULT_TAXONOMY)?;
                (
                    file.name
                        .clone()
                        .unwrap_or_else(|| "small-business+custom".into()),
                    base.themes,
                    base.fallback,
                )
            }
            other => return Err(TaxonomyError::BadMode(other.into())),
        };
        let mut seen = std::collections::HashSet::new();
        for def in file.themes {
            if !seen.insert(def.id.clone()) {
                return Err(TaxonomyError::DuplicateId(def.id));
            }
            match defs.iter_mut().find(|d| d.id == def.id) {
                Some(existing) => {
                    existing.label = def.label;
                    existing.phrases.extend(def.phrases);
                    existing.exclude.extend(def.exclude);
                    existing.examples.extend(def.examples);
                    if def.similarity_threshold.is_some() {
                        existing.similarity_threshold = def.similarity_threshold;
                    }
                    if def.multilingual_similarity_threshold.is_some() {
                        existing.multilingual_similarity_threshold =
                            def.multilingual_similarity_threshold;
                    }
                }
                None => defs.push(def),
            }
        }
        if file.fallback.is_some() {
            fallback = file.fallback;
        }
        let thresholds = (
            file.similarity_threshold,
            file.multilingual_similarity_threshold,
        );
        Self::build(name, defs, fallback, thresholds)
    }

    fn build(
        name: String,
        defs: Vec<ThemeDef>,
        fallback: Option<String>,
        (default_threshold, default_multilingual): (Option<f64>, Option<f64>),
    ) -> Result<Taxonomy, TaxonomyError> {
        let mut themes = Vec::with_capacity(defs.len());
        let mut local: FxHashMap<String, LocalPhrases> = FxHashMap::default();
        for def in defs {
            let id_ok = !def.id.is_empty()
                && def.id.len() <= 64
                && def
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_/-".contains(c));
            if !id_ok {
                return Err(TaxonomyError::BadId(def.id));
            }
            if def.phrases.is_empty() {
                return Err(TaxonomyError::NoPhrases(def.id));
            }
            let (all_phrases, by_language) = def.phrases.split();
            for (lang, phrases) in by_language {
                let ok = lang.len() == 2 && lang.chars().all(|c| c.is_ascii_lowercase());
                if !ok {
                    return Err(TaxonomyError::BadLanguage {
                        theme: def.id,
                        language: lang,
                    });
                }
                let entry = local.entry(lang.clone()).or_insert_with(|| LocalPhrases {
                    stemmer: stemmer(&lang),
                    phrases: Vec::new(),
                });
                for p in &phrases {
                    let compiled = compile_with(p, |w| stem_in(entry.stemmer.as_ref(), w));
                    if compiled.is_empty() {
                        return Err(TaxonomyError::EmptyPhrase { theme: def.id });
                    }
                    entry.phrases.push((themes.len(), compiled));
                }
            }
            let phrases: Vec<Phrase> = all_phrases.iter().map(|p| compile(p)).collect();
            let exclude: Vec<Phrase> = def.exclude.iter().map(|p| compile(p)).collect();
            if phrases.iter().chain(&exclude).any(Vec::is_empty) {
                return Err(TaxonomyError::EmptyPhrase { theme: def.id });
            }
            let similarity_threshold = def
                .similarity_threshold
                .or(default_threshold)
                .unwrap_or(DEFAULT_SIMILARITY_THRESHOLD);
            let multilingual_similarity_threshold = def
                .multilingual_similarity_threshold
                .or(default_multilingual);
            let out_of_range = [
                Some(similarity_threshold),
                multilingual_similarity_threshold,
            ]
            .into_iter()
            .flatten()
            .find(|t| !(0.0..=1.0).contains(t));
            if let Some(value) = out_of_range {
                return Err(TaxonomyError::BadThreshold {
                    theme: def.id,
                    value,
                });
            }
            themes.push(Theme {
                id: def.id,
                label: def.label,
                phrases,
                exclude,
                phrase_texts: all_phrases,
                examples: def
                    .examples
                    .into_iter()
                    .filter(|e| !e.trim().is_empty())
                    .collect(),
                similarity_threshold,
                multilingual_similarity_threshold,
            });
        }
        let fallback = match fallback {
            None => None,
            Some(f) => Some(
                themes
                    .iter()
                    .position(|t| t.id == f)
                    .ok_or(TaxonomyError::UnknownFallback(f))?,
            ),
        };
        let mut by_first_stem: FxHashMap<String, Vec<(usize, usize)>> = FxHashMap::default();
        let mut by_prefix = Vec::new();
        for (ti, theme) in themes.iter().enumerate() {
            for (pi, phrase) in theme.phrases.iter().enumerate() {
                match &phrase[0] {
                    Pat::Stem(s) => by_first_stem.entry(s.clone()).or_default().push((ti, pi)),
                    Pat::Prefix(_) => by_prefix.push((ti, pi)),
                }
            }
        }
        Ok(Taxonomy {
            name,
            themes,
            fallback,
            by_first_stem,
            by_prefix,
            local: local
                .into_iter()
                .map(|(k, v)| (k, std::sync::Arc::new(v)))
                .collect(),
        })
    }

    pub fn themes(&self) -> &[Theme] {
        &self.themes
    }

    pub fn label(&self, id: &str) -> Option<&str> {
        self.themes
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.label.as_str())
    }

    pub fn fallback(&self) -> Option<&str> {
        self.fallback.map(|i| self.themes[i].id.as_str())
    }

    /// All theme hits in `text`, one per (theme, sentence), in sentence order. When
    /// nothing matched anywhere and the taxonomy has a fallback, the fallback theme is
    /// reported on the first sentence.
    pub fn find(&self, text: &str, sentences: &[Span]) -> Vec<ThemeHit> {
        self.find_in(text, sentences, "en")
    }

    /// [`Taxonomy::find`] for text in `language` (ISO 639-1): the phrases for every
    /// language, and that language's own phrases under its stemmer.
    pub fn find_in(&self, text: &str, sentences: &[Span], language: &str) -> Vec<ThemeHit> {
        let local = self.local.get(language);
        let mut hits = Vec::new();
        for (si, span) in sentences.iter().enumerate() {
            let sentence = span.of(text);
            let words = text::words(sentence);
            let stems: Vec<String> = words.iter().map(|(_, w)| stem(w)).collect();
            let lower: Vec<&str> = words.iter().map(|(_, w)| w.as_str()).collect();
            let mut found: Vec<(usize, Span)> = Vec::new();
            for start in 0..stems.len() {
                let candidates = self
                    .by_first_stem
                    .get(&stems[start])
                    .into_iter()
                    .flatten()
                    .chain(&self.by_prefix);
                for &(ti, pi) in candidates {
                    if found.iter().any(|(t, _)| *t == ti) {
                        continue;
                    }
                    let phrase = &self.themes[ti].phrases[pi];
                    if let Some(len) = match_at(phrase, &stems, &lower, start) {
                        let span = Span {
                            start: words[start].0.start,
                            end: words[start + len - 1].0.end,
                        };
                        found.push((ti, span));
                    }
                }
            }
            if let Some(l) = local {
                let bare: Vec<&str> = words.iter().map(|(_, w)| elided(w)).collect();
                let stems: Vec<String> = bare
                    .iter()
                    .map(|w| stem_in(l.stemmer.as_ref(), w))
                    .collect();
                for (ti, phrase) in &l.phrases {
                    if found.iter().any(|(t, _)| t == ti) {
                        continue;
                    }
                    let at = (0..stems.len())
                        .find_map(|s| match_at(phrase, &stems, &bare, s).map(|len| (s, len)));
                    if let Some((s, len)) = at {
                        let span = Span {
                            start: words[s].0.start,
                            end: words[s + len - 1].0.end,
                        };
                        found.push((*ti, span));
                    }
                }
            }
            found.retain(|(ti, _)| {
                let excl = &self.themes[*ti].exclude;
                !(0..stems.len()).any(|s| {
                    excl.iter()
                        .any(|p| match_at(p, &stems, &lower, s).is_some())
                })
            });
            found.sort_by_key(|(ti, _)| *ti);
            hits.extend(found.into_iter().map(|(ti, span)| ThemeHit {
                theme: self.themes[ti].id.clone(),
                sentence_index: si,
                phrase: span.of(sentence).to_owned(),
            }));
        }
        if hits.is_empty() && !sentences.is_empty() {
            if let Some(fb) = self.fallback {
                hits.push(ThemeHit {
                    theme: self.themes[fb].id.clone(),
                    sentence_index: 0,
                    phrase: String::new(),
                });
            }
        }
        hits
    }
}

fn match_at(phrase: &Phrase, stems: &[String], lower: &[&str], start: usize) -> Option<usize> {
    if start + phrase.len() > stems.len() {
        return None;
    }
    let ok = phrase.iter().enumerate().all(|(k, pat)| match pat {
        Pat::Stem(s) => stems[start + k] == *s,
        Pat::Prefix(p) => lower[start + k].starts_with(p.as_str()),
    });
    ok.then_some(phrase.len())
}

#[cfg(test)]
mod tests;
