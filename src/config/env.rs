//! The environment contract: every variable `Settings` reads, the settings
//! key it overrides and the kind of value it must hold (checked before it
//! is layered in), and the built-in defaults under every layer.

use super::{ConfigError, DEV_ADMISSION_SECRET, DEV_IDEMPOTENCY_SECRET, parse_duration};

/// What kind of value an environment variable holds, so it is checked before
/// it is layered in.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Text,
    Port,
    Count,
    Duration,
    Rate,
    Positive,
    Bool,
}

/// The environment contract: variable name, settings key, kind.
pub(super) const ENV_VARS: &[(&str, &str, Kind)] = &[
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
    ("PUBLIC_METRICS", "server.public_metrics", Kind::Bool),
    (
        "MAX_IN_FLIGHT_PER_CLIENT",
        "server.max_in_flight_per_client",
        Kind::Count,
    ),
    (
        "MAX_LIVE_ORDERS_PER_CLIENT",
        "server.max_live_orders_per_client",
        Kind::Positive,
    ),
    (
        "MAX_STREAMS_PER_CLIENT",
        "server.max_streams_per_client",
        Kind::Positive,
    ),
    (
        "SIGN_IN_MAX_PER_ADDRESS",
        "server.sign_in_max_per_address",
        Kind::Positive,
    ),
    (
        "SIGN_IN_MAX_PER_NAME",
        "server.sign_in_max_per_name",
        Kind::Positive,
    ),
    ("SIGN_IN_WINDOW", "server.sign_in_window", Kind::Duration),
    (
        "SIGN_IN_CONCURRENCY",
        "server.sign_in_concurrency",
        Kind::Count,
    ),
    ("QUEUE_GRACE", "server.queue_grace", Kind::Duration),
    ("ADMISSION_TTL", "server.admission_ttl", Kind::Duration),
    ("ADMISSION_SECRET", "server.admission_secret", Kind::Text),
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
    ("TEMPORAL_TLS", "temporal.tls", Kind::Bool),
    ("TEMPORAL_TLS_CA", "temporal.tls_ca", Kind::Text),
    ("TEMPORAL_TLS_CERT", "temporal.tls_cert", Kind::Text),
    ("TEMPORAL_TLS_KEY", "temporal.tls_key", Kind::Text),
    (
        "TEMPORAL_TLS_SERVER_NAME",
        "temporal.tls_server_name",
        Kind::Text,
    ),
    ("TEMPORAL_API_KEY", "temporal.api_key", Kind::Text),
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
    ("CODEC_TOKEN", "temporal.codec_token", Kind::Text),
    (
        "SEAT_RESERVATION_TIMEOUT",
        "booking.seat_reservation_timeout",
        Kind::Duration,
    ),
    (
        "HOLD_MAX_LIFETIME",
        "booking.hold_max_lifetime",
        Kind::Duration,
    ),
    (
        "PAYMENT_VALIDATION_TIMEOUT",
        "booking.payment_validation_timeout",
        Kind::Duration,
    ),
    (
        "PAYMENT_MAX_RETRIES",
        "booking.payment_max_attempts",
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
    (
        "TICKET_AIRLINE_PREFIX",
        "booking.ticket_airline_prefix",
        Kind::Text,
    ),
    ("CHECKIN_OPENS", "booking.checkin_opens", Kind::Duration),
    ("CHECKIN_CLOSES", "booking.checkin_closes", Kind::Duration),
    ("WORKER_METRICS_PORT", "worker.metrics_port", Kind::Port),
    (
        "WORKER_DEPLOYMENT_NAME",
        "worker.deployment_name",
        Kind::Text,
    ),
    ("WORKER_BUILD_ID", "worker.build_id", Kind::Text),
    ("SMTP_URL", "mail.smtp_url", Kind::Text),
    ("MAIL_FROM", "mail.from", Kind::Text),
    ("MANAGE_URL", "mail.manage_url", Kind::Text),
];

pub(super) const DEFAULTS: &[(&str, &str)] = &[
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
    ("server.public_metrics", "false"),
    ("server.max_in_flight_per_client", "0"),
    ("server.max_live_orders_per_client", "4"),
    ("server.max_streams_per_client", "16"),
    ("server.sign_in_max_per_address", "20"),
    ("server.sign_in_max_per_name", "5"),
    ("server.sign_in_window", "15m"),
    ("server.sign_in_concurrency", "0"),
    ("server.queue_grace", "2m"),
    ("server.admission_ttl", "2m"),
    ("server.admission_secret", DEV_ADMISSION_SECRET),
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
    ("temporal.tls", "false"),
    ("temporal.tls_ca", ""),
    ("temporal.tls_cert", ""),
    ("temporal.tls_key", ""),
    ("temporal.tls_server_name", ""),
    ("temporal.api_key", ""),
    ("temporal.payload_encryption", "true"),
    ("temporal.payload_encryption_key", ""),
    ("temporal.payload_encryption_key_id", "default"),
    ("temporal.payload_decryption_keys", ""),
    ("temporal.codec_cors_origins", "http://127.0.0.1:8233"),
    ("temporal.codec_endpoint_enabled", "true"),
    ("temporal.codec_on_public_listener", "false"),
    ("temporal.codec_token", ""),
    ("booking.seat_reservation_timeout", "15m"),
    ("booking.hold_max_lifetime", "30m"),
    ("booking.payment_validation_timeout", "10s"),
    ("booking.payment_max_attempts", "3"),
    ("booking.payment_failure_rate", "0.15"),
    ("booking.reconcile_interval", "1m"),
    ("booking.refund_cutoff", "24h"),
    ("booking.refund_failure_rate", "0.15"),
    ("booking.refund_max_attempts", "5"),
    ("booking.lookup_max_failures", "10"),
    ("booking.lookup_window", "15m"),
    ("booking.ticket_airline_prefix", "724"),
    ("booking.checkin_opens", "24h"),
    ("booking.checkin_closes", "1h"),
    ("worker.metrics_port", "9091"),
    ("worker.deployment_name", "flightctl"),
    ("worker.build_id", ""),
    ("mail.from", "flightctl <bookings@flightctl.invalid>"),
    ("mail.manage_url", "http://localhost:8080/manage"),
];

pub(super) fn check_env(var: &'static str, value: &str, kind: Kind) -> Result<(), ConfigError> {
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
