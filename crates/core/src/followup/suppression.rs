//! The suppression list holds no personal data: only salted SHA-256 hashes of the
//! customer id and contact addresses. It outlives an erasure, so an erased or
//! unsubscribed customer is recognised (and never contacted) if they show up again,
//! while the list itself cannot be read back into ids or addresses without the salt.

use sha2::{Digest, Sha256};

use crate::envelope::CustomerInfo;

fn hash(salt: &str, kind: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(kind.as_bytes());
    h.update(b":");
    h.update(value.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of one e-mail address (trimmed, lower-cased): what a bounce, a complaint
/// or a rejected send suppresses, whichever customer record the address is on.
pub fn email_key(salt: &str, email: &str) -> String {
    hash(salt, "email", &email.trim().to_lowercase())
}

/// The key of one phone number (as stored, E.164).
pub fn phone_key(salt: &str, phone: &str) -> String {
    hash(salt, "phone", phone.trim())
}

/// The key of a customer id: what an erasure suppresses (every channel).
pub fn id_key(salt: &str, customer_id: &str) -> String {
    hash(salt, "id", customer_id)
}

/// Every key under which a customer may be suppressed: the id, and the e-mail and
/// phone when known.
pub fn keys(salt: &str, customer_id: &str, contact: Option<&CustomerInfo>) -> Vec<String> {
    ChannelKeys::of(salt, customer_id, contact).all()
}

/// A customer's keys by what they stop: the id every channel, an address its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelKeys {
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl ChannelKeys {
    pub fn of(salt: &str, customer_id: &str, contact: Option<&CustomerInfo>) -> ChannelKeys {
        ChannelKeys {
            id: id_key(salt, customer_id),
            email: contact
                .and_then(|c| c.email.as_deref())
                .map(|e| email_key(salt, e)),
            phone: contact
                .and_then(|c| c.phone.as_deref())
                .map(|p| phone_key(salt, p)),
        }
    }

    pub fn all(&self) -> Vec<String> {
        std::iter::once(self.id.clone())
            .chain(self.email.clone())
            .chain(self.phone.clone())
            .collect()
    }

    /// What the keys found on the list stop.
    pub fn suppressed(&self, found: &[String]) -> Suppressed {
        let on = |k: &Option<String>| k.as_ref().is_some_and(|k| found.contains(k));
        Suppressed {
            customer: found.contains(&self.id),
            email: on(&self.email),
            sms: on(&self.phone),
        }
    }
}

/// Which of a customer's contacts are on the suppression list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Suppressed {
    /// The customer id (an erasure): nobody contacts them on any channel.
    pub customer: bool,
    /// The current e-mail address (a hard bounce, a complaint, an unsubscribe).
    pub email: bool,
    /// The current phone number (a refused number, an SMS opt-out).
    pub sms: bool,
}

impl Suppressed {
    pub fn channel(&self, ch: super::ContactChannel) -> bool {
        match ch {
            super::ContactChannel::Email => self.email,
            super::ContactChannel::Sms => self.sms,
        }
    }
}

/// The keys an erasure puts on the list: the id, and every address the profile ever
/// held (an address the customer changed away from is theirs too).
pub fn erasure_keys(
    salt: &str,
    customer_id: &str,
    contact: Option<&CustomerInfo>,
    past_addresses: &[String],
) -> Vec<String> {
    let mut out = keys(salt, customer_id, contact);
    for a in past_addresses {
        let k = if a.contains('@') {
            email_key(salt, a)
        } else {
            phone_key(salt, a)
        };
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// Reasons that record a customer's own wish (an unsubscribe, a complaint): only
/// staff, or a confirmed opt-in, may lift them. A bounce or a refused address is the
/// provider's verdict and is never lifted by consent.
pub const UNSUBSCRIBED: &str = "unsubscribed";
pub const COMPLAINED: &str = "complaint";

pub fn liftable_by_consent(reason: &str) -> bool {
    reason == UNSUBSCRIBED || reason.starts_with(COMPLAINED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_salted_normalised_and_free_of_the_values() {
        let c = CustomerInfo {
            email: Some(" Ada@Example.com ".into()),
            phone: Some("+447700900123".into()),
            ..Default::default()
        };
        let k = keys("salt-1", "c-42", Some(&c));
        assert_eq!(k.len(), 3);
        assert!(k.iter().all(|h| h.len() == 64 && !h.contains("c-42")));
        let lower = CustomerInfo {
            email: Some("ada@example.com".into()),
            ..Default::default()
        };
        assert_eq!(keys("salt-1", "other", Some(&lower))[1], k[1]);
        assert_ne!(keys("salt-2", "c-42", None)[0], k[0]);
    }
}
