//! VADER 3.3.2 (Hutto & Gilbert, ICWSM 2014), re-implemented for exact parity with the
//! Python reference `vaderSentiment==3.3.2`.
//!
//! Parity is the contract here, not elegance: several rules below look odd (the `but`
//! rule rescales the *first equal* score, lexicon lookups happen on the lower-cased token
//! only so upper-case lexicon entries such as `:D` never match, `kind of` is only a
//! dampener through the idiom check) and are kept because the reference does them.
//! Improvements belong in the `feedloop` mode, never here.
//!
//! Long because it is a rule-for-rule port of VADER 3.3.2, kept in the reference's order
//! so that the parity corpus failures can be traced line by line.

use std::borrow::Cow;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

/// The four scores VADER reports, rounded the way the reference rounds them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolarityScores {
    pub neg: f64,
    pub neu: f64,
    pub pos: f64,
    pub compound: f64,
}

impl PolarityScores {
    pub const ZERO: PolarityScores = PolarityScores {
        neg: 0.0,
        neu: 0.0,
        pos: 0.0,
        compound: 0.0,
    };
}

const B_INCR: f64 = 0.293;
const B_DECR: f64 = -0.293;
const C_INCR: f64 = 0.733;
pub(crate) const N_SCALAR: f64 = -0.74;

mod words;
use words::{BOOSTERS, MULTIWORD_BOOSTERS, NEGATE, SPECIAL_CASES};

const LEXICON_TXT: &str = include_str!("../../data/vader_lexicon.txt");
const EMOJI_TXT: &str = include_str!("../../data/emoji_utf8_lexicon.txt");

/// The lexicons, parsed once per process from the files embedded at compile time.
pub struct Lexicon {
    words: FxHashMap<&'static str, f64>,
    boosters: FxHashMap<&'static str, f64>,
    negations: FxHashMap<&'static str, ()>,
    emoji: FxHashMap<char, &'static str>,
}

impl Lexicon {
    pub fn get() -> &'static Lexicon {
        static LEX: OnceLock<Lexicon> = OnceLock::new();
        LEX.get_or_init(Lexicon::parse)
    }

    fn parse() -> Lexicon {
        let mut words = FxHashMap::default();
        for line in LEXICON_TXT.trim_end_matches('\n').split('\n') {
            if line.is_empty() {
                continue;
            }
            let mut cols = py_strip(line).split('\t');
            let (Some(word), Some(measure)) = (cols.next(), cols.next()) else {
                continue;
            };
            // The file is embedded and fixed; a bad row would be a build mistake, caught by tests.
            if let Ok(v) = measure.parse::<f64>() {
                words.insert(word, v);
            }
        }
        let mut emoji = FxHashMap::default();
        for line in EMOJI_TXT.trim_end_matches('\n').split('\n') {
            let mut cols = py_strip(line).split('\t');
            let (Some(key), Some(desc)) = (cols.next(), cols.next()) else {
                continue;
            };
            // The reference walks the text one code point at a time, so only single code
            // point keys can ever match; multi-code-point sequences are dead entries.
            let mut chars = key.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                emoji.insert(c, desc);
            }
        }
        Lexicon {
            words,
            boosters: BOOSTERS.iter().copied().collect(),
            negations: NEGATE.iter().map(|w| (*w, ())).collect(),
            emoji,
        }
    }

    pub fn valence(&self, lower_word: &str) -> Option<f64> {
        self.words.get(lower_word).copied()
    }

    pub fn booster(&self, lower_word: &str) -> Option<f64> {
        self.boosters.get(lower_word).copied()
    }

    pub fn is_negation(&self, lower_word: &str) -> bool {
        self.negations.contains_key(lower_word) || lower_word.contains("n't")
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// Python's `str.isspace`, which `split()` and `strip()` use: Unicode White_Space plus
/// the four ASCII information separators.
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

fn is_titlecase(c: char) -> bool {
    matches!(c, '\u{1c5}' | '\u{1c8}' | '\u{1cb}' | '\u{1f2}' | '\u{1f88}'..='\u{1f8f}'
        | '\u{1f98}'..='\u{1f9f}' | '\u{1fa8}'..='\u{1faf}' | '\u{1fbc}' | '\u{1fcc}' | '\u{1ffc}')
}

/// Python's `str.isupper`: at least one cased character and no lower/title-case one.
pub(crate) fn py_isupper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        if c.is_uppercase() {
            cased = true;
        }
    }
    cased
}

pub(crate) fn py_lower(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(s)
    } else if s.is_ascii() {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// `SentiText._strip_punc_if_word`: strip ASCII punctuation unless that leaves two
/// characters or fewer (then the token is probably an emoticon and kept whole).
fn strip_punc_if_word(token: &str) -> &str {
    let stripped = token.trim_matches(|c: char| c.is_ascii_punctuation());
    if stripped.chars().nth(2).is_none() {
        token
    } else {
        stripped
    }
}

/// Replace every emoji that has a lexicon description by that description, spacing it
/// from the previous character unless that was an ASCII space (as the reference does).
pub(crate) fn replace_emoji<'a>(lex: &Lexicon, text: &'a str) -> Cow<'a, str> {
    if text.is_ascii() || !text.chars().any(|c| lex.emoji.contains_key(&c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    let mut prev_space = true;
    for c in text.chars() {
        if let Some(desc) = lex.emoji.get(&c) {
            if !prev_space {
                out.push(' ');
            }
            out.push_str(desc);
            prev_space = false;
        } else {
            out.push(c);
            prev_space = c == ' ';
        }
    }
    Cow::Owned(out)
}

/// A tokenised text with the per-token facts every rule needs, computed once.
pub(crate) struct Tokens<'a> {
    pub raw: Vec<&'a str>,
    pub lower: Vec<Cow<'a, str>>,
    pub upper: Vec<bool>,
    pub valence: Vec<Option<f64>>,
    pub booster: Vec<Option<f64>>,
    pub cap_differential: bool,
}

impl<'a> Tokens<'a> {
    pub fn new(lex: &Lexicon, overlay: Option<&Overlay>, text: &'a str) -> Tokens<'a> {
        let raw: Vec<&str> = text
            .split(py_isspace)
            .filter(|t| !t.is_empty())
            .map(strip_punc_if_word)
            .collect();
        let lower: Vec<Cow<str>> = raw.iter().map(|t| py_lower(t)).collect();
        let upper: Vec<bool> = raw.iter().map(|t| py_isupper(t)).collect();
        let valence = lower
            .iter()
            .map(|w| {
                lex.valence(w)
                    .or_else(|| overlay.and_then(|o| o.words.get(w.as_ref()).copied()))
            })
            .collect();
        let booster = lower.iter().map(|w| lex.booster(w)).collect();
        let caps = upper.iter().filter(|u| **u).count();
        let cap_differential = caps > 0 && caps < raw.len();
        Tokens {
            raw,
            lower,
            upper,
            valence,
            booster,
            cap_differential,
        }
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }

    fn l(&self, i: usize) -> &str {
        &self.lower[i]
    }
}

/// Words and phrases added on top of the VADER lexicon. Single words behave exactly like
/// lexicon words (boosters, negation, caps all apply); a phrase replaces the scores of
/// the tokens it covers with one valence on its last token, flipped when a negation
/// precedes it, because the facts customers complain about ("never arrived", "charged
/// twice") carry no lexicon word at all.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    pub words: FxHashMap<String, f64>,
    phrases: Vec<(Vec<String>, f64)>,
    /// Phrase indexes by first word: one hash lookup per token instead of a scan.
    by_first: FxHashMap<String, Vec<usize>>,
}

impl Overlay {
    pub fn add_phrase(&mut self, words: Vec<String>, valence: f64) {
        if let Some(first) = words.first() {
            self.by_first
                .entry(first.clone())
                .or_default()
                .push(self.phrases.len());
            self.phrases.push((words, valence));
        }
    }

    fn apply_phrases(&self, lex: &Lexicon, t: &Tokens, sentiments: &mut [f64]) {
        let bare = |k: usize| t.lower[k].trim_matches(|c: char| c.is_ascii_punctuation());
        for start in 0..t.len() {
            let Some(candidates) = self.by_first.get(bare(start)) else {
                continue;
            };
            for &pi in candidates {
                let (phrase, valence) = &self.phrases[pi];
                let n = phrase.len();
                if start + n > t.len()
                    || !phrase.iter().enumerate().all(|(k, p)| p == bare(start + k))
                {
                    continue;
                }
                let negated =
                    (start.saturating_sub(3)..start).any(|k| lex.is_negation(&t.lower[k]));
                for s in &mut sentiments[start..start + n] {
                    *s = 0.0;
                }
                sentiments[start + n - 1] = if negated {
                    valence * N_SCALAR
                } else {
                    *valence
                };
            }
        }
    }
}

fn lookup(table: &[(&[&str], f64)], words: &[&str]) -> Option<f64> {
    table.iter().find(|(p, _)| *p == words).map(|(_, v)| *v)
}

fn special_case(words: &[&str]) -> Option<f64> {
    lookup(SPECIAL_CASES, words)
}

fn multiword_booster(words: &[&str]) -> Option<f64> {
    lookup(MULTIWORD_BOOSTERS, words)
}

/// The reference analyser. Stateless apart from the shared lexicon.
#[derive(Clone, Copy)]
pub struct Vader {
    lex: &'static Lexicon,
}

impl Default for Vader {
    fn default() -> Self {
        Vader {
            lex: Lexicon::get(),
        }
    }
}

impl Vader {
    pub fn lexicon(&self) -> &'static Lexicon {
        self.lex
    }

    /// `SentimentIntensityAnalyzer.polarity_scores`.
    pub fn polarity_scores(&self, text: &str) -> PolarityScores {
        self.polarity_scores_with(text, None)
    }

    /// The reference algorithm with extra words and phrases layered on top (the
    /// `feedloop` mode). With `None` this is exactly the reference.
    pub fn polarity_scores_with(&self, text: &str, overlay: Option<&Overlay>) -> PolarityScores {
        let text = replace_emoji(self.lex, text);
        let text = py_strip(&text);
        let tokens = Tokens::new(self.lex, overlay, text);
        let mut sentiments = self.token_sentiments(&tokens);
        if let Some(overlay) = overlay {
            overlay.apply_phrases(self.lex, &tokens, &mut sentiments);
        }
        but_check(&tokens, &mut sentiments);
        score_valence(&sentiments, text)
    }

    /// One valence per token, before the `but` rule and punctuation emphasis.
    pub(crate) fn token_sentiments(&self, t: &Tokens) -> Vec<f64> {
        let n = t.len();
        let mut sentiments = Vec::with_capacity(n);
        for i in 0..n {
            if t.booster[i].is_some() || (i + 1 < n && t.l(i) == "kind" && t.l(i + 1) == "of") {
                sentiments.push(0.0);
                continue;
            }
            sentiments.push(self.sentiment_valence(t, i));
        }
        sentiments
    }

    fn sentiment_valence(&self, t: &Tokens, i: usize) -> f64 {
        let Some(base) = t.valence[i] else { return 0.0 };
        let n = t.len();
        let mut valence = base;
        if t.l(i) == "no" && i != n - 1 && t.valence[i + 1].is_some() {
            valence = 0.0;
        }
        if (i > 0 && t.l(i - 1) == "no")
            || (i > 1 && t.l(i - 2) == "no")
            || (i > 2 && t.l(i - 3) == "no" && matches!(t.l(i - 1), "or" | "nor"))
        {
            valence = base * N_SCALAR;
        }
        if t.upper[i] && t.cap_differential {
            if valence > 0.0 {
                valence += C_INCR;
            } else {
                valence -= C_INCR;
            }
        }
        for start_i in 0..3 {
            let j = match i.checked_sub(start_i + 1) {
                Some(j) if t.valence[j].is_none() => j,
                _ => continue,
            };
            let mut s = self.scalar_inc_dec(t, j, valence);
            if start_i == 1 && s != 0.0 {
                s *= 0.95;
            }
            if start_i == 2 && s != 0.0 {
                s *= 0.9;
            }
            valence += s;
            valence = self.negation_check(t, valence, start_i, i);
            if start_i == 2 {
                valence = special_idioms_check(t, valence, i);
            }
        }
        least_check(t, valence, i)
    }

    fn scalar_inc_dec(&self, t: &Tokens, j: usize, valence: f64) -> f64 {
        let Some(mut scalar) = t.booster[j] else {
            return 0.0;
        };
        if valence < 0.0 {
            scalar *= -1.0;
        }
        if t.upper[j] && t.cap_differential {
            if valence > 0.0 {
                scalar += C_INCR;
            } else {
                scalar -= C_INCR;
            }
        }
        scalar
    }

    fn negation_check(&self, t: &Tokens, valence: f64, start_i: usize, i: usize) -> f64 {
        let neg = |w: &str| self.lex.is_negation(w);
        match start_i {
            0 if neg(t.l(i - 1)) => valence * N_SCALAR,
            1 => {
                if t.l(i - 2) == "never" && matches!(t.l(i - 1), "so" | "this") {
                    valence * 1.25
                } else if t.l(i - 2) == "without" && t.l(i - 1) == "doubt" {
                    valence
                } else if neg(t.l(i - 2)) {
                    valence * N_SCALAR
                } else {
                    valence
                }
            }
            2 => {
                // Python precedence makes this `(never and so|this) or (so|this)`.
                if (t.l(i - 3) == "never" && matches!(t.l(i - 2), "so" | "this"))
                    || matches!(t.l(i - 1), "so" | "this")
                {
                    valence * 1.25
                } else if t.l(i - 3) == "without"
                    && (t.l(i - 2) == "doubt" || t.l(i - 1) == "doubt")
                {
                    valence
                } else if neg(t.l(i - 3)) {
                    valence * N_SCALAR
                } else {
                    valence
                }
            }
            _ => valence,
        }
    }
}

fn special_idioms_check(t: &Tokens, mut valence: f64, i: usize) -> f64 {
    let w = |k: usize| t.l(k);
    let (w3, w2, w1, w0) = (w(i - 3), w(i - 2), w(i - 1), w(i));
    let onezero = [w1, w0];
    let twoonezero = [w2, w1, w0];
    let twoone = [w2, w1];
    let threetwoone = [w3, w2, w1];
    let threetwo = [w3, w2];
    let sequences: [&[&str]; 5] = [&onezero, &twoonezero, &twoone, &threetwoone, &threetwo];
    if let Some(v) = sequences.iter().find_map(|s| special_case(s)) {
        valence = v;
    }
    let n = t.len();
    if n - 1 > i {
        if let Some(v) = special_case(&[w0, w(i + 1)]) {
            valence = v;
        }
    }
    if n - 1 > i + 1 {
        if let Some(v) = special_case(&[w0, w(i + 1), w(i + 2)]) {
            valence = v;
        }
    }
    for ngram in [&threetwoone[..], &threetwo[..], &twoone[..]] {
        if let Some(b) = multiword_booster(ngram) {
            valence += b;
        }
    }
    valence
}

fn least_check(t: &Tokens, valence: f64, i: usize) -> f64 {
    if i > 1 && t.valence[i - 1].is_none() && t.l(i - 1) == "least" {
        if t.l(i - 2) != "at" && t.l(i - 2) != "very" {
            return valence * N_SCALAR;
        }
    } else if i > 0 && t.valence[i - 1].is_none() && t.l(i - 1) == "least" {
        return valence * N_SCALAR;
    }
    valence
}

/// The reference's contrastive-conjunction rule, including its quirk: each score is
/// located with `list.index`, i.e. the *first* equal value is rescaled, so repeated
/// values can be rescaled several times or on the wrong side of `but`.
pub(crate) fn but_check(t: &Tokens, sentiments: &mut [f64]) {
    let Some(bi) = t.lower.iter().position(|w| w == "but") else {
        return;
    };
    for k in 0..sentiments.len() {
        let s = sentiments[k];
        let si = sentiments.iter().position(|x| *x == s).unwrap_or(k);
        if si < bi {
            sentiments[si] = s * 0.5;
        } else if si > bi {
            sentiments[si] = s * 1.5;
        }
    }
}

pub(crate) fn punctuation_emphasis(text: &str) -> f64 {
    let ep = text.bytes().filter(|b| *b == b'!').count().min(4);
    let qm = text.bytes().filter(|b| *b == b'?').count();
    let qm_amp = match qm {
        0 | 1 => 0.0,
        2 | 3 => qm as f64 * 0.18,
        _ => 0.96,
    };
    ep as f64 * 0.292 + qm_amp
}

pub(crate) fn normalize(score: f64) -> f64 {
    (score / (score * score + 15.0).sqrt()).clamp(-1.0, 1.0)
}

pub(crate) fn score_valence(sentiments: &[f64], text: &str) -> PolarityScores {
    if sentiments.is_empty() {
        return PolarityScores::ZERO;
    }
    let mut sum_s = 0.0;
    for s in sentiments {
        sum_s += s;
    }
    let punct = punctuation_emphasis(text);
    if sum_s > 0.0 {
        sum_s += punct;
    } else if sum_s < 0.0 {
        sum_s -= punct;
    }
    let compound = normalize(sum_s);
    let (mut pos_sum, mut neg_sum, mut neu_count) = (0.0, 0.0, 0u32);
    for &s in sentiments {
        if s > 0.0 {
            pos_sum += s + 1.0;
        }
        if s < 0.0 {
            neg_sum += s - 1.0;
        }
        if s == 0.0 {
            neu_count += 1;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += punct;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= punct;
    }
    let total = pos_sum + neg_sum.abs() + neu_count as f64;
    PolarityScores {
        neg: py_round(neg_sum.abs() / total, 3),
        neu: py_round(neu_count as f64 / total, 3),
        pos: py_round(pos_sum.abs() / total, 3),
        compound: py_round(compound, 4),
    }
}

/// Python's `round(x, n)`: correctly rounded, ties to even on the exact binary value.
/// The scaled value decides unless it sits near a half, where only the exact decimal
/// expansion can (Rust's fixed-precision formatting has Python's semantics there).
pub(crate) fn py_round(x: f64, digits: usize) -> f64 {
    let scale = [1.0, 10.0, 100.0, 1_000.0, 10_000.0][digits.min(4)];
    let y = x * scale;
    if (y - y.trunc()).abs().sub_half_distance() > 1e-6 {
        return y.round() / scale;
    }
    format!("{x:.digits$}").parse().unwrap_or(x)
}

trait HalfDistance {
    fn sub_half_distance(self) -> f64;
}

impl HalfDistance for f64 {
    /// How far a fractional part in [0, 1) is from 0.5.
    fn sub_half_distance(self) -> f64 {
        (self - 0.5).abs()
    }
}

#[cfg(test)]
mod tests;
