//! The container stack of SPEC §8, checked by reading `compose.yaml`, the
//! `Dockerfile` and `.dockerignore` (no Docker engine needed).
//!
//! Compose interpolation is resolved the way `docker compose` resolves it in a
//! clean shell with no `.env`: `${VAR:-default}` becomes its default. So these
//! tests check what a plain `docker compose up` runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use flightctl::config::{Service, Settings, Sources};
use serde_yaml::Value;

/// The services that run the flightctl image, with their commands.
const FLIGHTCTL_SERVICES: [(&str, &[&str]); 4] = [
    ("migrate", &["migrate", "up"]),
    ("seed", &["seed"]),
    ("api", &["serve"]),
    ("worker", &["worker"]),
];

/// The variables of the `ENV_VARS` contract in src/config/env.rs whose built-in
/// defaults (localhost, 5433, ...) are wrong inside a container, or which the
/// stack pins so it does not depend on the defaults.
const CONTAINER_ENV: [&str; 19] = [
    "SERVER_HOST",
    "SERVER_PORT",
    "ADMIN_HOST",
    "ADMIN_PORT",
    "DATABASE_HOST",
    "DATABASE_PORT",
    "DATABASE_USER",
    "DATABASE_PASSWORD",
    "DATABASE_NAME",
    "DATABASE_SSLMODE",
    "REDIS_ADDR",
    "TEMPORAL_HOST",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_TASK_QUEUE",
    "SEAT_RESERVATION_TIMEOUT",
    "PAYMENT_VALIDATION_TIMEOUT",
    "PAYMENT_MAX_RETRIES",
    "PAYMENT_FAILURE_RATE",
    "WORKER_METRICS_PORT",
];

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---------------------------------------------------------------- compose.yaml

/// `compose.yaml` with its `<<:` merge keys applied (serde_yaml keeps them
/// as plain keys otherwise).
fn compose() -> Value {
    let mut value: Value =
        serde_yaml::from_str(&repo_file("compose.yaml")).expect("compose.yaml is valid YAML");
    value
        .apply_merge()
        .expect("compose.yaml merge keys resolve");
    value
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(service.is_mapping(), "compose.yaml has no service {name:?}");
    service
}

fn service_exists(compose: &Value, name: &str) -> bool {
    compose["services"][name].is_mapping()
}

/// Resolves compose interpolation with nothing set in the environment:
/// `${VAR:-default}` and `${VAR-default}` become the default, `$$` is a
/// literal `$`. A variable without a default fails the test: the stack must
/// come up without a `.env`.
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {text:?}"));
            let expr = &body[..end];
            let (_, default) = expr
                .split_once(":-")
                .or_else(|| expr.split_once('-'))
                .unwrap_or_else(|| panic!("${{{expr}}} in {text:?} has no default"));
            out.push_str(default);
            rest = &body[end + 1..];
        } else {
            panic!("write ${{VAR:-default}}, not a bare $VAR, in {text:?}");
        }
    }
    out.push_str(rest);
    out
}

/// A scalar as compose sees it after interpolation.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => interpolate(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// `environment:` in either the map or the `KEY=value` list form. A key with
/// no value (passed through from the shell) counts as unset.
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (scalar(k), scalar(v)))
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .filter_map(|item| {
                let item = scalar(item);
                item.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn env_var(service: &Value, name: &str) -> String {
    environment(service)
        .remove(name)
        .unwrap_or_else(|| panic!("{name} is not set"))
}

/// `(host IP, host port, container port)` of every published port, in the
/// short (`[IP:]HOST:CONTAINER[/proto]`) or the long
/// (`host_ip`/`published`/`target`) form; no IP is every interface.
fn published(service: &Value) -> Vec<(Option<String>, u16, u16)> {
    let port = |text: &str| -> u16 {
        text.parse()
            .unwrap_or_else(|e| panic!("port {text:?}: {e}"))
    };
    let Some(ports) = service["ports"].as_sequence() else {
        return Vec::new();
    };
    ports
        .iter()
        .map(|entry| {
            if entry.is_mapping() {
                let ip = entry.get("host_ip").map(scalar);
                return (
                    ip,
                    port(&scalar(&entry["published"])),
                    port(&scalar(&entry["target"])),
                );
            }
            let text = scalar(entry);
            let mapping = text.split('/').next().unwrap_or_default();
            match mapping.rsplitn(3, ':').collect::<Vec<_>>()[..] {
                [container, host] => (None, port(host), port(container)),
                [container, host, ip] => (Some(ip.to_string()), port(host), port(container)),
                _ => panic!("{text:?} publishes on a random host port"),
            }
        })
        .collect()
}

/// `(host port, container port)` of every published port.
fn published_ports(service: &Value) -> Vec<(u16, u16)> {
    published(service)
        .into_iter()
        .map(|(_, host, container)| (host, container))
        .collect()
}

fn command(service: &Value) -> Vec<String> {
    match &service["command"] {
        Value::Sequence(args) => args.iter().map(scalar).collect(),
        Value::String(line) => line.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// `depends_on` as service name -> condition, in either form.
fn depends_on(service: &Value) -> BTreeMap<String, String> {
    match &service["depends_on"] {
        Value::Sequence(names) => names
            .iter()
            .map(|n| (scalar(n), "service_started".to_string()))
            .collect(),
        Value::Mapping(map) => map
            .iter()
            .map(|(name, dep)| {
                let condition = match &dep["condition"] {
                    Value::Null => "service_started".to_string(),
                    condition => scalar(condition),
                };
                (scalar(name), condition)
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The healthcheck's command, if it has an enabled one.
fn healthcheck(service: &Value) -> Option<Vec<String>> {
    let check = &service["healthcheck"];
    if check["disable"].as_bool() == Some(true) {
        return None;
    }
    let test = match &check["test"] {
        Value::Sequence(args) => args.iter().map(scalar).collect(),
        Value::String(line) => vec!["CMD-SHELL".to_string(), interpolate(line)],
        _ => Vec::new(),
    };
    match test.first().map(String::as_str) {
        None | Some("NONE") => None,
        Some(_) => Some(test),
    }
}

fn assert_depends_on(compose: &Value, name: &str, dependency: &str, condition: &str) {
    let deps = depends_on(service(compose, name));
    assert_eq!(
        deps.get(dependency).map(String::as_str),
        Some(condition),
        "{name} must depend on {dependency} with condition {condition}; has {deps:?}"
    );
}

/// Splits `host:port` into a compose service and a port.
fn host_and_port(address: &str) -> (&str, u16) {
    let (host, port) = address
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{address:?} is not host:port"));
    (host, port.parse().expect("a port number"))
}

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

// ------------------------------------------------------------------ metrics

/// `(source, target)` of a service's bind mounts of repository paths
/// (`./...`), as `docker compose` resolves them next to compose.yaml.
fn bind_mounts(service: &Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_sequence()
        .map(|volumes| {
            volumes
                .iter()
                .map(scalar)
                .filter(|v| v.starts_with("./"))
                .map(|v| {
                    let mut parts = v.split(':');
                    let source = parts.next().unwrap_or_default().to_string();
                    let target = parts.next().expect("a mount target").to_string();
                    (source, target)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where a repository path is mounted in a service's container.
fn mounted_at(service: &Value, source: &str) -> String {
    bind_mounts(service)
        .into_iter()
        .find(|(s, _)| s.trim_end_matches('/') == source)
        .map(|(_, target)| target)
        .unwrap_or_else(|| panic!("{source} is not mounted"))
}

fn yaml_file(name: &str) -> Value {
    serde_yaml::from_str(&repo_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const DASHBOARD: &str = "monitoring/grafana/dashboards/flightctl.json";

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&repo_file(DASHBOARD)).expect("the dashboard is JSON")
}

/// Every panel of the dashboard, rows' nested panels included.
fn panels(dashboard: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        out.push(panel.clone());
        if let Some(nested) = panel["panels"].as_array() {
            out.extend(nested.iter().cloned());
        }
    }
    out
}

/// The metric names a PromQL expression reads: identifiers outside string
/// literals with one of our prefixes.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut quoted = false;
    let mut current = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            current.push(c);
            continue;
        }
        let word = std::mem::take(&mut current);
        if word.starts_with("flightctl_") || word.starts_with("temporal_") {
            names.push(word);
        }
    }
    names
}

/// The string literals `"flightctl_..."` of a source file.
fn defined_names(source: &str) -> Vec<String> {
    source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("flightctl_") && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn monitoring_images_are_pinned() {
    let compose = compose();
    for name in ["prometheus", "grafana"] {
        let image = scalar(&service(&compose, name)["image"]);
        let (_, tag) = image
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{name} image {image} has no tag"));
        assert!(
            tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
            "{name} pins a version, not {tag}"
        );
    }
}

#[test]
fn monitoring_starts_after_what_it_watches() {
    let compose = compose();
    assert_depends_on(&compose, "prometheus", "api", "service_started");
    assert_depends_on(&compose, "prometheus", "worker", "service_started");
    assert_depends_on(&compose, "grafana", "prometheus", "service_healthy");
    for name in ["prometheus", "grafana"] {
        let restart = scalar(&service(&compose, name)["restart"]);
        assert_eq!(restart, "unless-stopped", "{name}");
    }
}

#[test]
fn monitoring_mounts_files_of_the_repository() {
    let compose = compose();
    for name in ["prometheus", "grafana"] {
        let mounts = bind_mounts(service(&compose, name));
        assert!(!mounts.is_empty(), "{name} mounts its configuration");
        for (source, _) in mounts {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(&source);
            assert!(
                path.exists(),
                "{name} mounts {source}, which does not exist"
            );
        }
    }
    let grafana = service(&compose, "grafana");
    let home = env_var(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH");
    let dashboards = mounted_at(grafana, "./monitoring/grafana/dashboards");
    assert_eq!(home, format!("{dashboards}/flightctl.json"));
}

#[test]
fn prometheus_scrapes_the_api_and_every_worker() {
    let compose = compose();
    let prometheus = service(&compose, "prometheus");
    let config_path = command(prometheus)
        .iter()
        .find_map(|arg| arg.strip_prefix("--config.file=").map(str::to_string))
        .expect("--config.file");
    assert_eq!(
        mounted_at(prometheus, "./monitoring/prometheus.yml"),
        config_path
    );
    let config = yaml_file("monitoring/prometheus.yml");
    let jobs = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs");
    let path = |job: &Value| match &job["metrics_path"] {
        Value::Null => "/metrics".to_string(),
        path => scalar(path),
    };
    let api_target = format!("api:{}", env_var(service(&compose, "api"), "SERVER_PORT"));
    let api = jobs.iter().find(|job| {
        job["static_configs"].as_sequence().is_some_and(|configs| {
            configs.iter().any(|c| {
                c["targets"]
                    .as_sequence()
                    .is_some_and(|t| t.iter().any(|t| scalar(t) == api_target))
            })
        })
    });
    let api = api.unwrap_or_else(|| panic!("no job scrapes {api_target}"));
    assert_eq!(path(api), "/metrics");
    // Every replica: the service name resolves to all of them.
    let worker_port: u64 = env_var(service(&compose, "worker"), "WORKER_METRICS_PORT")
        .parse()
        .expect("a port");
    let worker = jobs
        .iter()
        .find(|job| {
            job["dns_sd_configs"].as_sequence().is_some_and(|configs| {
                configs.iter().any(|c| {
                    c["names"]
                        .as_sequence()
                        .is_some_and(|n| n.iter().any(|n| scalar(n) == "worker"))
                        && c["port"].as_u64() == Some(worker_port)
                })
            })
        })
        .unwrap_or_else(|| panic!("no job discovers the workers on port {worker_port}"));
    assert_eq!(path(worker), "/metrics");
}

#[test]
fn grafana_provisions_the_datasource_and_the_dashboard() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    let provisioning = mounted_at(grafana, "./monitoring/grafana/provisioning");
    assert_eq!(provisioning, "/etc/grafana/provisioning");
    let datasources = yaml_file("monitoring/grafana/provisioning/datasources/prometheus.yml");
    let source = &datasources["datasources"][0];
    assert_eq!(scalar(&source["type"]), "prometheus");
    let url = scalar(&source["url"]);
    let (host, port) = host_and_port(url.trim_start_matches("http://"));
    assert!(
        published_ports(service(&compose, host))
            .iter()
            .any(|&(_, container)| container == port),
        "the datasource {url} is not a port of a compose service"
    );
    let uid = scalar(&source["uid"]);
    let providers = yaml_file("monitoring/grafana/provisioning/dashboards/flightctl.yml");
    assert_eq!(
        scalar(&providers["providers"][0]["options"]["path"]),
        mounted_at(grafana, "./monitoring/grafana/dashboards"),
        "the provider reads the mounted dashboards"
    );
    let dashboard = dashboard();
    for panel in panels(&dashboard).iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"],
            uid.as_str(),
            "{}",
            panel["title"]
        );
    }
    let titles: Vec<String> = panels(&dashboard)
        .iter()
        .filter_map(|p| p["title"].as_str().map(str::to_string))
        .collect();
    for wanted in [
        "Bookings/s",
        "Conflict rate",
        "Payment outcomes",
        "p99 latency",
        "Live holds",
    ] {
        assert!(
            titles.iter().any(|t| t == wanted),
            "the dashboard shows {wanted}; has {titles:?}"
        );
    }
}

#[test]
fn the_dashboard_queries_only_metrics_the_code_exports() {
    let defined = defined_names(&repo_file("src/metrics.rs"));
    assert!(
        defined.len() >= 9,
        "names found in src/metrics.rs: {defined:?}"
    );
    // The SDK's names are checked against a live worker there.
    let checked_live = repo_file("tests/metrics.rs");
    let mut queried = Vec::new();
    for panel in panels(&dashboard()) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a PromQL expr");
            queried.extend(metric_names(expr));
        }
    }
    assert!(!queried.is_empty());
    for name in &queried {
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        if name.starts_with("flightctl_") {
            assert!(
                defined.iter().any(|d| d == name || d == base),
                "the dashboard queries {name}, which src/metrics.rs does not define"
            );
        } else {
            assert!(
                checked_live.contains(&format!("\"{name}\""))
                    || checked_live.contains(&format!("\"{base}_count\"")),
                "the dashboard queries {name}; tests/metrics.rs does not see it on a worker"
            );
        }
    }
}

// ------------------------------------------------------------------ Dockerfile

/// One build stage: its base image, its name and its instructions as
/// `(KEYWORD, arguments)`, continuation lines joined.
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<(String, String)>,
}

impl Stage {
    fn all(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.instructions
            .iter()
            .filter(move |(k, _)| k == keyword)
            .map(|(_, args)| args.as_str())
    }

    fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last()
    }
}

fn dockerfile_stages() -> Vec<Stage> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in repo_file("Dockerfile").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => lines.push(std::mem::take(&mut current) + line),
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in lines {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let (keyword, args) = (keyword.to_uppercase(), args.trim().to_string());
        if keyword == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let image = words.iter().find(|w| !w.starts_with("--")).expect("image");
            let name = match words[..] {
                [.., as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            stages.push(Stage {
                image: image.to_string(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push((keyword, args));
        }
    }
    stages
}

fn json_args(instruction: &str) -> Vec<String> {
    serde_json::from_str(instruction)
        .unwrap_or_else(|e| panic!("{instruction:?} is not the exec (JSON) form: {e}"))
}

/// `stage` with the stages it builds on (`FROM <stage>`) merged in: the
/// first one's base image and every instruction, in order.
fn flattened(stages: &[Stage], stage: &Stage) -> Stage {
    let mut merged = match stages
        .iter()
        .find(|s| s.name.as_deref() == Some(stage.image.as_str()))
    {
        Some(base) => flattened(stages, base),
        None => Stage {
            image: stage.image.clone(),
            name: None,
            instructions: Vec::new(),
        },
    };
    merged.name = stage.name.clone();
    merged
        .instructions
        .extend(stage.instructions.iter().cloned());
    merged
}

#[test]
fn image_entrypoint_is_the_flightctl_binary() {
    let stages = dockerfile_stages();
    let runtime = flattened(&stages, stages.last().expect("a build stage"));
    assert_eq!(runtime.image, "debian:bookworm-slim");
    let entrypoint = runtime.last("ENTRYPOINT").expect("an ENTRYPOINT");
    assert_eq!(json_args(entrypoint), ["/usr/local/bin/flightctl"]);
    assert_eq!(json_args(runtime.last("CMD").expect("a CMD")), ["serve"]);
    assert!(
        runtime
            .all("EXPOSE")
            .any(|ports| ports.split_whitespace().any(|p| p == "8080"))
    );
    let user = runtime
        .last("USER")
        .expect("a USER: the image runs as non-root");
    let user = user.split(':').next().unwrap_or_default();
    assert!(user != "root" && user != "0", "runs as {user}");
    assert_eq!(
        runtime.last("WORKDIR"),
        Some("/app"),
        "config/ is read from the workdir"
    );
    assert!(
        runtime
            .all("COPY")
            .any(|args| args == "config/ /app/config/")
    );
    assert!(
        runtime.all("RUN").any(|run| run.contains("curl")),
        "the compose healthcheck of the api uses curl"
    );
}

#[test]
fn builder_installs_protoc_and_builds_a_locked_release() {
    let stages = dockerfile_stages();
    let builder = stages
        .iter()
        .find(|s| s.name.as_deref() == Some("builder"))
        .expect("a stage named builder");
    assert!(
        builder.image.starts_with("rust:"),
        "builder is {}",
        builder.image
    );
    assert!(
        builder
            .all("RUN")
            .any(|run| run.contains("apt-get install") && run.contains("protobuf-compiler")),
        "the Temporal SDK needs protoc to build"
    );
    let build = builder
        .all("RUN")
        .find(|run| run.contains("cargo build"))
        .expect("a cargo build");
    for needed in [
        "--release",
        "--locked",
        "--mount=type=cache,target=/usr/local/cargo/registry",
    ] {
        assert!(build.contains(needed), "cargo build step lacks {needed}");
    }
    let runtime = stages.last().expect("a runtime stage");
    assert!(
        runtime
            .all("COPY")
            .any(|copy| copy.starts_with("--from=builder")
                && copy.ends_with("/usr/local/bin/flightctl")),
        "the runtime stage takes the binary from the builder"
    );
}

#[test]
fn prebuilt_target_differs_from_the_runtime_stage_only_in_the_binary() {
    let stages = dockerfile_stages();
    let runtime = stages.last().expect("a runtime stage");
    let prebuilt = stages
        .iter()
        .find(|s| s.name.as_deref() == Some("runtime-prebuilt"))
        .expect("a stage named runtime-prebuilt (tests/image.rs builds it)");
    assert_eq!(
        prebuilt.image, runtime.image,
        "both targets build on the same stage"
    );
    assert_eq!(
        prebuilt.instructions,
        [(
            "COPY".to_string(),
            "flightctl /usr/local/bin/flightctl".to_string()
        )],
        "runtime-prebuilt adds the context's binary and nothing else"
    );
    assert_eq!(
        runtime.instructions.len(),
        1,
        "the runtime stage adds the builder's binary and nothing else"
    );
}

#[test]
fn build_context_leaves_out_build_output_and_secrets() {
    let ignored: Vec<String> = repo_file(".dockerignore")
        .lines()
        .map(|l| {
            l.trim()
                .trim_start_matches('/')
                .trim_end_matches('/')
                .to_string()
        })
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for pattern in ["target", ".git", ".data", "**/node_modules", ".env"] {
        assert!(
            ignored.iter().any(|l| l == pattern),
            ".dockerignore must leave out {pattern}"
        );
    }
    for needed in ["src", "migrations", "config", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !ignored.iter().any(|l| l == needed),
            "{needed} is needed by the Dockerfile"
        );
    }
}
