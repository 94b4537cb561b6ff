//! Layered configuration: built-in defaults < `config/default.toml` <
//! `config/<FLIGHTCTL_ENV>.toml` < `--config FILE` < environment variables.
//!
//! Environment names are the seed's flat names (`SERVER_PORT`,
//! `SEAT_RESERVATION_TIMEOUT`, ...). Every value is checked while loading, so a
//! bad value stops the program with a message that names where it came from.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod payload;
mod proxies;
mod redis;
mod secrets;

pub use payload::{PayloadKey, PayloadKeys};
pub use proxies::TrustedProxies;
pub use redis::RedisTarget;
pub use secrets::{DEV_IDEMPOTENCY_SECRET, DEVELOPMENT, Service};

/// A string that never shows up in logs or `Debug` output.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that needs it (a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "[redacted]"
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub temporal: TemporalSettings,
    pub booking: BookingSettings,
    pub worker: WorkerSettings,
    pub mail: MailSettings,
    /// `FLIGHTCTL_ENV`, empty when unset: which `config/<name>.toml` was
    /// layered in, and whether development secrets are accepted
    /// ([`DEVELOPMENT`]).
    #[serde(skip)]
    pub environment: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Booking calls (create, change, pay, cancel) one `serve` keeps in
    /// flight towards Temporal; beyond it the API answers 503 SERVICE_BUSY.
    pub max_in_flight: usize,
    /// How long a booking call may wait for its workflow. A create carries
    /// this as its deadline: the workflow refuses a creation it processes
    /// later, so a create the client was not told about holds nothing.
    #[serde(deserialize_with = "human_duration")]
    pub call_timeout: Duration,
    /// Keys the fingerprints of idempotent requests (a payment code is never
    /// stored in a readable or guessable form). `serve` refuses its
    /// development default outside development.
    pub idempotency_secret: Secret,
    /// How long an `Idempotency-Key` answer is kept.
    #[serde(deserialize_with = "human_duration")]
    pub idempotency_ttl: Duration,
    /// The admin listener (`ADMIN_HOST`, loopback by default): a second
    /// listener of `serve` for operators' routes (the payload codec and the
    /// health probes), never for customers'.
    pub admin_host: String,
    /// `ADMIN_PORT`; 0 picks a free one (logged at start).
    pub admin_port: u16,
    /// How long an operator's session lasts (`OPS_SESSION_TTL`).
    #[serde(deserialize_with = "human_duration")]
    pub ops_session_ttl: Duration,
    /// `TRUSTED_PROXIES`: the load balancers whose `X-Forwarded-For` names
    /// the client (see [`TrustedProxies`]); empty, none is.
    pub trusted_proxies: String,
}

/// How long a create's up-front seat claim outlives its call's deadline:
/// the API's wait for an answer decided just before the deadline (2 s) and
/// a margin (3 s).
const CLAIM_OUTLIVES_CALL: Duration = Duration::from_secs(5);

impl ServerSettings {
    /// `TRUSTED_PROXIES`, parsed (checked at load).
    pub fn trusted_proxies(&self) -> Result<TrustedProxies, ConfigError> {
        TrustedProxies::parse(&self.trusted_proxies)
    }

    /// How long a create's up-front seat claim lives: past the longest wait
    /// for its workflow. One setting for `serve`, which claims with it, and
    /// the worker's reconciliation sweep, which waits that long before it
    /// takes a hold without an order for a stray.
    pub fn claim_ttl(&self) -> Duration {
        self.call_timeout + CLAIM_OUTLIVES_CALL
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct DatabaseSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub name: String,
    pub sslmode: String,
    /// When non-empty, wins over the separate parts.
    #[serde(default)]
    pub url: Secret,
    pub pool_size: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RedisSettings {
    /// `REDIS_URL`: `redis://host:port[/db]` (one server) or
    /// `redis-cluster://h1:p1,h2:p2,…` (Redis Cluster). When set, wins over
    /// `addr` and `db`; see [`RedisSettings::target`].
    #[serde(default)]
    pub url: String,
    pub addr: String,
    pub password: Secret,
    pub db: u8,
    /// Prefix of every key this program writes (tests give each run its own).
    pub key_prefix: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TemporalSettings {
    pub host: String,
    pub namespace: String,
    pub task_queue: String,
    /// Base URL of the Temporal web UI, for links to a workflow (its origin
    /// may call the codec endpoint).
    pub ui_url: String,
    /// Whether payloads are encrypted. On (the default), `serve` and
    /// `worker` refuse to start without `payload_encryption_key`; off, they
    /// send payloads plain (a key given only decrypts).
    pub payload_encryption: bool,
    /// Payload encryption: see [`PayloadKeys`] and `TemporalSettings::payload_keys`.
    pub payload_encryption_key: Secret,
    pub payload_encryption_key_id: String,
    pub payload_decryption_keys: Secret,
    /// Browser origins allowed to call `/codec/*` besides `ui_url`'s,
    /// comma-separated.
    pub codec_cors_origins: String,
    /// Whether `serve` answers `/codec/*` at all (on its admin listener; it
    /// decrypts for whoever reaches it).
    pub codec_endpoint_enabled: bool,
    /// Whether the public listener answers `/codec/*` too (else 404 there).
    /// Refused outside development (`Settings::check_secrets`).
    pub codec_on_public_listener: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct BookingSettings {
    #[serde(deserialize_with = "human_duration")]
    pub seat_reservation_timeout: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub payment_validation_timeout: Duration,
    pub payment_max_retries: u32,
    pub payment_failure_rate: f64,
    /// How often the reconciliation sweep runs (a Temporal Schedule the
    /// worker keeps); 0 turns it off and removes the schedule.
    #[serde(deserialize_with = "human_duration")]
    pub reconcile_interval: Duration,
    /// No cancellation (and refund) this close to departure.
    #[serde(deserialize_with = "human_duration")]
    pub refund_cutoff: Duration,
    /// How often the simulated provider declines a refund call.
    pub refund_failure_rate: f64,
    /// Provider calls before a refund is left to an operator (REFUND_FAILED).
    pub refund_max_attempts: u32,
    /// Failed booking look-ups one client may make per `lookup_window`
    /// before it is refused (429).
    pub lookup_max_failures: u32,
    #[serde(deserialize_with = "human_duration")]
    pub lookup_window: Duration,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WorkerSettings {
    /// Port of the worker's Prometheus endpoint (`/metrics`, ours and the
    /// Temporal SDK's); 0 picks a free one (logged at start).
    pub metrics_port: u16,
    /// The Temporal worker deployment this worker is a version of.
    pub deployment_name: String,
    /// This worker's build id; empty: derived from the binary.
    pub build_id: String,
}

/// Booking mails (`crate::mail`): where they are sent from and through.
#[derive(Clone, Debug, Deserialize)]
pub struct MailSettings {
    /// `SMTP_URL`: `smtp://host:25` (plain, for a local relay),
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:password@host:465`. A secret: it may hold a password.
    /// Unset or empty: no mail is sent (`mail::Sent::Skipped`).
    #[serde(default, deserialize_with = "optional_secret")]
    pub smtp_url: Option<Secret>,
    /// `MAIL_FROM`: the sender of every booking mail, `Name <address>`.
    pub from: String,
}

impl MailSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "MAIL_FROM={:?} is not a mail address like \"flightctl <bookings@example.com>\"",
                self.from
            )));
        }
        let url = self.smtp_url.as_ref().map(Secret::expose);
        if url.is_some_and(|u| !(u.starts_with("smtp://") || u.starts_with("smtps://"))) {
            // The value is not shown: it may hold a password.
            return Err(ConfigError::Invalid(
                "SMTP_URL must start with smtp:// or smtps://".into(),
            ));
        }
        Ok(())
    }
}

impl WorkerSettings {
    /// The build id workers of this binary run as.
    pub fn build_id(&self) -> String {
        match self.build_id.trim() {
            "" => temporalio_common::worker::build_id_from_current_exe().to_string(),
            id => id.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value for {var}={value:?}: {reason}")]
    InvalidEnv {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("{0}")]
    Source(#[from] config::ConfigError),
}

/// What kind of value an environment variable holds, so it is checked before
/// it is layered in.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Port,
    Count,
    Duration,
    Rate,
    Positive,
    Bool,
}

/// The environment contract: variable name, settings key, kind.
const ENV_VARS: &[(&str, &str, Kind)] = &[
    ("SERVER_HOST", "server.host", Kind::Text),
    ("SERVER_PORT", "server.port", Kind::Port),
    ("API_MAX_IN_FLIGHT", "server.max_in_flight", Kind::Positive),
    ("API_CALL_TIMEOUT", "server.call_timeout", Kind::Duration),
    (
        "IDEMPOTENCY_SECRET",
        "server.idempotency_secret",
        Kind::Text,
    ),
    ("IDEMPOTENCY_TTL", "server.idempotency_ttl", Kind::Duration),
    ("ADMIN_HOST", "server.admin_host", Kind::Text),
    ("ADMIN_PORT", "server.admin_port", Kind::Port),
    ("OPS_SESSION_TTL", "server.ops_session_ttl", Kind::Duration),
    ("TRUSTED_PROXIES", "server.trusted_proxies", Kind::Text),
    ("DATABASE_HOST", "database.host", Kind::Text),
    ("DATABASE_PORT", "database.port", Kind::Port),
    ("DATABASE_USER", "database.user", Kind::Text),
    ("DATABASE_PASSWORD", "database.password", Kind::Text),
    ("DATABASE_NAME", "database.name", Kind::Text),
    ("DATABASE_SSLMODE", "database.sslmode", Kind::Text),
    ("DATABASE_URL", "database.url", Kind::Text),
    ("DATABASE_POOL_SIZE", "database.pool_size", Kind::Count),
    ("REDIS_URL", "redis.url", Kind::Text),
    ("REDIS_ADDR", "redis.addr", Kind::Text),
    ("REDIS_PASSWORD", "redis.password", Kind::Text),
    ("REDIS_DB", "redis.db", Kind::Count),
    ("REDIS_KEY_PREFIX", "redis.key_prefix", Kind::Text),
    ("TEMPORAL_HOST", "temporal.host", Kind::Text),
    ("TEMPORAL_NAMESPACE", "temporal.namespace", Kind::Text),
    ("TEMPORAL_TASK_QUEUE", "temporal.task_queue", Kind::Text),
    ("TEMPORAL_UI_URL", "temporal.ui_url", Kind::Text),
    (
        "PAYLOAD_ENCRYPTION",
        "temporal.payload_encryption",
        Kind::Bool,
    ),
    (
        "PAYLOAD_ENCRYPTION_KEY",
        "temporal.payload_encryption_key",
        Kind::Text,
    ),
    (
        "PAYLOAD_ENCRYPTION_KEY_ID",
        "temporal.payload_encryption_key_id",
        Kind::Text,
    ),
    (
        "PAYLOAD_DECRYPTION_KEYS",
        "temporal.payload_decryption_keys",
        Kind::Text,
    ),
    (
        "CODEC_CORS_ORIGINS",
        "temporal.codec_cors_origins",
        Kind::Text,
    ),
    (
        "CODEC_ENDPOINT_ENABLED",
        "temporal.codec_endpoint_enabled",
        Kind::Bool,
    ),
    (
        "CODEC_ON_PUBLIC_LISTENER",
        "temporal.codec_on_public_listener",
        Kind::Bool,
    ),
    (
        "SEAT_RESERVATION_TIMEOUT",
        "booking.seat_reservation_timeout",
        Kind::Duration,
    ),
    (
        "PAYMENT_VALIDATION_TIMEOUT",
        "booking.payment_validation_timeout",
        Kind::Duration,
    ),
    (
        "PAYMENT_MAX_RETRIES",
        "booking.payment_max_retries",
        Kind::Count,
    ),
    (
        "PAYMENT_FAILURE_RATE",
        "booking.payment_failure_rate",
        Kind::Rate,
    ),
    (
        "RECONCILE_INTERVAL",
        "booking.reconcile_interval",
        Kind::Duration,
    ),
    ("REFUND_CUTOFF", "booking.refund_cutoff", Kind::Duration),
    (
        "REFUND_FAILURE_RATE",
        "booking.refund_failure_rate",
        Kind::Rate,
    ),
    (
        "REFUND_MAX_ATTEMPTS",
        "booking.refund_max_attempts",
        Kind::Count,
    ),
    (
        "LOOKUP_MAX_FAILURES",
        "booking.lookup_max_failures",
        Kind::Count,
    ),
    ("LOOKUP_WINDOW", "booking.lookup_window", Kind::Duration),
    ("WORKER_METRICS_PORT", "worker.metrics_port", Kind::Port),
    (
        "WORKER_DEPLOYMENT_NAME",
        "worker.deployment_name",
        Kind::Text,
    ),
    ("WORKER_BUILD_ID", "worker.build_id", Kind::Text),
    ("SMTP_URL", "mail.smtp_url", Kind::Text),
    ("MAIL_FROM", "mail.from", Kind::Text),
];

const DEFAULTS: &[(&str, &str)] = &[
    ("server.host", "0.0.0.0"),
    ("server.port", "8080"),
    ("server.max_in_flight", "16"),
    ("server.call_timeout", "3s"),
    ("server.idempotency_secret", DEV_IDEMPOTENCY_SECRET),
    ("server.idempotency_ttl", "24h"),
    ("server.admin_host", "127.0.0.1"),
    ("server.admin_port", "8081"),
    ("server.ops_session_ttl", "8h"),
    ("server.trusted_proxies", ""),
    ("database.host", "localhost"),
    ("database.port", "5433"),
    ("database.user", "flightapp"),
    ("database.password", "flightapp"),
    ("database.name", "flight_booking"),
    ("database.sslmode", "disable"),
    ("database.url", ""),
    ("database.pool_size", "16"),
    ("redis.url", ""),
    ("redis.addr", "localhost:6379"),
    ("redis.password", ""),
    ("redis.db", "0"),
    ("redis.key_prefix", "flightctl"),
    ("temporal.host", "localhost:7233"),
    ("temporal.namespace", "default"),
    ("temporal.task_queue", "booking-queue"),
    ("temporal.ui_url", "http://localhost:8233"),
    ("temporal.payload_encryption", "true"),
    ("temporal.payload_encryption_key", ""),
    ("temporal.payload_encryption_key_id", "default"),
    ("temporal.payload_decryption_keys", ""),
    ("temporal.codec_cors_origins", "http://127.0.0.1:8233"),
    ("temporal.codec_endpoint_enabled", "true"),
    ("temporal.codec_on_public_listener", "false"),
    ("booking.seat_reservation_timeout", "15m"),
    ("booking.payment_validation_timeout", "10s"),
    ("booking.payment_max_retries", "3"),
    ("booking.payment_failure_rate", "0.15"),
    ("booking.reconcile_interval", "1m"),
    ("booking.refund_cutoff", "24h"),
    ("booking.refund_failure_rate", "0.15"),
    ("booking.refund_max_attempts", "5"),
    ("booking.lookup_max_failures", "10"),
    ("booking.lookup_window", "15m"),
    ("worker.metrics_port", "9091"),
    ("worker.deployment_name", "flightctl"),
    ("worker.build_id", ""),
    ("mail.from", "flightctl <bookings@flightctl.invalid>"),
];

/// Looks up an environment variable.
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String>>;

/// Where the layers come from. `Sources::from_process` reads the real
/// process; tests build their own.
pub struct Sources {
    /// Directory holding `default.toml` and `<env>.toml`.
    pub config_dir: PathBuf,
    /// The `--config FILE` argument.
    pub file: Option<PathBuf>,
    /// Environment lookup.
    pub env: EnvLookup,
}

impl Sources {
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self {
            config_dir: PathBuf::from("config"),
            file,
            env: Box::new(|name| std::env::var(name).ok()),
        }
    }
}

impl Settings {
    /// Load the settings from the running process's files and environment.
    pub fn load(file: Option<PathBuf>) -> Result<Self, ConfigError> {
        Self::load_from(&Sources::from_process(file))
    }

    pub fn load_from(sources: &Sources) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        for (key, value) in DEFAULTS {
            builder = builder.set_default(*key, *value)?;
        }
        builder = builder.add_source(toml_file(&sources.config_dir.join("default.toml"), false)?);
        let environment = (sources.env)("FLIGHTCTL_ENV").unwrap_or_default();
        if !environment.is_empty() {
            let path = sources.config_dir.join(format!("{environment}.toml"));
            builder = builder.add_source(toml_file(&path, false)?);
        }
        if let Some(file) = &sources.file {
            builder = builder.add_source(toml_file(file, true)?);
        }
        for (var, key, kind) in ENV_VARS {
            if let Some(value) = (sources.env)(var) {
                check_env(var, &value, *kind)?;
                builder = builder.set_override(*key, value)?;
            }
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.environment = environment;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_in_flight == 0 {
            return Err(ConfigError::Invalid(
                "server.max_in_flight must be at least 1".into(),
            ));
        }
        if self.server.call_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "server.call_timeout must be greater than zero".into(),
            ));
        }
        let b = &self.booking;
        if !(0.0..=1.0).contains(&b.payment_failure_rate) {
            return Err(ConfigError::Invalid(
                "booking.payment_failure_rate must be between 0 and 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&b.refund_failure_rate) {
            return Err(ConfigError::Invalid(
                "booking.refund_failure_rate must be between 0 and 1".into(),
            ));
        }
        if b.refund_max_attempts == 0 || b.lookup_max_failures == 0 || b.lookup_window.is_zero() {
            return Err(ConfigError::Invalid(
                "booking.refund_max_attempts, lookup_max_failures and lookup_window must be \
                 greater than zero"
                    .into(),
            ));
        }
        if b.payment_max_retries == 0 {
            return Err(ConfigError::Invalid(
                "booking.payment_max_retries must be at least 1".into(),
            ));
        }
        if b.seat_reservation_timeout.is_zero() || b.payment_validation_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "timeouts must be greater than zero".into(),
            ));
        }
        self.redis.target()?;
        self.server.trusted_proxies()?;
        self.temporal.payload_keys()?;
        self.mail.validate()
    }
}

impl DatabaseSettings {
    /// Connection config: `DATABASE_URL` when set, else the separate parts.
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, ConfigError> {
        if !self.url.expose().is_empty() {
            return self
                .url
                .expose()
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("DATABASE_URL does not parse: {e}")));
        }
        let ssl = match self.sslmode.as_str() {
            "disable" => tokio_postgres::config::SslMode::Disable,
            "prefer" | "allow" => tokio_postgres::config::SslMode::Prefer,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "DATABASE_SSLMODE={other:?} is not supported (this build has no TLS): use disable or prefer"
                )));
            }
        };
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(self.password.expose())
            .dbname(&self.name)
            .ssl_mode(ssl)
            .application_name("flightctl")
            .connect_timeout(Duration::from_secs(5));
        Ok(cfg)
    }
}

fn toml_file(
    path: &Path,
    required: bool,
) -> Result<config::File<config::FileSourceFile, config::FileFormat>, ConfigError> {
    if required && !path.is_file() {
        return Err(ConfigError::MissingFile(path.to_path_buf()));
    }
    Ok(config::File::from(path)
        .format(config::FileFormat::Toml)
        .required(required))
}

fn check_env(var: &'static str, value: &str, kind: Kind) -> Result<(), ConfigError> {
    let reason = match kind {
        Kind::Text => return Ok(()),
        Kind::Port => value
            .parse::<u16>()
            .err()
            .map(|e| format!("not a port number ({e})")),
        Kind::Count => value
            .parse::<u32>()
            .err()
            .map(|e| format!("not a whole number ({e})")),
        Kind::Positive => match value.parse::<u32>() {
            Ok(0) => Some("must be at least 1".to_string()),
            Ok(_) => None,
            Err(e) => Some(format!("not a whole number ({e})")),
        },
        Kind::Duration => parse_duration(value).err(),
        Kind::Bool => value
            .parse::<bool>()
            .err()
            .map(|_| "must be true or false".to_string()),
        Kind::Rate => match value.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => None,
            Ok(_) => Some("must be between 0 and 1".to_string()),
            Err(e) => Some(format!("not a number ({e})")),
        },
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(ConfigError::InvalidEnv {
            var,
            value: value.to_string(),
            reason,
        }),
    }
}

/// Parse `500ms`, `10s`, `15m`, `1h` (and combinations such as `1m30s`).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim())
        .map_err(|e| format!("not a duration like 500ms, 10s, 15m or 1h ({e})"))
}

/// An optional secret: unset and empty are both `None`.
fn optional_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    Ok(text.filter(|t| !t.trim().is_empty()).map(Secret::new))
}

fn human_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_documented_forms() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("fifteen").is_err());
        assert!(parse_duration("15").is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2");
    }
}
