//! Configuration: layering, the seed's environment names, fail-fast errors,
//! and the CLI's behaviour on bad input.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flightctl::config::{Service, Settings, Sources};

fn sources(dir: &Path, file: Option<&Path>, env: &[(&str, &str)]) -> Sources {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Sources {
        config_dir: dir.to_path_buf(),
        file: file.map(Path::to_path_buf),
        env: Box::new(move |k| env.get(k).cloned()),
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn layers_apply_in_order_defaults_files_config_flag_environment() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.toml");
    let load = |file: Option<&Path>, env: &[(&str, &str)]| {
        Settings::load_from(&sources(dir.path(), file, env)).unwrap()
    };

    assert_eq!(load(None, &[]).server.port, 8080, "built-in default");
    write(&dir.path().join("default.toml"), "[server]\nport = 1001\n");
    assert_eq!(load(None, &[]).server.port, 1001, "config/default.toml");
    write(&dir.path().join("staging.toml"), "[server]\nport = 1002\n");
    assert_eq!(
        load(None, &[("FLIGHTCTL_ENV", "staging")]).server.port,
        1002
    );
    write(&extra, "[server]\nport = 1003\n");
    let env = [("FLIGHTCTL_ENV", "staging")];
    assert_eq!(load(Some(&extra), &env).server.port, 1003, "--config file");
    let env = [("FLIGHTCTL_ENV", "staging"), ("SERVER_PORT", "1004")];
    assert_eq!(
        load(Some(&extra), &env).server.port,
        1004,
        "environment wins"
    );
    // A layer only overrides what it names.
    assert_eq!(load(Some(&extra), &env).server.host, "0.0.0.0");
}

#[test]
fn every_seed_environment_name_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SERVER_HOST", "127.0.0.2"),
        ("SERVER_PORT", "9999"),
        ("DATABASE_HOST", "db.internal"),
        ("DATABASE_PORT", "6543"),
        ("DATABASE_USER", "u1"),
        ("DATABASE_PASSWORD", "p1"),
        ("DATABASE_NAME", "n1"),
        ("DATABASE_SSLMODE", "prefer"),
        ("REDIS_ADDR", "cache:6380"),
        ("REDIS_PASSWORD", "rp"),
        ("REDIS_DB", "3"),
        ("TEMPORAL_HOST", "tmp:7234"),
        ("TEMPORAL_NAMESPACE", "ns1"),
        ("TEMPORAL_TASK_QUEUE", "q1"),
        ("SEAT_RESERVATION_TIMEOUT", "90s"),
        ("PAYMENT_VALIDATION_TIMEOUT", "500ms"),
        ("PAYMENT_MAX_RETRIES", "5"),
        ("PAYMENT_FAILURE_RATE", "0.5"),
    ];
    let s = Settings::load_from(&sources(dir.path(), None, &env)).unwrap();
    assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.2", 9999));
    assert_eq!(
        (s.database.host.as_str(), s.database.port),
        ("db.internal", 6543)
    );
    assert_eq!(
        (s.database.user.as_str(), s.database.password.expose()),
        ("u1", "p1")
    );
    assert_eq!(
        (s.database.name.as_str(), s.database.sslmode.as_str()),
        ("n1", "prefer")
    );
    assert_eq!(s.redis.target.to_string(), "cache:6380 (db 3)");
    assert_eq!(s.redis.password.expose(), "rp");
    assert_eq!(s.temporal.host, "tmp:7234");
    assert_eq!(
        (
            s.temporal.namespace.as_str(),
            s.temporal.task_queue.as_str()
        ),
        ("ns1", "q1")
    );
    assert_eq!(s.booking.seat_reservation_timeout, Duration::from_secs(90));
    assert_eq!(
        s.booking.payment_validation_timeout,
        Duration::from_millis(500)
    );
    assert_eq!(s.booking.payment_max_attempts, 5);
    assert_eq!(s.booking.payment_failure_rate, 0.5);
    let pg = s.database.pg_config().unwrap();
    assert_eq!(pg.get_dbname(), Some("n1"));
    assert_eq!(pg.get_ports(), &[6543]);
}

#[test]
fn database_url_wins_over_the_parts() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_HOST", "ignored"),
        ("DATABASE_URL", "postgres://a:b@dbhost:7777/other"),
    ];
    let s = Settings::load_from(&sources(dir.path(), None, &env)).unwrap();
    let pg = s.database.pg_config().unwrap();
    assert_eq!(pg.get_dbname(), Some("other"));
    assert_eq!(pg.get_ports(), &[7777]);
}

#[test]
fn a_bad_duration_stops_loading_and_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("SEAT_RESERVATION_TIMEOUT", "fifteen minutes"),
        ("PAYMENT_VALIDATION_TIMEOUT", "10"),
        ("SERVER_PORT", "80000"),
        ("PAYMENT_FAILURE_RATE", "1.5"),
        ("PAYMENT_MAX_RETRIES", "-1"),
    ] {
        let err = Settings::load_from(&sources(dir.path(), None, &[(var, value)])).unwrap_err();
        assert!(err.to_string().contains(var), "{var}: {err}");
    }
}

#[test]
fn a_bad_value_in_a_file_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("default.toml"),
        "[booking]\nseat_reservation_timeout = \"soon\"\n",
    );
    let err = Settings::load_from(&sources(dir.path(), None, &[])).unwrap_err();
    assert!(
        err.to_string().contains("seat_reservation_timeout"),
        "{err}"
    );
}

#[test]
fn a_missing_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = Settings::load_from(&sources(dir.path(), Some(&missing), &[])).unwrap_err();
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

#[test]
fn passwords_never_show_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_PASSWORD", "s3cret-db"),
        ("REDIS_PASSWORD", "s3cret-redis"),
        ("DATABASE_URL", "postgres://u:s3cret-url@h/db"),
    ];
    let s = Settings::load_from(&sources(dir.path(), None, &env)).unwrap();
    let debug = format!("{s:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("[redacted]"));
}

fn flightctl(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flightctl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn the_cli_rejects_a_bad_duration_with_one_line_and_no_panic() {
    let out = flightctl(
        &["migrate", "status"],
        &[("SEAT_RESERVATION_TIMEOUT", "abc")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("SEAT_RESERVATION_TIMEOUT"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_cli_reports_unreachable_postgres_and_exits_non_zero() {
    let out = flightctl(
        &["migrate", "up"],
        &[("DATABASE_PORT", "1"), ("DATABASE_HOST", "127.0.0.1")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("postgres is unreachable"), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn help_explains_each_command_with_an_example() {
    let out = flightctl(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "worker", "migrate", "seed"] {
        assert!(help.contains(cmd), "{help}");
    }
    for args in [
        &["serve", "--help"][..],
        &["worker", "--help"],
        &["migrate", "up", "--help"],
        &["migrate", "status", "--help"],
        &["seed", "--help"],
    ] {
        let out = flightctl(args, &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{args:?}: {text}");
    }
}

/// A well-formed payload key (test-only).
const KEY: &str = "bVcuR9zN6JlBiL1JaQ9X7LqLQYAAr+CRsZWzT4zmEgg=";

/// An operator's own admission secret (serve refuses the shipped one).
const ADMIT: (&str, &str) = ("ADMISSION_SECRET", "an-operator's-own-admission-secret");

fn load_env(env: &[(&str, &str)]) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    Settings::load_from(&sources(dir.path(), None, env)).unwrap()
}

#[test]
fn the_development_idempotency_secret_is_refused_outside_development() {
    let key = ("PAYLOAD_ENCRYPTION_KEY", KEY);
    for env in [&[key][..], &[key, ("FLIGHTCTL_ENV", "production")]] {
        let err = load_env(env).check_secrets(Service::Serve).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("IDEMPOTENCY_SECRET"), "{env:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
    let empty = load_env(&[key, ("IDEMPOTENCY_SECRET", "")]);
    assert!(empty.check_secrets(Service::Serve).is_err(), "empty");
    let dev = load_env(&[key, ("FLIGHTCTL_ENV", "development")]);
    assert!(dev.check_secrets(Service::Serve).is_ok());
    let own = load_env(&[
        key,
        ("IDEMPOTENCY_SECRET", "an-operator's-own-secret"),
        ADMIT,
    ]);
    assert!(own.check_secrets(Service::Serve).is_ok());
    // The worker never keys a fingerprint: the secret is not its concern.
    assert!(load_env(&[key]).check_secrets(Service::Worker).is_ok());
}

#[test]
fn serve_and_worker_refuse_to_run_without_a_payload_key_unless_encryption_is_off() {
    let own = ("IDEMPOTENCY_SECRET", "an-operator's-own-secret");
    for service in [Service::Serve, Service::Worker] {
        for env in [
            &[own, ADMIT][..],
            &[own, ADMIT, ("FLIGHTCTL_ENV", "development")],
        ] {
            let err = load_env(env).check_secrets(service).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("PAYLOAD_ENCRYPTION_KEY"),
                "{service:?}: {text}"
            );
            assert!(text.contains("PAYLOAD_ENCRYPTION=false"), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
        }
        let off = load_env(&[own, ADMIT, ("PAYLOAD_ENCRYPTION", "false")]);
        off.check_secrets(service).unwrap();
        assert!(off.temporal.payload_keys().unwrap().encrypt.is_none());
    }
    let err = Settings::load_from(&sources(
        tempfile::tempdir().unwrap().path(),
        None,
        &[("PAYLOAD_ENCRYPTION", "off")],
    ))
    .unwrap_err();
    assert!(err.to_string().contains("PAYLOAD_ENCRYPTION"), "{err}");
}

#[test]
fn with_encryption_off_a_given_key_only_decrypts() {
    let s = load_env(&[
        ("PAYLOAD_ENCRYPTION", "false"),
        ("PAYLOAD_ENCRYPTION_KEY", KEY),
        ("PAYLOAD_ENCRYPTION_KEY_ID", "old"),
    ]);
    let keys = s.temporal.payload_keys().unwrap();
    assert!(keys.encrypt.is_none(), "nothing is encrypted");
    assert_eq!(keys.decrypt.len(), 1, "older payloads still open");
}

#[test]
fn the_cli_refuses_to_serve_on_development_secrets_with_one_line() {
    let key = [("PAYLOAD_ENCRYPTION_KEY", KEY)];
    let development = [("FLIGHTCTL_ENV", "development")];
    let codec_on_public = [
        ("PAYLOAD_ENCRYPTION_KEY", KEY),
        ("IDEMPOTENCY_SECRET", "an-operator's-own-secret"),
        ADMIT,
        ("CODEC_ON_PUBLIC_LISTENER", "true"),
    ];
    for (command, env, named) in [
        ("serve", &key[..], "IDEMPOTENCY_SECRET"),
        ("worker", &[], "PAYLOAD_ENCRYPTION_KEY"),
        ("serve", &development, "PAYLOAD_ENCRYPTION_KEY"),
        ("serve", &codec_on_public, "CODEC_ON_PUBLIC_LISTENER"),
    ] {
        let out = flightctl(&[command], env);
        assert_eq!(out.status.code(), Some(1), "{command} {env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(named), "{command} {env:?}: {stderr}");
    }
}

#[test]
fn the_admin_listener_is_loopback_8081_unless_told_otherwise() {
    let s = load_env(&[]);
    assert_eq!(
        (s.server.admin_host.as_str(), s.server.admin_port),
        ("127.0.0.1", 8081)
    );
    assert!(!s.temporal.codec_on_public_listener);
    let s = load_env(&[("ADMIN_HOST", "0.0.0.0"), ("ADMIN_PORT", "9181")]);
    assert_eq!(
        (s.server.admin_host.as_str(), s.server.admin_port),
        ("0.0.0.0", 9181)
    );
    assert_eq!(load_env(&[("ADMIN_PORT", "0")]).server.admin_port, 0);
    for (var, value) in [("ADMIN_PORT", "80801"), ("CODEC_ON_PUBLIC_LISTENER", "yes")] {
        let dir = tempfile::tempdir().unwrap();
        let err = Settings::load_from(&sources(dir.path(), None, &[(var, value)])).unwrap_err();
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn serve_refuses_the_codec_on_the_public_listener_outside_development() {
    let secrets = [
        ("PAYLOAD_ENCRYPTION_KEY", KEY),
        ("IDEMPOTENCY_SECRET", "an-operator's-own-secret"),
        ADMIT,
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let env: Vec<(&str, &str)> = secrets.iter().chain(extra).copied().collect();
        load_env(&env)
    };
    let public = ("CODEC_ON_PUBLIC_LISTENER", "true");
    for env in [&[public][..], &[public, ("FLIGHTCTL_ENV", "production")]] {
        let err = with(env).check_secrets(Service::Serve).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("CODEC_ON_PUBLIC_LISTENER"), "{env:?}: {text}");
        assert!(text.contains("ADMIN_PORT"), "it names the way: {text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
    // On a development machine; with the codec off nothing is exposed; the
    // worker serves no HTTP.
    let development = with(&[public, ("FLIGHTCTL_ENV", "development")]);
    development.check_secrets(Service::Serve).unwrap();
    let off = with(&[public, ("CODEC_ENDPOINT_ENABLED", "false")]);
    off.check_secrets(Service::Serve).unwrap();
    with(&[public]).check_secrets(Service::Worker).unwrap();
    with(&[]).check_secrets(Service::Serve).unwrap();
}

#[test]
fn the_claim_wait_is_one_setting_that_outlives_the_call() {
    let s = load_env(&[("API_CALL_TIMEOUT", "7s")]);
    assert_eq!(s.server.claim_ttl(), Duration::from_secs(12));
}

#[test]
fn mail_settings_come_from_smtp_url_and_mail_from() {
    let s = load_env(&[]);
    assert!(s.mail.smtp_url.is_none(), "no SMTP_URL: no mail is sent");
    assert_eq!(s.mail.from, "flightctl <bookings@flightctl.invalid>");
    assert!(load_env(&[("SMTP_URL", " ")]).mail.smtp_url.is_none());
    let s = load_env(&[
        (
            "SMTP_URL",
            "smtp://user:s3cret-smtp@mail.internal:587?tls=required",
        ),
        ("MAIL_FROM", "Bookings <bookings@example.com>"),
    ]);
    let url = s.mail.smtp_url.as_ref().expect("SMTP_URL is read");
    assert_eq!(
        url.expose(),
        "smtp://user:s3cret-smtp@mail.internal:587?tls=required"
    );
    assert_eq!(s.mail.from, "Bookings <bookings@example.com>");
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("mail.internal"),
        "{debug}"
    );
}

#[test]
fn a_bad_mail_setting_stops_loading_without_showing_the_url() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("MAIL_FROM", "bookings"),
        ("SMTP_URL", "mail.internal:587 user s3cret-smtp"),
    ] {
        let err = Settings::load_from(&sources(dir.path(), None, &[(var, value)])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(var), "{var}: {text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}

#[test]
fn redis_url_selects_a_cluster_and_redis_addr_stays_the_default() {
    use flightctl::config::RedisTarget;
    let dir = tempfile::tempdir().unwrap();
    let load = |env: &[(&str, &str)]| Settings::load_from(&sources(dir.path(), None, env));
    let single = load(&[]).unwrap().redis.target;
    assert_eq!(
        single,
        RedisTarget::Single {
            host: "localhost".into(),
            port: 6379,
            db: 0
        }
    );
    let cluster = load(&[("REDIS_URL", "redis-cluster://r1:7000,r2:7001")])
        .unwrap()
        .redis
        .target;
    assert_eq!(
        cluster,
        RedisTarget::Cluster {
            nodes: vec![("r1".into(), 7000), ("r2".into(), 7001)]
        }
    );
}

#[test]
fn a_bad_redis_url_stops_loading_and_the_cli_without_showing_a_password() {
    let dir = tempfile::tempdir().unwrap();
    for (env, expected) in [
        (vec![("REDIS_URL", "redis-cluster://r1:x")], "no valid port"),
        (
            vec![("REDIS_URL", "redis://:s3cret@r1:6379")],
            "REDIS_PASSWORD",
        ),
        (
            vec![("REDIS_URL", "redis-cluster://r1:7000"), ("REDIS_DB", "2")],
            "database 0 only",
        ),
        (vec![("REDIS_ADDR", "cache:63x9")], "REDIS_ADDR"),
    ] {
        let err = Settings::load_from(&sources(dir.path(), None, &env)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expected), "{env:?}: {text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
    let out = flightctl(
        &["migrate", "status"],
        &[("REDIS_URL", "rediss://u:s3cret@r1:6379")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn temporal_tls_comes_from_its_environment_names_and_is_off_by_default() {
    let plain = load_env(&[]);
    assert!(!plain.temporal.tls_enabled());
    assert!(plain.temporal.tls().unwrap().is_none(), "plain gRPC");

    let s = load_env(&[
        ("TEMPORAL_TLS_CA", "/etc/temporal/ca.pem"),
        ("TEMPORAL_TLS_CERT", "/etc/temporal/client.pem"),
        ("TEMPORAL_TLS_KEY", "/etc/temporal/client.key"),
        ("TEMPORAL_TLS_SERVER_NAME", "temporal.example"),
        ("TEMPORAL_API_KEY", " s3cret-api-key\n"),
    ]);
    let t = &s.temporal;
    assert_eq!(t.tls_ca, "/etc/temporal/ca.pem");
    assert_eq!(t.tls_cert, "/etc/temporal/client.pem");
    assert_eq!(t.tls_key, "/etc/temporal/client.key");
    assert_eq!(t.tls_server_name, "temporal.example");
    assert_eq!(t.api_key(), Some("s3cret-api-key"), "trimmed");
    assert!(t.tls_enabled());
    let debug = format!("{s:?}");
    assert!(!debug.contains("s3cret"), "{debug}");

    // Each one alone turns TLS on; TEMPORAL_TLS=true with the system's roots.
    for env in [
        ("TEMPORAL_TLS", "true"),
        ("TEMPORAL_TLS_CA", "/ca.pem"),
        ("TEMPORAL_TLS_SERVER_NAME", "t.example"),
        ("TEMPORAL_API_KEY", "k"),
    ] {
        assert!(load_env(&[env]).temporal.tls_enabled(), "{env:?}");
    }
    let roots = load_env(&[("TEMPORAL_TLS", "true")])
        .temporal
        .tls()
        .unwrap();
    let roots = roots.expect("TLS");
    assert!(roots.ca.is_none() && roots.cert.is_none() && roots.server_name.is_none());
}

#[test]
fn a_client_certificate_without_its_key_or_a_bad_api_key_stops_loading() {
    let dir = tempfile::tempdir().unwrap();
    for env in [
        vec![("TEMPORAL_TLS_CERT", "/c.pem")],
        vec![("TEMPORAL_TLS_KEY", "/c.key")],
    ] {
        let err = Settings::load_from(&sources(dir.path(), None, &env)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("TEMPORAL_TLS_CERT") && text.contains("TEMPORAL_TLS_KEY"),
            "{env:?}: {text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }
    let env = [("TEMPORAL_API_KEY", "s3cret key")];
    let err = Settings::load_from(&sources(dir.path(), None, &env)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("TEMPORAL_API_KEY"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn public_metrics_are_off_unless_development_or_asked_for() {
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let load = |env: &[(&str, &str)]| Settings::load_from(&sources(&repo, None, env)).unwrap();
    assert!(!load(&[]).server.public_metrics);
    assert!(
        !load(&[("FLIGHTCTL_ENV", "production")])
            .server
            .public_metrics
    );
    assert!(
        load(&[("FLIGHTCTL_ENV", "development")])
            .server
            .public_metrics
    );
    assert!(load(&[("PUBLIC_METRICS", "true")]).server.public_metrics);
    let err = Settings::load_from(&sources(&repo, None, &[("PUBLIC_METRICS", "yes")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("PUBLIC_METRICS"), "{err}");
}

#[test]
fn a_short_codec_token_stops_loading_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let short = "short-token";
    let err = Settings::load_from(&sources(dir.path(), None, &[("CODEC_TOKEN", short)]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("CODEC_TOKEN"), "{err}");
    assert!(!err.contains(short), "{err}");
    let long = "a-codec-token-of-at-least-32-characters";
    let s = load_env(&[("CODEC_TOKEN", long)]);
    assert_eq!(s.temporal.codec_token.expose(), long);
    assert_eq!(format!("{:?}", s.temporal.codec_token), "[redacted]");
}

#[test]
fn outside_development_a_shipped_or_patterned_payload_key_is_refused_for_both_services() {
    let own = ("IDEMPOTENCY_SECRET", "an-operator's-own-secret");
    let compose = "DdETYdFSeu1cCmRA4WzFgSiO6Sir0iWdZWwgMGDUkpo=";
    for service in [Service::Serve, Service::Worker] {
        for key in [compose, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="] {
            let env = [own, ADMIT, ("PAYLOAD_ENCRYPTION_KEY", key)];
            let err = load_env(&env)
                .check_secrets(service)
                .unwrap_err()
                .to_string();
            assert!(err.contains("PAYLOAD_ENCRYPTION_KEY"), "{err}");
            assert!(!err.contains(key), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            let dev = [
                own,
                ("PAYLOAD_ENCRYPTION_KEY", key),
                ("FLIGHTCTL_ENV", "development"),
            ];
            load_env(&dev).check_secrets(service).unwrap();
        }
        load_env(&[own, ADMIT, ("PAYLOAD_ENCRYPTION_KEY", KEY)])
            .check_secrets(service)
            .unwrap();
    }
}

#[test]
fn the_fair_share_per_client_has_its_defaults_and_refuses_zero_caps() {
    let s = load_env(&[]);
    assert_eq!(s.server.max_live_orders_per_client, 4);
    assert_eq!(s.server.max_streams_per_client, 16);
    assert_eq!(s.server.in_flight_share(), 4, "a quarter of 16");
    let s = load_env(&[("API_MAX_IN_FLIGHT", "40")]);
    assert_eq!(s.server.in_flight_share(), 10);
    let s = load_env(&[("API_MAX_IN_FLIGHT", "2")]);
    assert_eq!(s.server.in_flight_share(), 1, "at least one");
    let s = load_env(&[
        ("MAX_IN_FLIGHT_PER_CLIENT", "6"),
        ("MAX_LIVE_ORDERS_PER_CLIENT", "2"),
        ("MAX_STREAMS_PER_CLIENT", "3"),
    ]);
    assert_eq!(s.server.in_flight_share(), 6);
    assert_eq!(s.server.max_live_orders_per_client, 2);
    assert_eq!(s.server.max_streams_per_client, 3);
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("MAX_LIVE_ORDERS_PER_CLIENT", "0"),
        ("MAX_STREAMS_PER_CLIENT", "0"),
        ("MAX_IN_FLIGHT_PER_CLIENT", "a few"),
    ] {
        let err = Settings::load_from(&sources(dir.path(), None, &[(var, value)])).unwrap_err();
        assert!(err.to_string().contains(var), "{var}: {err}");
    }
}

#[test]
fn the_development_admission_secret_is_refused_outside_development() {
    let key = ("PAYLOAD_ENCRYPTION_KEY", KEY);
    let own = ("IDEMPOTENCY_SECRET", "an-operator's-own-secret");
    for env in [&[key, own][..], &[key, own, ("ADMISSION_SECRET", "")]] {
        let err = load_env(env).check_secrets(Service::Serve).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ADMISSION_SECRET"), "{env:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
    assert!(
        load_env(&[key, own, ADMIT])
            .check_secrets(Service::Serve)
            .is_ok()
    );
    let dev = load_env(&[key, ("FLIGHTCTL_ENV", "development")]);
    assert!(dev.check_secrets(Service::Serve).is_ok());
    // The worker signs no admission.
    assert!(load_env(&[key]).check_secrets(Service::Worker).is_ok());
    // The waiting room's timings, from their environment names.
    let s = load_env(&[("QUEUE_GRACE", "30s"), ("ADMISSION_TTL", "90s")]);
    assert_eq!(s.server.queue_grace, std::time::Duration::from_secs(30));
    assert_eq!(s.server.admission_ttl, std::time::Duration::from_secs(90));
}
