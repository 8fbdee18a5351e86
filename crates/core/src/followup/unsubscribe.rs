//! One-click unsubscribe (RFC 8058). Every e-mail carries a link whose token says who
//! may opt out of what, and until when, signed with a key only the stack holds: the
//! public route can then record the opt-out without a login, and nobody can opt out
//! someone else by editing the link. The token never holds an address.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ContactChannel;

type HmacSha256 = Hmac<Sha256>;

/// How long a link works: long enough for a customer to find an old mail and use it.
pub const TOKEN_VALID_DAYS: i64 = 180;
/// Longest token accepted, before any decoding work.
pub const MAX_TOKEN_LEN: usize = 512;
/// The MAC is cut to 128 bits: ample against forgery, and the link stays short.
const TAG_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is incomplete or damaged")]
    Malformed,
    #[error("the link was not issued by this service")]
    Invalid,
    #[error("the link has expired")]
    Expired,
}

/// What a verified token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    pub customer_id: String,
    pub channel: ContactChannel,
    pub expires: DateTime<Utc>,
}

fn channel_code(c: ContactChannel) -> &'static str {
    match c {
        ContactChannel::Email => "e",
        ContactChannel::Sms => "s",
    }
}

fn mac(key: &[u8], customer: &str, channel: &str, expires: i64) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    // The purpose first: a cursor or any other MAC under a related key never verifies here.
    m.update(b"feedloop-unsubscribe-v1\0");
    m.update(customer.as_bytes());
    m.update(&[0]);
    m.update(channel.as_bytes());
    m.update(&[0]);
    m.update(expires.to_string().as_bytes());
    m
}

/// `customer.channel.expiry.tag`, URL-safe without escaping.
pub fn issue(key: &[u8], o: &OptOut) -> String {
    let ch = channel_code(o.channel);
    let exp = o.expires.timestamp();
    format!(
        "{}.{ch}.{exp}.{}",
        URL_SAFE_NO_PAD.encode(o.customer_id.as_bytes()),
        URL_SAFE_NO_PAD
            .encode(&mac(key, &o.customer_id, ch, exp).finalize().into_bytes()[..TAG_BYTES])
    )
}

/// The opt-out a token grants, if this key issued it and it has not expired. The tag
/// is checked before the expiry, so an expired link is only called expired when it is
/// genuine.
pub fn verify(key: &[u8], token: &str, now: DateTime<Utc>) -> Result<OptOut, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(c), Some(ch), Some(exp), Some(t), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    let customer = URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(TokenError::Malformed)?;
    let channel = match ch {
        "e" => ContactChannel::Email,
        "s" => ContactChannel::Sms,
        _ => return Err(TokenError::Malformed),
    };
    let expires_at: i64 = exp.parse().map_err(|_| TokenError::Malformed)?;
    let given = URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| TokenError::Malformed)?;
    // verify_truncated_left compares in constant time but accepts any length: a
    // one-byte tag must not pass.
    if given.len() != TAG_BYTES {
        return Err(TokenError::Invalid);
    }
    mac(key, &customer, ch, expires_at)
        .verify_truncated_left(&given)
        .map_err(|_| TokenError::Invalid)?;
    let expires = DateTime::from_timestamp(expires_at, 0).ok_or(TokenError::Malformed)?;
    if expires <= now {
        return Err(TokenError::Expired);
    }
    Ok(OptOut {
        customer_id: customer,
        channel,
        expires,
    })
}

/// Where links point and the key that signs them. `Debug` hides the key.
#[derive(Clone)]
pub struct UnsubscribeLinks {
    /// The public route, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com/unsubscribe`.
    pub url: String,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for UnsubscribeLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsubscribeLinks")
            .field("url", &self.url)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl UnsubscribeLinks {
    /// The link for one customer and channel, valid `TOKEN_VALID_DAYS` from `now`.
    pub fn link(&self, customer_id: &str, channel: ContactChannel, now: DateTime<Utc>) -> String {
        let token = issue(
            &self.key,
            &OptOut {
                customer_id: customer_id.to_owned(),
                channel,
                expires: now + Duration::days(TOKEN_VALID_DAYS),
            },
        );
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}token={token}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn grant(customer: &str) -> OptOut {
        OptOut {
            customer_id: customer.into(),
            channel: ContactChannel::Email,
            expires: now() + Duration::days(10),
        }
    }

    #[test]
    fn a_token_verifies_and_says_who_and_what() {
        let t = issue(b"key-1", &grant("cust/ä 1"));
        assert!(t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        assert_eq!(verify(b"key-1", &t, now()), Ok(grant("cust/ä 1")));
    }

    #[test]
    fn edited_foreign_expired_and_damaged_tokens_are_refused() {
        let t = issue(b"key-1", &grant("c1"));
        assert_eq!(verify(b"key-2", &t, now()), Err(TokenError::Invalid));
        // Another customer, another channel, a later expiry: each breaks the tag.
        let parts: Vec<&str> = t.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode("c2");
        for forged in [
            format!("{other}.{}.{}.{}", parts[1], parts[2], parts[3]),
            format!("{}.s.{}.{}", parts[0], parts[2], parts[3]),
            format!("{}.{}.99999999999.{}", parts[0], parts[1], parts[3]),
        ] {
            assert_eq!(
                verify(b"key-1", &forged, now()),
                Err(TokenError::Invalid),
                "{forged}"
            );
        }
        assert_eq!(
            verify(b"key-1", &t, now() + Duration::days(11)),
            Err(TokenError::Expired)
        );
        for bad in [
            "",
            "a.b.c",
            "a.x.1.b",
            "!!.e.1.AA",
            &"a".repeat(600),
            "YQ.e.1.AA.x",
        ] {
            assert_eq!(
                verify(b"key-1", bad, now()),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn links_carry_the_token_and_hide_the_key() {
        let l = UnsubscribeLinks {
            url: "https://x.example/unsubscribe".into(),
            key: b"secret-key".to_vec(),
        };
        let link = l.link("c1", ContactChannel::Email, now());
        let token = link
            .strip_prefix("https://x.example/unsubscribe?token=")
            .unwrap();
        let o = verify(b"secret-key", token, now()).unwrap();
        assert_eq!(o.customer_id, "c1");
        assert_eq!(o.expires, now() + Duration::days(TOKEN_VALID_DAYS));
        assert!(!format!("{l:?}").contains("secret-key"));
    }
}
