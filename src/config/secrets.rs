//! Secure by default: the secrets `serve` and `worker` refuse to start
//! without, each with one line naming its variable. A deployment that forgot
//! one stops at once, instead of keying idempotency fingerprints with a
//! secret anyone can read or storing payment codes readable in Temporal.
//! (`migrate` and `seed` use neither and are not held to them.)

use super::{ConfigError, Settings};

/// The idempotency secret shipped for development: public, so accepted only
/// in development.
pub const DEV_IDEMPOTENCY_SECRET: &str = "flightctl-dev-idempotency-secret";
/// The `FLIGHTCTL_ENV` in which development secrets are accepted.
pub const DEVELOPMENT: &str = "development";

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
    /// development, or without a payload key while encryption is on.
    pub fn check_secrets(&self, service: Service) -> Result<(), ConfigError> {
        if service == Service::Serve {
            self.check_idempotency_secret()?;
        }
        self.check_payload_key()
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

    fn check_payload_key(&self) -> Result<(), ConfigError> {
        let temporal = &self.temporal;
        if !temporal.payload_encryption
            || !temporal.payload_encryption_key.expose().trim().is_empty()
        {
            return Ok(());
        }
        Err(ConfigError::Invalid(
            "PAYLOAD_ENCRYPTION_KEY is not set, so payment codes would be stored readable in \
             Temporal: set a key (`openssl rand -base64 32`) on every serve and worker, \
             or PAYLOAD_ENCRYPTION=false to send payloads plain on purpose"
                .into(),
        ))
    }
}
