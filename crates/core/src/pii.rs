//! PII redaction for the excerpt kept on a profile: contact data and card numbers do not
//! need to live in a table that analysts query and export.

use std::sync::OnceLock;

use regex::Regex;

struct Patterns {
    email: Regex,
    card: Regex,
    phone: Regex,
    date: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        email: Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
            .expect("valid regex"),
        // 13 to 19 digits, optionally grouped by spaces or dashes: every card scheme.
        card: Regex::new(r"\b\d(?:[ \-]?\d){12,18}\b").expect("valid regex"),
        // 7+ digits with the usual separators, optionally international.
        phone: Regex::new(r"(?:\+|\b00)?\d[\d \-().]{5,}\d\b").expect("valid regex"),
        date: Regex::new(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})$")
            .expect("valid regex"),
    })
}

/// Replace e-mail addresses, card-like numbers and phone numbers by placeholders.
pub fn redact(text: &str) -> String {
    let p = patterns();
    let t = p.email.replace_all(text, "[email]");
    let t = p.card.replace_all(&t, "[card]");
    p.phone
        .replace_all(&t, |c: &regex::Captures| {
            let m = &c[0];
            if m.chars().filter(char::is_ascii_digit).count() >= 7 && !p.date.is_match(m) {
                "[phone]".to_owned()
            } else {
                m.to_owned()
            }
        })
        .into_owned()
}

/// The stored excerpt: redacted, at most `max_chars` characters, cut at a word boundary.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let redacted = redact(text);
    if redacted.chars().count() <= max_chars {
        return redacted;
    }
    let cut: String = redacted.chars().take(max_chars).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > max_chars / 2 => &cut[..i],
        _ => &cut,
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_contact_data_and_cards() {
        let t = "Mail me at jane.doe+shop@example.co.uk or call +44 20 7946 0958 / 07700 900123. \
                 Card 4111 1111 1111 1111 was charged twice, order 5521.";
        let r = redact(t);
        assert_eq!(
            r,
            "Mail me at [email] or call [phone] / [phone]. Card [card] was charged twice, order 5521."
        );
    }

    #[test]
    fn keeps_prices_dates_and_short_numbers() {
        let t = "Paid $49.99 on 2026-11-20 for 2 items, waited 45 minutes.";
        assert_eq!(redact(t), t);
    }

    #[test]
    fn excerpt_is_bounded() {
        let e = excerpt(&"word ".repeat(100), 50);
        assert!(e.chars().count() <= 51 && e.ends_with('…'));
    }
}
