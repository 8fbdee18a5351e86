//! Text utilities shared by sentiment and themes: sentence/clause splitting and the
//! word normalisation that makes theme phrases tolerant of inflection.

/// A byte range of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn of<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

/// Split into sentences at `.`, `!`, `?` runs followed by whitespace, and at line
/// breaks. Good enough for feedback (short, informal); decimals such as `4.5` and
/// abbreviations without a following space stay intact.
pub fn sentences(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let is_break = if b == b'\n' {
            true
        } else if matches!(b, b'.' | b'!' | b'?') {
            while i + 1 < bytes.len() && matches!(bytes[i + 1], b'.' | b'!' | b'?') {
                i += 1;
            }
            i + 1 >= bytes.len() || bytes[i + 1].is_ascii_whitespace()
        } else {
            false
        };
        if is_break {
            push_trimmed(text, start, i + 1, &mut out);
            start = i + 1;
        }
        i += 1;
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<Span>) {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    if lead + trail < s.len() {
        out.push(Span {
            start: start + lead,
            end: end - trail,
        });
    }
}

/// Lower-cased word tokens (letters, digits, inner apostrophes and hyphens) with their
/// byte spans.
pub fn words(text: &str) -> Vec<(Span, String)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let inner = (c == '\'' || c == '’' || c == '-')
            && start.is_some()
            && iter.peek().is_some_and(|(_, n)| n.is_alphanumeric());
        if c.is_alphanumeric() || inner {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push((
                Span { start: s, end: i },
                text[s..i].to_lowercase().replace('’', "'"),
            ));
        }
    }
    if let Some(s) = start {
        out.push((
            Span {
                start: s,
                end: text.len(),
            },
            text[s..].to_lowercase().replace('’', "'"),
        ));
    }
    out
}

/// A light English stemmer: enough to make `delivery`/`deliveries`, `wait`/`waiting`/
/// `waited`, `refund`/`refunds` meet, without a dictionary. Phrases and text go through
/// the same function, so over-stemming is harmless as long as it is consistent.
pub fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s");
    let strip = |suffix: &str, min_rest: usize| -> Option<&str> {
        w.strip_suffix(suffix)
            .filter(|rest| rest.chars().count() >= min_rest)
    };
    let base = if let Some(rest) = strip("ies", 2) {
        format!("{rest}y")
    } else if let Some(rest) = strip("ing", 3).or_else(|| strip("ed", 3)) {
        undouble(rest)
    } else if let Some(rest) = ["ches", "shes", "sses", "xes"]
        .iter()
        .find_map(|s| strip(s, 1).map(|r| (r, *s)))
        .map(|(r, s)| format!("{r}{}", &s[..s.len() - 2]))
    {
        rest
    } else if w.chars().count() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_owned()
    } else {
        w.to_owned()
    };
    // `price`/`priced`, `serve`/`served`: drop a final e so both spellings meet.
    match base.strip_suffix('e') {
        Some(rest) if rest.chars().count() >= 3 => rest.to_owned(),
        _ => base,
    }
}

fn undouble(rest: &str) -> String {
    let b = rest.as_bytes();
    if b.len() >= 2
        && b[b.len() - 1] == b[b.len() - 2]
        && !matches!(b[b.len() - 1], b'l' | b's' | b'z')
    {
        rest[..rest.len() - 1].to_owned()
    } else {
        rest.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_but_not_decimals() {
        let t = "Great food!! Waited 4.5 hours... never again\nThanks";
        let s: Vec<&str> = sentences(t).iter().map(|s| s.of(t)).collect();
        assert_eq!(
            s,
            [
                "Great food!!",
                "Waited 4.5 hours...",
                "never again",
                "Thanks"
            ]
        );
    }

    #[test]
    fn words_keep_contractions() {
        let w: Vec<String> = words("I can't log-in, it's BROKEN")
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(w, ["i", "can't", "log-in", "it's", "broken"]);
    }

    #[test]
    fn stems_meet() {
        for (a, b) in [
            ("deliveries", "delivery"),
            ("waiting", "wait"),
            ("waited", "wait"),
            ("refunds", "refund"),
            ("dishes", "dish"),
            ("shipped", "ship"),
            ("shipping", "ship"),
            ("prices", "price"),
            ("charged", "charge"),
            ("priced", "price"),
            ("tasting", "taste"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} vs {b}");
        }
        assert_eq!(stem("glass"), "glass");
        assert_eq!(stem("menus"), "menu");
    }
}
