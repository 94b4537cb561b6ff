//! Operators: their names, password hashes (argon2id, the `argon2` crate's
//! PHC strings) and session tokens. Storage is `store::ops`; the HTTP side
//! (cookie, guard, routes) is `api::ops`.
//!
//! A session token is 32 random bytes (base64url) held only by the
//! operator's browser; Postgres keeps its SHA-256, so a database read
//! never yields a usable session. Neither a password nor a token is ever
//! logged: [`Password`] and [`Token`] print as `***`.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Longest password accepted (argon2 takes any length; a bound keeps a
/// sign-in from being a hashing denial of service).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password `operator add` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// An operator name: 1–64 of letters, digits, `.`, `_`, `@`, `-`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// A password in memory; never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The argon2id hash of a password (PHC string, salt and parameters in it).
pub fn hash_password(password: &Password) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` is the one `hash` was made from.
pub fn verify_password(password: &Password, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    password.expose().len() <= MAX_PASSWORD_BYTES
        && Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok()
}

/// A hash no password matches, verified against when the name is unknown,
/// so a sign-in takes as long whether or not the operator exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        hash_password(&Password::new(hex(&bytes))).unwrap_or_default()
    })
}

/// A session token: the cookie's value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A new random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token as a cookie brought it, if it can be one.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What Postgres stores: the token's SHA-256, hex.
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_argon2id_hash_only() {
        let password = Password::new("correct horse battery staple");
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password(&password, &hash));
        assert!(!verify_password(&Password::new("wrong"), &hash));
        assert!(!verify_password(&password, "not a hash"));
        assert!(!verify_password(&password, decoy_hash()));
    }

    #[test]
    fn tokens_are_random_parse_back_and_never_print() {
        let (a, b) = (Token::generate(), Token::generate());
        assert_ne!(a, b);
        assert_eq!(Token::parse(a.expose()), Some(a.clone()));
        assert_eq!(Token::parse("short"), None);
        assert_eq!(a.digest().len(), 64);
        assert_eq!(format!("{a:?}"), "Token(***)");
        assert_eq!(format!("{:?}", Password::new("secret")), "Password(***)");
    }

    #[test]
    fn operator_names_are_short_and_plain() {
        for ok in ["ada", "ops.lead", "a_b-c@example"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
