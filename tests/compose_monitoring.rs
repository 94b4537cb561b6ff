//! The container stack's monitoring (SPEC §8), checked by reading
//! `compose.yaml` and the files it mounts: pinned Prometheus and Grafana
//! images, started after what they watch, scraping the API and every worker,
//! and a provisioned dashboard that queries only metrics the code exports.

#[path = "support/compose.rs"]
mod compose_file;

use std::path::Path;

use serde_yaml::Value;

use compose_file::*;

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
    // serve's metrics are on its admin listener (the public one serves
    // them only with PUBLIC_METRICS).
    let api_target = format!("api:{}", env_var(service(&compose, "api"), "ADMIN_PORT"));
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
