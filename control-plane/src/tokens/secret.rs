//! Token secrets: 256 bits from the operating system's random source, written as `gwt_` and 64
//! hex digits, and their SHA-256, which is all the database keeps. A secret that random needs no
//! slow hash: nothing short of the secret itself finds a preimage.

use sha2::{Digest, Sha256};

/// What every generated secret starts with, so that a leaked one is easy to recognise.
pub const PREFIX: &str = "gwt_";

/// The shortest secret accepted from an operator (the first admin token).
pub const MIN_GIVEN_LEN: usize = 32;

/// The longest secret looked up; a longer `Authorization` value is refused without hashing it.
pub const MAX_LEN: usize = 256;

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

/// A new secret.
pub fn generate() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(format!("{PREFIX}{}", hex::encode(bytes)))
}

/// The hex SHA-256 of `secret`, as stored.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Why a secret an operator chose is refused, if it is.
pub fn check_given(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_GIVEN_LEN {
        return Err(format!(
            "is {} characters long; use at least {MIN_GIVEN_LEN} random ones (e.g. `openssl rand -hex 32`)",
            secret.len()
        ));
    }
    if secret.len() > MAX_LEN {
        return Err(format!("is longer than {MAX_LEN} characters"));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".to_owned());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_only_their_hash_is_kept() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64, "{a}");
        assert!(check_given(&a).is_ok());
        let hash = sha256_hex(&a);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&a[PREFIX.len()..]));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn given_secrets_must_be_long_and_plain() {
        assert!(check_given("short").unwrap_err().contains("at least 32"));
        assert!(check_given(&"a b".repeat(20)).is_err());
        assert!(check_given(&"x".repeat(MAX_LEN + 1)).is_err());
        assert!(check_given(&"x".repeat(40)).is_ok());
    }
}
