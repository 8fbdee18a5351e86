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

/// Every key under which a customer may be suppressed: the id, and the e-mail and
/// phone when known.
pub fn keys(salt: &str, customer_id: &str, contact: Option<&CustomerInfo>) -> Vec<String> {
    let mut out = vec![hash(salt, "id", customer_id)];
    if let Some(c) = contact {
        if let Some(e) = &c.email {
            out.push(email_key(salt, e));
        }
        if let Some(p) = &c.phone {
            out.push(phone_key(salt, p));
        }
    }
    out
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
