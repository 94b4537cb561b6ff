//! Secure by default: the secrets `serve` and `worker` refuse to start
//! without (or, outside development, with a payload key that ships in the
//! repository or is not random), and the one exposure `serve` refuses, each
//! with one line naming its variable and never printing a secret. A
//! deployment that forgot one stops at once, instead of
//! keying idempotency fingerprints with a secret anyone can read, storing
//! payment codes readable in Temporal, or decrypting them for customers.
//! (`migrate` and `seed` use neither and are not held to them.)

use super::{ConfigError, Settings};

/// The idempotency secret shipped for development: public, so accepted only
/// in development.
pub const DEV_IDEMPOTENCY_SECRET: &str = "flightctl-dev-idempotency-secret";
/// The admission secret shipped for development: public, so accepted only
/// in development.
pub const DEV_ADMISSION_SECRET: &str = "flightctl-dev-admission-secret";
/// The `FLIGHTCTL_ENV` in which development secrets are accepted.
pub const DEVELOPMENT: &str = "development";
/// The shortest `CODEC_TOKEN` accepted.
pub const MIN_CODEC_TOKEN: usize = 32;

/// A long-running process, held to the secrets it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `flightctl serve`: keys idempotency fingerprints, talks to Temporal.
    Serve,
    /// `flightctl worker`: talks to Temporal.
    Worker,
}

impl Settings {
    /// Whether `FLIGHTCTL_ENV` is `development`.
    pub fn is_development(&self) -> bool {
        self.environment == DEVELOPMENT
    }

    /// Refuse to run `service` on a development idempotency secret outside
    /// development, without a payload key while encryption is on, or (`serve`)
    /// with the codec on the public listener outside development.
    pub fn check_secrets(&self, service: Service) -> Result<(), ConfigError> {
        if service == Service::Serve {
            self.check_idempotency_secret()?;
            self.check_codec_exposure()?;
        }
        self.check_payload_key()?;
        if service == Service::Serve {
            self.check_admission_secret()?;
        }
        Ok(())
    }

    /// `/codec/decode` decrypts every Temporal payload (payment codes,
    /// passengers) for an operator's session or `CODEC_TOKEN`; a stolen
    /// session must not reach it from the customers' side too, so it is
    /// served on the admin listener only; on the public one too only on a
    /// development machine, where the customer and the operator are the
    /// same person. Elsewhere the admin listener is the way (`ADMIN_HOST`,
    /// `ADMIN_PORT`), so there is nothing to give up by refusing.
    fn check_codec_exposure(&self) -> Result<(), ConfigError> {
        let t = &self.temporal;
        if !t.codec_on_public_listener || !t.codec_endpoint_enabled || self.is_development() {
            return Ok(());
        }
        Err(ConfigError::Invalid(format!(
            "CODEC_ON_PUBLIC_LISTENER=true would serve the payload codec, which decrypts every \
             Temporal payload, where customers reach SERVER_PORT: point the Temporal UI at the \
             admin listener (ADMIN_HOST:ADMIN_PORT, /codec) instead, or set \
             FLIGHTCTL_ENV={DEVELOPMENT} on a development machine"
        )))
    }

    fn check_idempotency_secret(&self) -> Result<(), ConfigError> {
        let problem = match self.server.idempotency_secret.expose() {
            _ if self.is_development() => return Ok(()),
            "" => "is empty",
            DEV_IDEMPOTENCY_SECRET => "is the development default, which anyone can read",
            _ => return Ok(()),
        };
        Err(ConfigError::Invalid(format!(
            "IDEMPOTENCY_SECRET {problem}: set your own (`openssl rand -base64 32`), \
             or FLIGHTCTL_ENV={DEVELOPMENT} on a development machine"
        )))
    }

    /// Admission tokens out of the waiting room are signed with it: one
    /// anyone can read would let anyone skip the queue.
    fn check_admission_secret(&self) -> Result<(), ConfigError> {
        let problem = match self.server.admission_secret.expose() {
            _ if self.is_development() => return Ok(()),
            "" => "is empty",
            DEV_ADMISSION_SECRET => "is the development default, which anyone can read",
            _ => return Ok(()),
        };
        Err(ConfigError::Invalid(format!(
            "ADMISSION_SECRET {problem}: set your own (`openssl rand -base64 32`), \
             or FLIGHTCTL_ENV={DEVELOPMENT} on a development machine"
        )))
    }

    /// Encryption on needs a key; outside development, a random one that
    /// does not ship in the repository (its value is never printed).
    fn check_payload_key(&self) -> Result<(), ConfigError> {
        let temporal = &self.temporal;
        if !temporal.payload_encryption {
            return Ok(());
        }
        if let Some(key) = temporal.payload_keys()?.encrypt {
            return match key.weakness() {
                Some(weakness) if !self.is_development() => Err(ConfigError::Invalid(format!(
                    "PAYLOAD_ENCRYPTION_KEY (key id {:?}) {}: make your own with \
                     `openssl rand -base64 32` (keep this one in PAYLOAD_DECRYPTION_KEYS while \
                     histories need it), or set FLIGHTCTL_ENV={DEVELOPMENT} on a development \
                     machine",
                    key.id,
                    weakness.describe()
                ))),
                _ => Ok(()),
            };
        }
        Err(ConfigError::Invalid(
            "PAYLOAD_ENCRYPTION_KEY is not set, so payment codes would be stored readable in \
             Temporal: set a key (`openssl rand -base64 32`) on every serve and worker, \
             or PAYLOAD_ENCRYPTION=false to send payloads plain on purpose"
                .into(),
        ))
    }
}
