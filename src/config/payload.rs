//! The payload codec's keys (`PAYLOAD_ENCRYPTION_KEY`, its id, and the
//! keys kept for reading after a rotation), checked while settings load.

use std::fmt;

use super::{ConfigError, TemporalSettings};

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
