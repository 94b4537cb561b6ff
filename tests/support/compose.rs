//! Reading the container stack's files the way `docker compose` reads
//! them: `compose.yaml` with its merge keys applied and its interpolation
//! resolved as in a clean shell with no `.env` (`${VAR:-default}` becomes
//! its default), and the services' environment, ports, commands,
//! dependencies, healthchecks and mounts. Shared by `tests/compose.rs`,
//! `tests/compose_monitoring.rs` and `tests/dockerfile.rs` (each includes it
//! with `#[path]` and uses part of it, hence the allowance).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

/// The services that run the flightctl image, with their commands.
pub const FLIGHTCTL_SERVICES: [(&str, &[&str]); 4] = [
    ("migrate", &["migrate", "up"]),
    ("seed", &["seed"]),
    ("api", &["serve"]),
    ("worker", &["worker"]),
];

/// The variables of the `ENV_VARS` contract in src/config/env.rs whose built-in
/// defaults (localhost, 5433, ...) are wrong inside a container, or which the
/// stack pins so it does not depend on the defaults.
pub const CONTAINER_ENV: [&str; 19] = [
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

pub fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `compose.yaml` with its `<<:` merge keys applied (serde_yaml keeps them
/// as plain keys otherwise).
pub fn compose() -> Value {
    let mut value: Value =
        serde_yaml::from_str(&repo_file("compose.yaml")).expect("compose.yaml is valid YAML");
    value
        .apply_merge()
        .expect("compose.yaml merge keys resolve");
    value
}

pub fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(service.is_mapping(), "compose.yaml has no service {name:?}");
    service
}

pub fn service_exists(compose: &Value, name: &str) -> bool {
    compose["services"][name].is_mapping()
}

/// Resolves compose interpolation with nothing set in the environment:
/// `${VAR:-default}` and `${VAR-default}` become the default, `$$` is a
/// literal `$`. A variable without a default fails the test: the stack must
/// come up without a `.env`.
pub fn interpolate(text: &str) -> String {
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
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => interpolate(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// `environment:` in either the map or the `KEY=value` list form. A key with
/// no value (passed through from the shell) counts as unset.
pub fn environment(service: &Value) -> BTreeMap<String, String> {
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

pub fn env_var(service: &Value, name: &str) -> String {
    environment(service)
        .remove(name)
        .unwrap_or_else(|| panic!("{name} is not set"))
}

/// `(host IP, host port, container port)` of every published port, in the
/// short (`[IP:]HOST:CONTAINER[/proto]`) or the long
/// (`host_ip`/`published`/`target`) form; no IP is every interface.
pub fn published(service: &Value) -> Vec<(Option<String>, u16, u16)> {
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
pub fn published_ports(service: &Value) -> Vec<(u16, u16)> {
    published(service)
        .into_iter()
        .map(|(_, host, container)| (host, container))
        .collect()
}

pub fn command(service: &Value) -> Vec<String> {
    match &service["command"] {
        Value::Sequence(args) => args.iter().map(scalar).collect(),
        Value::String(line) => line.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// `depends_on` as service name -> condition, in either form.
pub fn depends_on(service: &Value) -> BTreeMap<String, String> {
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
pub fn healthcheck(service: &Value) -> Option<Vec<String>> {
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

pub fn assert_depends_on(compose: &Value, name: &str, dependency: &str, condition: &str) {
    let deps = depends_on(service(compose, name));
    assert_eq!(
        deps.get(dependency).map(String::as_str),
        Some(condition),
        "{name} must depend on {dependency} with condition {condition}; has {deps:?}"
    );
}

/// Splits `host:port` into a compose service and a port.
pub fn host_and_port(address: &str) -> (&str, u16) {
    let (host, port) = address
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{address:?} is not host:port"));
    (host, port.parse().expect("a port number"))
}

/// `(source, target)` of a service's bind mounts of repository paths
/// (`./...`), as `docker compose` resolves them next to compose.yaml.
pub fn bind_mounts(service: &Value) -> Vec<(String, String)> {
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
pub fn mounted_at(service: &Value, source: &str) -> String {
    bind_mounts(service)
        .into_iter()
        .find(|(s, _)| s.trim_end_matches('/') == source)
        .map(|(_, target)| target)
        .unwrap_or_else(|| panic!("{source} is not mounted"))
}

pub fn yaml_file(name: &str) -> Value {
    serde_yaml::from_str(&repo_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
