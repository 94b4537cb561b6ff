//! The payload codec: every payload flightctl sends to Temporal (workflow and
//! activity inputs and results, update arguments and answers, query answers,
//! memos; not search attributes, which the server must read) is encrypted with
//! AES-256-GCM, so no payment code or order is readable in Temporal's history
//! or UI. The client (`serve`) and the worker use the same codec
//! (`temporal::data_converter`); the SDK applies it to everything they send
//! and receive.
//!
//! Format, as in Temporal's encryption samples: metadata `encoding:
//! binary/encrypted` and `encryption-key-id: <id>`; data = a random 96-bit
//! nonce followed by the AES-GCM ciphertext (and tag) of the original
//! `Payload`, protobuf-encoded. Decoding opens payloads of any configured key
//! id (rotation keeps old keys for reading) and passes payloads that are not
//! encrypted through unchanged, so histories written before encryption still
//! replay.

use std::collections::HashMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use futures::future::BoxFuture;
use prost::Message;
use temporalio_common::data_converters::{
    PayloadCodec, PayloadConversionError, SerializationContextData,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;

use crate::config::PayloadKeys;

/// Metadata key naming a payload's encoding.
pub const ENCODING: &str = "encoding";
/// The encoding of an encrypted payload.
pub const ENCRYPTED: &[u8] = b"binary/encrypted";
/// Metadata key naming the key that encrypted a payload.
pub const KEY_ID: &str = "encryption-key-id";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why a payload could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(
        "the payload is encrypted with key id {0:?}, which is not configured \
         (PAYLOAD_ENCRYPTION_KEY_ID or PAYLOAD_DECRYPTION_KEYS)"
    )]
    UnknownKey(String),
    #[error("the payload is marked binary/encrypted but has no readable {KEY_ID} metadata")]
    MissingKeyId,
    #[error("the payload cannot be decrypted with key id {0:?}: wrong key or altered data")]
    Undecryptable(String),
    #[error("the decrypted payload is not a Temporal payload: {0}")]
    NotAPayload(#[from] prost::DecodeError),
    #[error("encryption failed")]
    Encrypt,
}

/// Encrypts with the current key, decrypts with any configured one. Cheap to
/// clone.
#[derive(Clone, Default)]
pub struct Cipher {
    encrypt: Option<(String, Aes256Gcm)>,
    decrypt: Arc<HashMap<String, Aes256Gcm>>,
}

impl Cipher {
    pub fn new(keys: &PayloadKeys) -> Self {
        let cipher = |key: &[u8; 32]| Aes256Gcm::new(key.into());
        Self {
            encrypt: keys
                .encrypt
                .as_ref()
                .map(|k| (k.id.clone(), cipher(&k.key))),
            decrypt: Arc::new(
                keys.decrypt
                    .iter()
                    .map(|k| (k.id.clone(), cipher(&k.key)))
                    .collect(),
            ),
        }
    }

    /// The key id payloads are encrypted with; `None` sends them plain.
    pub fn key_id(&self) -> Option<&str> {
        self.encrypt.as_ref().map(|(id, _)| id.as_str())
    }

    /// Encrypt one payload with the current key (unchanged without one).
    pub fn encode_one(&self, payload: Payload) -> Result<Payload, CodecError> {
        let Some((id, cipher)) = &self.encrypt else {
            return Ok(payload);
        };
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                payload.encode_to_vec().as_slice(),
            )
            .map_err(|_| CodecError::Encrypt)?;
        let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        Ok(Payload {
            metadata: HashMap::from([
                (ENCODING.to_string(), ENCRYPTED.to_vec()),
                (KEY_ID.to_string(), id.as_bytes().to_vec()),
            ]),
            data,
            ..Default::default()
        })
    }

    /// Decrypt one payload; one that is not encrypted is returned as it is.
    pub fn decode_one(&self, payload: Payload) -> Result<Payload, CodecError> {
        if payload.metadata.get(ENCODING).map(Vec::as_slice) != Some(ENCRYPTED) {
            return Ok(payload);
        }
        let id = payload
            .metadata
            .get(KEY_ID)
            .and_then(|id| std::str::from_utf8(id).ok())
            .ok_or(CodecError::MissingKeyId)?;
        let cipher = self
            .decrypt
            .get(id)
            .ok_or_else(|| CodecError::UnknownKey(id.to_string()))?;
        let undecryptable = || CodecError::Undecryptable(id.to_string());
        if payload.data.len() < NONCE_LEN + TAG_LEN {
            return Err(undecryptable());
        }
        let (nonce, sealed) = payload.data.split_at(NONCE_LEN);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| undecryptable())?;
        Ok(Payload::decode(plain.as_slice())?)
    }

    pub fn encode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads.into_iter().map(|p| self.encode_one(p)).collect()
    }

    pub fn decode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads.into_iter().map(|p| self.decode_one(p)).collect()
    }
}

fn ready(
    result: Result<Vec<Payload>, CodecError>,
) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
    let result = result.map_err(|e| PayloadConversionError::EncodingError(Box::new(e)));
    Box::pin(futures::future::ready(result))
}

impl PayloadCodec for Cipher {
    fn encode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        ready(Cipher::encode(self, payloads))
    }

    fn decode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        ready(Cipher::decode(self, payloads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PayloadKey;

    fn key(id: &str, byte: u8) -> PayloadKey {
        PayloadKey {
            id: id.into(),
            key: [byte; 32],
        }
    }

    fn cipher(current: Option<PayloadKey>, old: &[PayloadKey]) -> Cipher {
        let mut decrypt: Vec<PayloadKey> = current.iter().cloned().collect();
        decrypt.extend_from_slice(old);
        Cipher::new(&PayloadKeys {
            encrypt: current,
            decrypt,
        })
    }

    fn json(text: &str) -> Payload {
        Payload {
            metadata: HashMap::from([(ENCODING.to_string(), b"json/plain".to_vec())]),
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn an_encrypted_payload_hides_its_content_and_decodes_back() {
        let c = cipher(Some(key("k1", 1)), &[]);
        let plain = json(r#"{"code":"47291"}"#);
        let sealed = c.encode_one(plain.clone()).unwrap();
        assert_eq!(sealed.metadata[ENCODING], ENCRYPTED);
        assert_eq!(sealed.metadata[KEY_ID], b"k1");
        assert!(!contains(&sealed.data, b"47291"));
        assert!(!contains(&sealed.data, b"json/plain"));
        assert_eq!(c.decode_one(sealed).unwrap(), plain);
    }

    #[test]
    fn each_encryption_uses_a_fresh_nonce() {
        let c = cipher(Some(key("k1", 1)), &[]);
        let a = c.encode_one(json("1")).unwrap();
        let b = c.encode_one(json("1")).unwrap();
        assert_ne!(a.data, b.data);
    }

    #[test]
    fn plain_payloads_pass_through_decoding() {
        let c = cipher(Some(key("k1", 1)), &[]);
        let plain = json(r#""CONFIRMED""#);
        assert_eq!(c.decode_one(plain.clone()).unwrap(), plain);
        assert_eq!(
            c.decode_one(Payload::default()).unwrap(),
            Payload::default()
        );
    }

    #[test]
    fn without_a_key_payloads_stay_plain() {
        let c = Cipher::default();
        assert_eq!(c.key_id(), None);
        assert_eq!(c.encode_one(json("1")).unwrap(), json("1"));
    }

    #[test]
    fn an_old_key_still_decodes_after_a_rotation() {
        let before = cipher(Some(key("k1", 1)), &[]);
        let sealed = before.encode_one(json("1")).unwrap();
        let after = cipher(Some(key("k2", 2)), &[key("k1", 1)]);
        assert_eq!(after.decode_one(sealed.clone()).unwrap(), json("1"));
        assert_eq!(after.encode_one(json("1")).unwrap().metadata[KEY_ID], b"k2");
        let forgot = cipher(Some(key("k2", 2)), &[]);
        let err = forgot.decode_one(sealed).unwrap_err();
        assert!(
            matches!(&err, CodecError::UnknownKey(id) if id == "k1"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_key_or_altered_data_is_refused() {
        let sealed = cipher(Some(key("k1", 1)), &[])
            .encode_one(json("1"))
            .unwrap();
        let impostor = cipher(Some(key("k1", 9)), &[]);
        assert!(matches!(
            impostor.decode_one(sealed.clone()),
            Err(CodecError::Undecryptable(_))
        ));
        let mut altered = sealed.clone();
        *altered.data.last_mut().unwrap() ^= 1;
        let c = cipher(Some(key("k1", 1)), &[]);
        assert!(matches!(
            c.decode_one(altered),
            Err(CodecError::Undecryptable(_))
        ));
        let mut short = sealed;
        short.data.truncate(NONCE_LEN);
        assert!(matches!(
            c.decode_one(short),
            Err(CodecError::Undecryptable(_))
        ));
    }
}
