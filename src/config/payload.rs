//! The payload codec's keys (`PAYLOAD_ENCRYPTION_KEY`, its id, and the
//! keys kept for reading after a rotation), checked while settings load.

use std::fmt;

use sha2::{Digest, Sha256};

use super::{ConfigError, TemporalSettings};

/// SHA-256 (hex) of the 32 bytes of every payload key that ships in this
/// repository (compose.yaml's development default; .env.example, the k8s
/// examples and config/ ship none). Public, so refused outside development
/// (`Settings::check_secrets`). `tests/abuse_secrets.rs` scans the shipped
/// files and fails on a key missing here: add its fingerprint
/// (`echo -n KEY | base64 -d | sha256sum`) when a file ships a new one.
pub const SHIPPED_PAYLOAD_KEYS: &[&str] = &[
    // compose.yaml (PAYLOAD_ENCRYPTION_KEY's default), .env.example before.
    "b99f94d44cbd7971c62342b0bdfe2df67b6c3e164d142d36126bce07d3c0b87d",
];

/// Fewer distinct byte values than this in 32 bytes is no random key: 32
/// random bytes have about 30, and fewer than 16 happens with odds far
/// below 1 in 10^20.
const MIN_DISTINCT_BYTES: usize = 16;

/// Why a key is not fit outside development.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weakness {
    /// It ships in the repository: anyone can read it.
    Shipped,
    /// Its bytes are text, or too few distinct values: a password or a
    /// pattern, not `openssl rand -base64 32`.
    NotRandom,
}

impl Weakness {
    pub fn describe(self) -> &'static str {
        match self {
            Weakness::Shipped => "is a key that ships in the repository, which anyone can read",
            Weakness::NotRandom => {
                "is not 32 random bytes (it is text or a pattern, which can be guessed)"
            }
        }
    }
}

/// An AES-256 key for Temporal payloads and the id written next to what it
/// encrypts, so a payload names the key that opens it.
#[derive(Clone, PartialEq, Eq)]
pub struct PayloadKey {
    pub id: String,
    pub key: [u8; 32],
}

impl fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PayloadKey({:?}, [redacted])", self.id)
    }
}

impl PayloadKey {
    /// The SHA-256 of the key's bytes, hex: what [`SHIPPED_PAYLOAD_KEYS`]
    /// lists.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.key)
    }

    /// Why this key must not encrypt outside development, if it must not.
    pub fn weakness(&self) -> Option<Weakness> {
        if SHIPPED_PAYLOAD_KEYS.contains(&self.fingerprint().as_str()) {
            return Some(Weakness::Shipped);
        }
        let text = self.key.iter().all(|b| (0x20..=0x7e).contains(b));
        let mut seen = [false; 256];
        for b in self.key {
            seen[usize::from(b)] = true;
        }
        let distinct = seen.iter().filter(|s| **s).count();
        (text || distinct < MIN_DISTINCT_BYTES).then_some(Weakness::NotRandom)
    }
}

/// SHA-256 of `key`, hex.
pub fn fingerprint(key: &[u8]) -> String {
    Sha256::digest(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keys of the payload codec: `encrypt` (`PAYLOAD_ENCRYPTION_KEY` under
/// `PAYLOAD_ENCRYPTION_KEY_ID`) encrypts what this process sends and, with
/// every key of `PAYLOAD_DECRYPTION_KEYS` (`id:key,...`, keys kept after a
/// rotation), decrypts what it reads. No key, or encryption switched off
/// (`PAYLOAD_ENCRYPTION=false`): payloads are sent plain.
#[derive(Clone, Debug, Default)]
pub struct PayloadKeys {
    pub encrypt: Option<PayloadKey>,
    pub decrypt: Vec<PayloadKey>,
}

impl TemporalSettings {
    /// The payload keys, checked: base64 of 32 bytes, ids without `,` `:`
    /// or spaces, one key per id.
    pub fn payload_keys(&self) -> Result<PayloadKeys, ConfigError> {
        let id = self.payload_encryption_key_id.trim();
        let encrypt = match self.payload_encryption_key.expose().trim() {
            "" => None,
            key => Some(payload_key(id, key, "PAYLOAD_ENCRYPTION_KEY")?),
        };
        let mut decrypt: Vec<PayloadKey> = encrypt.iter().cloned().collect();
        // Switched off, the key still opens what it encrypted before.
        let encrypt = encrypt.filter(|_| self.payload_encryption);
        let listed = self.payload_decryption_keys.expose().split(',');
        for entry in listed.map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry.split_once(':').ok_or_else(|| {
                ConfigError::Invalid(
                    "PAYLOAD_DECRYPTION_KEYS must be a list of id:base64key, comma-separated"
                        .into(),
                )
            })?;
            let key = payload_key(id.trim(), key.trim(), "PAYLOAD_DECRYPTION_KEYS")?;
            match decrypt.iter().find(|k| k.id == key.id) {
                Some(known) if known.key != key.key => {
                    return Err(ConfigError::Invalid(format!(
                        "payload key id {:?} is given twice with different keys",
                        key.id
                    )));
                }
                Some(_) => {}
                None => decrypt.push(key),
            }
        }
        Ok(PayloadKeys { encrypt, decrypt })
    }
}

fn payload_key(id: &str, key: &str, var: &str) -> Result<PayloadKey, ConfigError> {
    use base64::Engine;
    let id_ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b',' | b':'));
    if !id_ok {
        let id_var = match var {
            "PAYLOAD_ENCRYPTION_KEY" => "PAYLOAD_ENCRYPTION_KEY_ID",
            other => other,
        };
        return Err(ConfigError::Invalid(format!(
            "payload key id {id:?} ({id_var}) must be 1-64 printable characters without ',' or ':'"
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| {
            ConfigError::Invalid(format!(
                "{var} (key id {id:?}) is not base64; make one with `openssl rand -base64 32`"
            ))
        })?;
    let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        ConfigError::Invalid(format!(
            "{var} (key id {id:?}) must be 32 bytes (AES-256), base64-encoded; it is {} bytes",
            b.len()
        ))
    })?;
    Ok(PayloadKey {
        id: id.to_string(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(bytes: [u8; 32]) -> PayloadKey {
        PayloadKey {
            id: "k".into(),
            key: bytes,
        }
    }

    #[test]
    fn the_compose_key_is_known_as_shipped() {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode("DdETYdFSeu1cCmRA4WzFgSiO6Sir0iWdZWwgMGDUkpo=")
            .unwrap();
        let shipped = key(bytes.try_into().unwrap());
        assert_eq!(shipped.weakness(), Some(Weakness::Shipped));
    }

    #[test]
    fn text_and_patterns_are_not_random() {
        assert_eq!(key([0; 32]).weakness(), Some(Weakness::NotRandom));
        assert_eq!(
            key(*b"my-payload-key-is-a-sentence-123").weakness(),
            Some(Weakness::NotRandom)
        );
        let mut pattern = [0u8; 32];
        for (i, b) in pattern.iter_mut().enumerate() {
            *b = 0x80 + (i % 8) as u8;
        }
        assert_eq!(key(pattern).weakness(), Some(Weakness::NotRandom));
        let mut counting = [0u8; 32];
        for (i, b) in counting.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        assert_eq!(key(counting).weakness(), None);
    }

    #[test]
    fn random_keys_pass() {
        // Seeded, so a failure reproduces; 32 random bytes pass every time.
        use rand::{Rng, SeedableRng};
        let seed = 24_006;
        println!("seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..1000 {
            let mut bytes = [0u8; 32];
            rng.fill(&mut bytes);
            assert_eq!(key(bytes).weakness(), None, "{bytes:?}");
        }
    }
}
