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

mod env;
mod payload;
mod proxies;
mod redis;
mod secrets;
mod temporal_tls;

use env::{DEFAULTS, ENV_VARS, check_env};
pub use payload::{
    PayloadKey, PayloadKeys, SHIPPED_PAYLOAD_KEYS, Weakness, fingerprint as payload_key_fingerprint,
};
pub use proxies::TrustedProxies;
pub use redis::{RedisSettings, RedisTarget};
pub use secrets::{DEV_ADMISSION_SECRET, DEV_IDEMPOTENCY_SECRET, DEVELOPMENT, Service};
pub use temporal_tls::TemporalTls;

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
    pub trusted_proxies: TrustedProxies,
    /// `PUBLIC_METRICS`: whether the public listener serves `GET /metrics`
    /// too (the admin listener always does). True in development, where
    /// the customer and the operator are the same person; false by default.
    pub public_metrics: bool,
    /// `MAX_IN_FLIGHT_PER_CLIENT`: booking calls one client may have in
    /// flight at once, across every `serve` (429 beyond it); 0 is a
    /// quarter of `max_in_flight` (see [`ServerSettings::in_flight_share`]).
    pub max_in_flight_per_client: usize,
    /// `MAX_LIVE_ORDERS_PER_CLIENT`: orders one client may hold live at
    /// once (429 `TOO_MANY_LIVE_ORDERS` beyond it).
    pub max_live_orders_per_client: u32,
    /// `MAX_STREAMS_PER_CLIENT`: event streams one client may keep open at
    /// once, across every `serve` (429 `TOO_MANY_STREAMS` beyond it).
    pub max_streams_per_client: u32,
    /// Failed operator sign-ins one client address may make per
    /// `sign_in_window`, whatever the names (`SIGN_IN_MAX_PER_ADDRESS`).
    pub sign_in_max_per_address: u32,
    /// Failed sign-ins for one name from one address per window
    /// (`SIGN_IN_MAX_PER_NAME`): a stranger elsewhere cannot lock an
    /// operator out.
    pub sign_in_max_per_name: u32,
    #[serde(deserialize_with = "human_duration")]
    pub sign_in_window: Duration,
    /// Password checks (argon2id, 19 MiB each) run at once by one `serve`;
    /// a sign-in beyond them is answered 503 at once. 0: as many as the
    /// process has cores (`SIGN_IN_CONCURRENCY`).
    pub sign_in_concurrency: usize,
    /// `QUEUE_GRACE`: how long a waiting-room place is kept after its
    /// ticket's last poll or stream ends; then it lapses.
    #[serde(deserialize_with = "human_duration")]
    pub queue_grace: Duration,
    /// `ADMISSION_TTL`: how long an admission out of the waiting room may
    /// go unused before it lapses.
    #[serde(deserialize_with = "human_duration")]
    pub admission_ttl: Duration,
    /// `ADMISSION_SECRET`: signs admission tokens (HMAC-SHA256). `serve`
    /// refuses its development default outside development.
    pub admission_secret: Secret,
}

/// How long a create's up-front seat claim outlives its call's deadline:
/// the API's wait for an answer decided just before the deadline (2 s) and
/// a margin (3 s).
const CLAIM_OUTLIVES_CALL: Duration = Duration::from_secs(5);

impl ServerSettings {
    /// The booking calls one client may have in flight at once:
    /// `max_in_flight_per_client`, or when that is 0 a quarter of
    /// `max_in_flight` (at least one), so no one client takes more than a
    /// quarter of an instance's slots.
    pub fn in_flight_share(&self) -> usize {
        match self.max_in_flight_per_client {
            0 => (self.max_in_flight / 4).max(1),
            share => share,
        }
    }

    /// Password checks at once: `sign_in_concurrency`, or with 0 the cores
    /// this process may use (its cgroup's CPU quota included).
    pub fn sign_in_checks(&self) -> usize {
        match self.sign_in_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
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
pub struct TemporalSettings {
    pub host: String,
    pub namespace: String,
    pub task_queue: String,
    /// `TEMPORAL_TLS`: TLS with the system's roots; implied by any of the
    /// settings below (see [`TemporalTls`] and `TemporalSettings::tls`).
    pub tls: bool,
    /// `TEMPORAL_TLS_CA`: path of the PEM file of the CA(s) the server's
    /// certificate must chain to; empty, the system's roots.
    pub tls_ca: String,
    /// `TEMPORAL_TLS_CERT`: path of the client certificate (PEM), for
    /// mutual TLS; with `tls_key`.
    pub tls_cert: String,
    /// `TEMPORAL_TLS_KEY`: path of the client certificate's private key (PEM).
    pub tls_key: String,
    /// `TEMPORAL_TLS_SERVER_NAME`: the name the server's certificate must
    /// carry; empty, `host`'s host.
    pub tls_server_name: String,
    /// `TEMPORAL_API_KEY`: sent as `Authorization: Bearer` on every call
    /// (Temporal Cloud's API keys); implies TLS.
    pub api_key: Secret,
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
    /// `CODEC_TOKEN`: a bearer token that opens the codec besides an
    /// operator's session (`Authorization: Bearer <token>`, for the
    /// `temporal` CLI and scripts); empty, only a session does. At least
    /// 32 characters when set.
    pub codec_token: Secret,
}

#[derive(Clone, Debug, Deserialize)]
pub struct BookingSettings {
    /// How long a selection holds its seats (`SEAT_RESERVATION_TIMEOUT`);
    /// a seat change restarts it, up to `hold_max_lifetime`.
    #[serde(deserialize_with = "human_duration")]
    pub seat_reservation_timeout: Duration,
    /// `HOLD_MAX_LIFETIME`: no hold of an order lasts past its creation plus
    /// this, however often its seats change (at least one
    /// `seat_reservation_timeout`).
    #[serde(deserialize_with = "human_duration")]
    pub hold_max_lifetime: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub payment_validation_timeout: Duration,
    /// Payment attempts in all before an order fails (`PAYMENT_MAX_RETRIES`,
    /// the seed's name for it, kept: SPEC.md defines it as attempts).
    pub payment_max_attempts: u32,
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
    /// `TICKET_AIRLINE_PREFIX`: the 3 digits every ticket number starts
    /// with (checked at load).
    pub ticket_airline_prefix: String,
    /// `CHECKIN_OPENS`: online check-in opens this long before departure.
    #[serde(deserialize_with = "human_duration")]
    pub checkin_opens: Duration,
    /// `CHECKIN_CLOSES`: and closes this long before it (less than
    /// `checkin_opens`).
    #[serde(deserialize_with = "human_duration")]
    pub checkin_closes: Duration,
}

impl BookingSettings {
    /// The airline prefix of ticket numbers, checked at load.
    pub fn ticket_prefix(&self) -> crate::tickets::TicketPrefix {
        crate::tickets::TicketPrefix::parse(&self.ticket_airline_prefix).unwrap_or_default()
    }
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
    /// `MANAGE_URL`: the manage-my-booking page (`/manage` of the public
    /// site) a confirmation links to for online check-in; empty: no link.
    #[serde(default)]
    pub manage_url: String,
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
    /// A layer that does not load or deserialize, or a value that does not
    /// parse (named with its key). Transparent: its text once, not twice.
    #[error(transparent)]
    Source(#[from] config::ConfigError),
}

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
        if self.server.max_live_orders_per_client == 0 || self.server.max_streams_per_client == 0 {
            return Err(ConfigError::Invalid(
                "server.max_live_orders_per_client (MAX_LIVE_ORDERS_PER_CLIENT) and \
                 server.max_streams_per_client (MAX_STREAMS_PER_CLIENT) must be at least 1"
                    .into(),
            ));
        }
        let server = &self.server;
        if server.sign_in_max_per_address == 0
            || server.sign_in_max_per_name == 0
            || server.sign_in_window.is_zero()
        {
            return Err(ConfigError::Invalid(
                "server.sign_in_max_per_address, sign_in_max_per_name and sign_in_window must \
                 be greater than zero"
                    .into(),
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
        if let Err(e) = crate::tickets::TicketPrefix::parse(&b.ticket_airline_prefix) {
            return Err(ConfigError::Invalid(format!(
                "booking.ticket_airline_prefix (TICKET_AIRLINE_PREFIX): {e}"
            )));
        }
        if b.checkin_closes >= b.checkin_opens {
            return Err(ConfigError::Invalid(
                "booking.checkin_closes (CHECKIN_CLOSES) must be less than \
                 booking.checkin_opens (CHECKIN_OPENS)"
                    .into(),
            ));
        }
        if b.payment_max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "booking.payment_max_attempts (PAYMENT_MAX_RETRIES) must be at least 1".into(),
            ));
        }
        if b.seat_reservation_timeout.is_zero() || b.payment_validation_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "timeouts must be greater than zero".into(),
            ));
        }
        if b.hold_max_lifetime < b.seat_reservation_timeout {
            return Err(ConfigError::Invalid(format!(
                "HOLD_MAX_LIFETIME ({}) must be at least SEAT_RESERVATION_TIMEOUT ({}): \
                 no order could hold its seats for one full hold",
                humantime::format_duration(b.hold_max_lifetime),
                humantime::format_duration(b.seat_reservation_timeout)
            )));
        }
        self.temporal.payload_keys()?;
        self.temporal.check_tls()?;
        let token = self.temporal.codec_token.expose();
        if !token.is_empty() && token.trim().chars().count() < secrets::MIN_CODEC_TOKEN {
            return Err(ConfigError::Invalid(format!(
                "CODEC_TOKEN must be at least {} characters: make one with \
                 `openssl rand -base64 32`",
                secrets::MIN_CODEC_TOKEN
            )));
        }
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
