//! How the Temporal client reaches the frontend: plain gRPC (the default,
//! as the dev server speaks), or TLS. TLS is on when any of these is set:
//! `TEMPORAL_TLS=true` (the system's roots, for a server whose certificate a
//! public CA signed), `TEMPORAL_TLS_CA` (the PEM file of the CA the server's
//! certificate must chain to), `TEMPORAL_TLS_CERT` + `TEMPORAL_TLS_KEY` (the
//! client's certificate and key, PEM, for mutual TLS), `TEMPORAL_TLS_SERVER_NAME`
//! (the name to verify, when `TEMPORAL_HOST` is an address or another
//! name) or `TEMPORAL_API_KEY` (sent as `Authorization: Bearer`, as
//! Temporal Cloud expects; a secret).
//!
//! What can be checked without the files is checked while settings load; the
//! files are read when a command that talks to Temporal starts
//! ([`TemporalSettings::tls`]), and again at each connection, so a rotated
//! certificate is picked up by the next one. A bad one stops the command
//! with one line naming the setting; key material is never shown.

use std::fmt;
use std::path::Path;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{ConfigError, TemporalSettings};

/// TLS towards Temporal, its files read and checked.
#[derive(Clone)]
pub struct TemporalTls {
    /// PEM of the CA certificates the server's must chain to; `None`: the
    /// system's roots.
    pub ca: Option<Vec<u8>>,
    /// The client's certificate (PEM, its chain) for mutual TLS.
    pub cert: Option<Vec<u8>>,
    /// The client's private key (PEM); set exactly when `cert` is.
    pub key: Option<Vec<u8>>,
    /// The name the server's certificate must carry, when not
    /// `TEMPORAL_HOST`'s host.
    pub server_name: Option<String>,
}

impl fmt::Debug for TemporalTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporalTls")
            .field(
                "ca",
                &self.ca.as_ref().map(|c| format!("{} bytes", c.len())),
            )
            .field(
                "cert",
                &self.cert.as_ref().map(|c| format!("{} bytes", c.len())),
            )
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TemporalSettings {
    /// Whether the client connects with TLS: asked for, or implied by a CA,
    /// a client certificate, a server name or an API key.
    pub fn tls_enabled(&self) -> bool {
        self.tls
            || [
                &self.tls_ca,
                &self.tls_cert,
                &self.tls_key,
                &self.tls_server_name,
            ]
            .iter()
            .any(|s| !s.trim().is_empty())
            || self.api_key().is_some()
    }

    /// `TEMPORAL_API_KEY` without surrounding whitespace (a key read from a
    /// file often ends in a newline); `None` when empty.
    pub fn api_key(&self) -> Option<&str> {
        Some(self.api_key.expose().trim()).filter(|k| !k.is_empty())
    }

    /// The checks that need no file: a certificate and its key go together,
    /// and an API key is something a gRPC header can carry.
    pub(super) fn check_tls(&self) -> Result<(), ConfigError> {
        let (cert, key) = (self.tls_cert.trim(), self.tls_key.trim());
        if cert.is_empty() != key.is_empty() {
            let (given, missing) = match cert.is_empty() {
                true => ("TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CERT"),
                false => ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"),
            };
            return Err(ConfigError::Invalid(format!(
                "{given} is set but {missing} is not: the client certificate \
                 (TEMPORAL_TLS_CERT) and its private key (TEMPORAL_TLS_KEY) go together, \
                 for mutual TLS; set both or neither"
            )));
        }
        if self
            .api_key()
            .is_some_and(|k| !k.bytes().all(|b| b.is_ascii_graphic()))
        {
            // The value is not shown: it is a secret.
            return Err(ConfigError::Invalid(
                "TEMPORAL_API_KEY holds a space or a character outside printable ASCII, which \
                 a gRPC header cannot carry (the value is not shown)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// TLS towards Temporal with its files read and checked (PEM, holding a
    /// certificate or a private key as each setting needs), or `None` for
    /// plain gRPC.
    pub fn tls(&self) -> Result<Option<TemporalTls>, ConfigError> {
        self.check_tls()?;
        if !self.tls_enabled() {
            return Ok(None);
        }
        let ca = path(&self.tls_ca)
            .map(|p| certificates("TEMPORAL_TLS_CA", p))
            .transpose()?;
        let cert = path(&self.tls_cert)
            .map(|p| certificates("TEMPORAL_TLS_CERT", p))
            .transpose()?;
        let key = path(&self.tls_key)
            .map(|p| private_key("TEMPORAL_TLS_KEY", p))
            .transpose()?;
        let server_name = Some(self.tls_server_name.trim())
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        Ok(Some(TemporalTls {
            ca,
            cert,
            key,
            server_name,
        }))
    }
}

/// A path setting, `None` when empty.
fn path(setting: &str) -> Option<&Path> {
    Some(setting.trim())
        .filter(|p| !p.is_empty())
        .map(Path::new)
}

fn read(var: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::Invalid(format!("{var}={path:?} cannot be read: {e}")))
}

/// The file's bytes, once it is known to hold at least one PEM certificate
/// and nothing malformed.
fn certificates(var: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = read(var, path)?;
    let mut found = 0;
    for item in CertificateDer::pem_slice_iter(&bytes) {
        item.map_err(|e| not_pem(var, path, "certificate", e))?;
        found += 1;
    }
    if found == 0 {
        return Err(ConfigError::Invalid(format!(
            "{var}={path:?} holds no PEM certificate (a BEGIN CERTIFICATE block)"
        )));
    }
    Ok(bytes)
}

/// The file's bytes, once it is known to hold a PEM private key.
fn private_key(var: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = read(var, path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(_) => Ok(bytes),
        Err(pem::Error::NoItemsFound) => Err(ConfigError::Invalid(format!(
            "{var}={path:?} holds no PEM private key (a BEGIN PRIVATE KEY block, \
             PKCS#8; or PKCS#1 RSA, or SEC1 EC)"
        ))),
        Err(e) => Err(not_pem(var, path, "private key", e)),
    }
}

fn not_pem(var: &str, path: &Path, what: &str, e: pem::Error) -> ConfigError {
    // Said in our words: the parser's would quote the file's lines.
    let why = match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line".to_string(),
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".to_string(),
        pem::Error::Base64Decode(_) => "a section is not valid base64".to_string(),
        other => other.to_string(),
    };
    ConfigError::Invalid(format!(
        "{var}={path:?} is not a valid PEM {what} file: {why}"
    ))
}
