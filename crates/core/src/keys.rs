//! The stack's keys. One random secret (Secrets Manager, generated at deploy, never in
//! the template or the table) and, derived from it with HMAC under distinct labels,
//! one key per use: the suppression list's salt, the pagination cursors' key, the
//! unsubscribe links' key. Knowing one derived key tells nothing of the others or of
//! the secret, and rotating the secret changes them all (see the README for what that
//! costs: the suppression list's hashes no longer match).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shortest secret accepted: the template generates 64 characters.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the stack secret is {0} characters; at least {MIN_SECRET_LEN} are needed")]
    TooShort(usize),
}

/// `Debug` shows no key material.
#[derive(Clone, PartialEq, Eq)]
pub struct StackKeys {
    pub suppression_salt: String,
    pub cursor_key: Vec<u8>,
    pub unsubscribe_key: Vec<u8>,
}

impl std::fmt::Debug for StackKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StackKeys(<redacted>)")
    }
}

fn derive(secret: &str, label: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(label.as_bytes());
    m.finalize().into_bytes().to_vec()
}

impl StackKeys {
    pub fn derive(secret: &str) -> Result<StackKeys, KeyError> {
        let secret = secret.trim();
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort(secret.len()));
        }
        let salt = derive(secret, "feedloop/suppression-salt/v1");
        Ok(StackKeys {
            suppression_salt: salt.iter().map(|b| format!("{b:02x}")).collect(),
            cursor_key: derive(secret, "feedloop/cursor/v1"),
            unsubscribe_key: derive(secret, "feedloop/unsubscribe/v1"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_per_use_and_per_secret_and_stay_hidden() {
        let a = StackKeys::derive("a".repeat(40).as_str()).unwrap();
        let b = StackKeys::derive("b".repeat(40).as_str()).unwrap();
        assert_eq!(a, StackKeys::derive("a".repeat(40).as_str()).unwrap());
        assert_ne!(a.cursor_key, a.unsubscribe_key);
        assert_ne!(a.suppression_salt.as_bytes(), a.cursor_key.as_slice());
        assert_ne!(a.suppression_salt, b.suppression_salt);
        assert_eq!(a.suppression_salt.len(), 64);
        assert_eq!(format!("{a:?}"), "StackKeys(<redacted>)");
        assert_eq!(StackKeys::derive("short"), Err(KeyError::TooShort(5)));
    }
}
