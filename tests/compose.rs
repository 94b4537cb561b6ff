//! The container stack of SPEC §8, checked by reading `compose.yaml` (no
//! Docker engine needed): its services, ports, start order, healthchecks,
//! volumes and the environment contract they get. The monitoring services
//! are in `tests/compose_monitoring.rs`, the image in `tests/dockerfile.rs`.
//!
//! Compose interpolation is resolved the way `docker compose` resolves it in a
//! clean shell with no `.env`: `${VAR:-default}` becomes its default. So these
//! tests check what a plain `docker compose up` runs.

#[path = "support/compose.rs"]
mod compose_file;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use flightctl::config::{Service, Settings, Sources};

use compose_file::*;

#[test]
fn compose_file_follows_the_compose_spec() {
    let compose = compose();
    assert!(
        compose.get("version").is_none(),
        "the Compose spec has no top-level version key"
    );
    let shared = &compose["x-flightctl"];
    for key in ["image", "build", "environment"] {
        assert!(
            !shared[key].is_null(),
            "x-flightctl holds the shared {key} of the flightctl services"
        );
    }
}

#[test]
fn every_service_of_the_stack_is_defined() {
    let compose = compose();
    for name in [
        "postgres",
        "redis",
        "temporal-db",
        "temporal",
        "temporal-ui",
        "migrate",
        "seed",
        "api",
        "worker",
        "prometheus",
        "grafana",
    ] {
        service(&compose, name);
    }
}

#[test]
fn default_ports_are_published_on_the_host() {
    let compose = compose();
    for (name, host, container) in [
        ("api", 8080, 8080),
        ("api", 8081, 8081),
        ("postgres", 5433, 5432),
        ("redis", 6379, 6379),
        ("temporal", 7233, 7233),
        ("temporal-ui", 8233, 8080),
        ("prometheus", 9090, 9090),
        ("grafana", 3000, 3000),
    ] {
        let ports = published_ports(service(&compose, name));
        assert!(
            ports.contains(&(host, container)),
            "{name} must publish {host}:{container}; publishes {ports:?}"
        );
    }
    let services = compose["services"].as_mapping().expect("services");
    let mut taken = BTreeMap::new();
    for (name, svc) in services {
        for (host, _) in published_ports(svc) {
            if let Some(other) = taken.insert(host, scalar(name)) {
                panic!("host port {host} is published by both {other} and {name:?}");
            }
        }
    }
}

#[test]
fn one_image_runs_every_flightctl_command() {
    let compose = compose();
    let image = scalar(&compose["x-flightctl"]["image"]);
    for (name, expected) in FLIGHTCTL_SERVICES {
        let svc = service(&compose, name);
        assert_eq!(command(svc), expected, "command of {name}");
        assert_eq!(
            scalar(&svc["image"]),
            image,
            "{name} runs the flightctl image"
        );
        assert!(svc["build"].is_mapping(), "{name} can build the image");
        assert!(
            svc["entrypoint"].is_null(),
            "{name} keeps the image's entrypoint"
        );
    }
}

#[test]
fn api_and_worker_wait_for_migrations() {
    let compose = compose();
    assert_depends_on(&compose, "migrate", "postgres", "service_healthy");
    assert_depends_on(
        &compose,
        "seed",
        "migrate",
        "service_completed_successfully",
    );
    for name in ["api", "worker"] {
        assert_depends_on(&compose, name, "migrate", "service_completed_successfully");
        if depends_on(service(&compose, name)).contains_key("seed") {
            assert_depends_on(&compose, name, "seed", "service_completed_successfully");
        }
    }
}

#[test]
fn api_and_worker_start_once_infrastructure_is_healthy() {
    let compose = compose();
    for name in ["api", "worker"] {
        for dependency in ["postgres", "redis", "temporal"] {
            assert_depends_on(&compose, name, dependency, "service_healthy");
        }
    }
    assert_depends_on(&compose, "temporal", "temporal-db", "service_healthy");
    assert_depends_on(&compose, "temporal-ui", "temporal", "service_healthy");
}

#[test]
fn one_shot_jobs_are_not_restarted() {
    let compose = compose();
    for name in ["migrate", "seed"] {
        assert_eq!(scalar(&service(&compose, name)["restart"]), "no", "{name}");
    }
    for name in ["api", "worker"] {
        let restart = &service(&compose, name)["restart"];
        assert!(
            !restart.is_null() && scalar(restart) != "no",
            "{name} is a long-running service and restarts"
        );
    }
}

#[test]
fn stateful_services_have_healthchecks() {
    let compose = compose();
    for name in [
        "postgres",
        "redis",
        "temporal-db",
        "temporal",
        "api",
        "prometheus",
        "grafana",
    ] {
        assert!(
            healthcheck(service(&compose, name)).is_some(),
            "{name} needs a healthcheck"
        );
    }
    let services = compose["services"].as_mapping().expect("services");
    for (name, svc) in services {
        for (dependency, condition) in depends_on(svc) {
            assert!(
                service_exists(&compose, &dependency),
                "{name:?} depends on unknown service {dependency}"
            );
            if condition == "service_healthy" {
                assert!(
                    healthcheck(service(&compose, &dependency)).is_some(),
                    "{name:?} waits for {dependency} to be healthy, which has no healthcheck"
                );
            }
        }
    }
}

#[test]
fn api_healthcheck_asks_the_health_endpoint() {
    let compose = compose();
    let api = service(&compose, "api");
    let port = env_var(api, "SERVER_PORT");
    let test = healthcheck(api).expect("api healthcheck").join(" ");
    assert!(
        test.contains(&format!(":{port}/health")),
        "api healthcheck must GET /health on SERVER_PORT; is {test:?}"
    );
}

#[test]
fn stateful_services_keep_their_data_in_named_volumes() {
    let compose = compose();
    for (name, path) in [
        ("postgres", "/var/lib/postgresql/data"),
        ("temporal-db", "/var/lib/postgresql/data"),
        ("redis", "/data"),
    ] {
        let volumes: Vec<String> = service(&compose, name)["volumes"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has no volumes"))
            .iter()
            .map(scalar)
            .collect();
        let volume = volumes
            .iter()
            .find_map(|v| v.strip_suffix(&format!(":{path}")))
            .unwrap_or_else(|| panic!("{name} must mount a volume at {path}; has {volumes:?}"));
        assert!(
            compose["volumes"].get(volume).is_some(),
            "{name} mounts {volume:?}, which is not a named volume"
        );
    }
    let redis = command(service(&compose, "redis")).join(" ");
    assert!(
        redis.contains("--appendonly yes"),
        "redis keeps holds across restarts"
    );
}

#[test]
fn workers_scale_out() {
    let compose = compose();
    let worker = service(&compose, "worker");
    assert!(
        worker["ports"]
            .as_sequence()
            .is_none_or(|ports| ports.is_empty()),
        "a worker publishing host ports cannot run as several replicas"
    );
    assert!(
        worker["container_name"].is_null(),
        "a fixed container_name prevents --scale worker=N"
    );
}

#[test]
fn flightctl_containers_get_the_whole_environment_contract() {
    let compose = compose();
    for (name, _) in FLIGHTCTL_SERVICES {
        let env = environment(service(&compose, name));
        for var in CONTAINER_ENV {
            assert!(
                env.get(var).is_some_and(|v| !v.is_empty()),
                "{name} must set {var}"
            );
        }
    }
}

#[test]
fn addresses_point_at_compose_services() {
    let compose = compose();
    for name in ["api", "worker"] {
        let svc = service(&compose, name);
        let database = env_var(svc, "DATABASE_HOST");
        let database_port: u16 = env_var(svc, "DATABASE_PORT").parse().expect("a port");
        let redis = env_var(svc, "REDIS_ADDR");
        let temporal = env_var(svc, "TEMPORAL_HOST");
        for (host, port) in [
            (database.as_str(), database_port),
            host_and_port(&redis),
            host_and_port(&temporal),
        ] {
            assert!(
                service_exists(&compose, host),
                "{name} connects to {host:?}, which is not a compose service"
            );
            let listens = published_ports(service(&compose, host))
                .iter()
                .any(|&(_, container)| container == port);
            assert!(
                listens,
                "{name} connects to {host}:{port}, not a port {host} serves"
            );
        }
    }
}

#[test]
fn database_credentials_match_the_postgres_service() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    for (name, _) in FLIGHTCTL_SERVICES {
        let svc = service(&compose, name);
        for (app, server) in [
            ("DATABASE_USER", "POSTGRES_USER"),
            ("DATABASE_PASSWORD", "POSTGRES_PASSWORD"),
            ("DATABASE_NAME", "POSTGRES_DB"),
        ] {
            assert_eq!(
                env_var(svc, app),
                env_var(postgres, server),
                "{name}: {app}"
            );
        }
    }
}

#[test]
fn temporal_runs_on_its_own_database_with_the_app_namespace() {
    let compose = compose();
    let temporal = service(&compose, "temporal");
    assert_eq!(env_var(temporal, "DB"), "postgres12");
    assert_eq!(env_var(temporal, "POSTGRES_SEEDS"), "temporal-db");
    service(&compose, "temporal-db");
    let api = service(&compose, "api");
    assert_eq!(
        env_var(temporal, "DEFAULT_NAMESPACE"),
        env_var(api, "TEMPORAL_NAMESPACE"),
        "auto-setup registers the namespace the app uses"
    );
    assert_eq!(
        env_var(service(&compose, "temporal-ui"), "TEMPORAL_ADDRESS"),
        env_var(api, "TEMPORAL_HOST")
    );
}

#[test]
fn temporal_payloads_are_encrypted_with_the_same_key_by_api_and_worker() {
    let compose = compose();
    let api = service(&compose, "api");
    let key = env_var(api, "PAYLOAD_ENCRYPTION_KEY");
    assert!(!key.is_empty(), "the stack encrypts Temporal payloads");
    for name in ["api", "worker"] {
        let svc = service(&compose, name);
        assert_eq!(env_var(svc, "PAYLOAD_ENCRYPTION_KEY"), key, "{name}");
        assert_eq!(
            env_var(svc, "PAYLOAD_ENCRYPTION_KEY_ID"),
            env_var(api, "PAYLOAD_ENCRYPTION_KEY_ID"),
            "{name}"
        );
    }
}

/// The browser calls the codec, so the UI's endpoint is the api's admin
/// listener as the host reaches it: published on the host's loopback only,
/// never on the public port (which answers `/codec/*` 404).
#[test]
fn the_temporal_ui_decodes_through_the_admin_listener_on_the_hosts_loopback() {
    let compose = compose();
    let api = service(&compose, "api");
    let admin_port: u16 = env_var(api, "ADMIN_PORT").parse().expect("a port");
    let server_port: u16 = env_var(api, "SERVER_PORT").parse().expect("a port");
    assert_ne!(admin_port, server_port);
    assert_eq!(
        env_var(api, "ADMIN_HOST"),
        "0.0.0.0",
        "inside the container, so the published port reaches it"
    );
    let admin: Vec<_> = published(api)
        .into_iter()
        .filter(|&(_, _, container)| container == admin_port)
        .collect();
    let [(ip, host_port, _)] = &admin[..] else {
        panic!("api publishes its admin port {admin_port} once: {admin:?}");
    };
    assert_eq!(
        ip.as_deref(),
        Some("127.0.0.1"),
        "on the host's loopback only"
    );
    assert_eq!(
        env_var(service(&compose, "temporal-ui"), "TEMPORAL_CODEC_ENDPOINT"),
        format!("http://localhost:{host_port}/codec")
    );
    let services = compose["services"].as_mapping().expect("services");
    for (name, svc) in services {
        let env = environment(svc);
        assert_ne!(
            env.get("CODEC_ON_PUBLIC_LISTENER").map(String::as_str),
            Some("true"),
            "{name:?}"
        );
    }
}

#[test]
fn compose_environment_passes_the_config_loader() {
    let compose = compose();
    let env = environment(service(&compose, "api"));
    // The image copies config/ into its workdir, so the container reads the
    // same files as this test, then its environment.
    let settings = Settings::load_from(&Sources {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        file: None,
        env: Box::new(move |name| env.get(name).cloned()),
    })
    .expect("the compose environment is a valid configuration");
    assert_eq!(settings.server.host, "0.0.0.0");
    assert_eq!(settings.server.port, 8080);
    assert_eq!(settings.server.admin_port, 8081);
    assert!(!settings.temporal.codec_on_public_listener);
    assert_eq!(settings.database.host, "postgres");
    assert_eq!(settings.database.port, 5432);
    assert_eq!(settings.redis.target.to_string(), "redis:6379 (db 0)");
    assert_eq!(settings.temporal.host, "temporal:7233");
    assert_eq!(settings.temporal.namespace, "default");
    assert_eq!(settings.temporal.task_queue, "booking-queue");
    assert_eq!(settings.temporal.ui_url, "http://localhost:8233");
    let keys = settings
        .temporal
        .payload_keys()
        .expect("valid payload keys");
    assert!(keys.encrypt.is_some(), "payloads are encrypted");
    let booking = &settings.booking;
    assert_eq!(
        booking.seat_reservation_timeout,
        Duration::from_secs(15 * 60)
    );
    assert_eq!(booking.payment_validation_timeout, Duration::from_secs(10));
    assert_eq!(booking.payment_max_attempts, 3);
    assert_eq!(booking.payment_failure_rate, 0.15);
}

#[test]
fn serve_and_worker_start_on_the_stacks_secrets() {
    let compose = compose();
    for (name, role) in [("api", Service::Serve), ("worker", Service::Worker)] {
        let env = environment(service(&compose, name));
        let settings = Settings::load_from(&Sources {
            config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            file: None,
            env: Box::new(move |name| env.get(name).cloned()),
        })
        .expect("the compose environment is a valid configuration");
        assert!(settings.is_development(), "its development secrets say so");
        settings
            .check_secrets(role)
            .unwrap_or_else(|e| panic!("{name} would refuse to start: {e}"));
    }
}
