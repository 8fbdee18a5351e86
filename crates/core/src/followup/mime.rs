//! The e-mail as it goes on the wire (RFC 5322 + MIME). Built here rather than by
//! SES's "simple" form so the one-click unsubscribe headers (RFC 8058) are in the
//! message itself, whatever the provider passes through, and a test can read them
//! back. Everything is 7-bit: the subject as RFC 2047 encoded words, both parts in
//! base64, so no server re-encodes it and no byte of customer text can start a header.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::templates::RenderedEmail;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    #[error("the {0} address contains a line break or is empty")]
    BadAddress(&'static str),
    #[error("the unsubscribe link contains characters a header cannot carry")]
    BadLink,
}

fn check_address(kind: &'static str, a: &str) -> Result<(), MimeError> {
    if a.trim().is_empty() || a.chars().any(|c| c.is_control()) {
        return Err(MimeError::BadAddress(kind));
    }
    Ok(())
}

/// `Subject:` value: verbatim when it is printable ASCII, else encoded words of at most
/// 45 bytes of UTF-8 each (60 base64 characters: the line stays under 78).
fn subject_header(s: &str) -> String {
    if s.chars().all(|c| c == ' ' || c.is_ascii_graphic()) && s.len() <= 900 {
        return s.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars().filter(|c| !c.is_control()) {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn base64_lines(s: &str) -> String {
    let b = STANDARD.encode(s.as_bytes());
    let mut out = String::with_capacity(b.len() + b.len() / 38);
    for line in b.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// Who a message is from, and where the customer's answer goes: a reply to an apology
/// must reach a person, not the sending identity.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub from: &'a str,
    pub reply_to: Option<&'a str>,
}

impl<'a> Sender<'a> {
    pub fn new(from: &'a str) -> Sender<'a> {
        Sender {
            from,
            reply_to: None,
        }
    }
}

/// The whole message: headers, and a multipart/alternative body with the text and the
/// HTML part. The boundary derives from the content, so the same e-mail always gives
/// the same bytes; base64 never contains `=_`, so the boundary cannot occur inside.
pub fn raw_email(sender: &Sender, to: &str, email: &RenderedEmail) -> Result<String, MimeError> {
    let from = sender.from;
    check_address("sender", from)?;
    check_address("recipient", to)?;
    if let Some(r) = sender.reply_to {
        check_address("reply-to", r)?;
    }
    let digest = Sha256::digest(format!("{to}\0{}\0{}", email.text, email.html).as_bytes());
    let boundary = format!(
        "=_feedloop_{}",
        digest[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut m = String::new();
    m.push_str(&format!("From: {from}\r\nTo: {to}\r\n"));
    if let Some(r) = sender.reply_to {
        m.push_str(&format!("Reply-To: {r}\r\n"));
    }
    m.push_str(&format!("Subject: {}\r\n", subject_header(&email.subject)));
    m.push_str("MIME-Version: 1.0\r\n");
    if let Some(url) = &email.unsubscribe_url {
        if !url.chars().all(|c| c.is_ascii_graphic()) || url.contains(['<', '>']) {
            return Err(MimeError::BadLink);
        }
        // The mailto: alternative is for clients without one-click; it reaches the
        // people behind Reply-To, who record the opt-out (`feedloop consent`).
        match sender.reply_to {
            Some(r) => m.push_str(&format!(
                "List-Unsubscribe: <{url}>, <mailto:{r}?subject=unsubscribe>\r\n"
            )),
            None => m.push_str(&format!("List-Unsubscribe: <{url}>\r\n")),
        }
        m.push_str("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    }
    m.push_str(&format!(
        "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
    ));
    for (kind, body) in [("plain", &email.text), ("html", &email.html)] {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/{kind}; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        m.push_str(&base64_lines(body));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message from care@acme.test (no reply-to).
    fn from_care(to: &str, email: &RenderedEmail) -> Result<String, MimeError> {
        raw_email(&Sender::new("care@acme.test"), to, email)
    }

    fn mail(subject: &str, link: Option<&str>) -> RenderedEmail {
        RenderedEmail {
            variant: "a".into(),
            subject: subject.into(),
            text: "Hi Zoë,\nthanks.".into(),
            html: "<p>Hi Zoë</p>".into(),
            unsubscribe_url: link.map(str::to_owned),
        }
    }

    fn decode_part(raw: &str, kind: &str) -> String {
        let start = raw
            .find(&format!("Content-Type: text/{kind}"))
            .expect("part");
        let body = &raw[start..];
        let body = &body[body.find("\r\n\r\n").unwrap() + 4..];
        let body: String = body.lines().take_while(|l| !l.starts_with("--")).collect();
        String::from_utf8(STANDARD.decode(body).unwrap()).unwrap()
    }

    #[test]
    fn replies_go_to_the_reply_to_address_which_also_takes_unsubscribes() {
        let sender = Sender {
            from: "no-reply@acme.test",
            reply_to: Some("care@acme.test"),
        };
        let raw = raw_email(
            &sender,
            "ada@example.com",
            &mail("Sorry", Some("https://x.example/u?t=1")),
        )
        .unwrap();
        assert!(raw.contains("\r\nReply-To: care@acme.test\r\n"));
        assert!(raw.contains(
            "\r\nList-Unsubscribe: <https://x.example/u?t=1>, <mailto:care@acme.test?subject=unsubscribe>\r\n"
        ));
        let bad = Sender {
            reply_to: Some("care@acme.test\r\nBcc: x@y.z"),
            ..sender
        };
        assert!(raw_email(&bad, "ada@example.com", &mail("x", None)).is_err());
    }

    #[test]
    fn the_message_carries_one_click_headers_and_both_parts() {
        let raw = from_care(
            "ada@example.com",
            &mail(
                "Sorry, Ada",
                Some("https://x.example/unsubscribe?token=abc.e.1.t"),
            ),
        )
        .unwrap();
        assert!(raw.is_ascii());
        assert!(raw
            .contains("\r\nList-Unsubscribe: <https://x.example/unsubscribe?token=abc.e.1.t>\r\n"));
        assert!(raw.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains("\r\nSubject: Sorry, Ada\r\n"));
        assert_eq!(decode_part(&raw, "plain"), "Hi Zoë,\nthanks.");
        assert_eq!(decode_part(&raw, "html"), "<p>Hi Zoë</p>");
        assert!(raw.lines().all(|l| l.len() <= 998));
        // No link, no headers.
        let raw = from_care("ada@example.com", &mail("x", None)).unwrap();
        assert!(!raw.contains("List-Unsubscribe"));
    }

    #[test]
    fn non_ascii_subjects_are_encoded_words_and_line_breaks_cannot_inject_headers() {
        let subject = "Désolé — nous réparons ça aujourd'hui, promis, vraiment vraiment";
        let raw = from_care("a@b.c", &mail(subject, None)).unwrap();
        let header = raw.split("\r\nSubject: ").nth(1).unwrap();
        let header = &header[..header.find("\r\nMIME-Version").unwrap()];
        let decoded: String = header
            .split("\r\n ")
            .map(|w| {
                let b64 = w
                    .strip_prefix("=?UTF-8?B?")
                    .unwrap()
                    .strip_suffix("?=")
                    .unwrap();
                String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(decoded, subject);
        // A subject with a line break is encoded, never a new header.
        let raw = from_care("a@b.c", &mail("Hi\r\nBcc: x@y.z", None)).unwrap();
        assert!(!raw.contains("\r\nBcc:"));
        assert_eq!(
            from_care("a@b.c\r\nBcc: x@y.z", &mail("x", None)),
            Err(MimeError::BadAddress("recipient"))
        );
        assert_eq!(
            raw_email(
                &Sender::new("c@a.t"),
                "a@b.c",
                &mail("x", Some("https://x/u?t=a b"))
            ),
            Err(MimeError::BadLink)
        );
    }
}
