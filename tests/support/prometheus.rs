//! A real Prometheus (Debian's `prometheus`) for tests: configured from the
//! project's own `monitoring/prometheus.yml`, its data in a temp directory,
//! killed with the test; and its HTTP API (targets, instant and range
//! queries).
//!
//! The shipped file names compose's hosts (`api:8080`, the `worker` DNS
//! name). A test cannot resolve those, so [`config_for`] derives the test's
//! configuration from the shipped file, replacing only what a test must:
//! each job's service discovery by `static_configs` on the test's ports, and
//! the scrape interval. Job names, metrics paths and everything else come
//! from the shipped file, and a job the test does not give targets for (or a
//! target for a job the file lacks) fails the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use serde_yaml::{Mapping, Value as Yaml};

use super::procs::{self, Proc};
use super::tools;

const INSTALL: &str = "apt-get install prometheus";

/// `promtool check config <path>`: panics with promtool's words if the
/// configuration is invalid.
pub fn check_config(path: &Path) {
    let promtool = tools::tool("promtool", INSTALL);
    let mut cmd = Command::new(promtool);
    cmd.args(["check", "config"]).arg(path);
    let out = tools::run_bounded("promtool check config", cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "promtool check config {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shipped configuration `shipped` (YAML) with every job's targets
/// replaced by `targets` (job name → `host:port`s) and every scrape
/// interval by `interval`.
pub fn config_for(shipped: &str, interval: &str, targets: &[(&str, Vec<String>)]) -> String {
    let mut config: Yaml = serde_yaml::from_str(shipped).expect("the shipped config is YAML");
    let global = config
        .as_mapping_mut()
        .expect("a mapping")
        .entry("global".into())
        .or_insert_with(|| Yaml::Mapping(Mapping::new()));
    let global = global.as_mapping_mut().expect("global is a mapping");
    global.insert("scrape_interval".into(), interval.into());
    // At most the interval (Prometheus refuses a longer one).
    global.insert("scrape_timeout".into(), interval.into());
    global.insert("evaluation_interval".into(), interval.into());
    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .expect("scrape_configs");
    let mut seen = Vec::new();
    for job in jobs.iter_mut() {
        let job = job.as_mapping_mut().expect("a scrape config is a mapping");
        let name = job
            .get("job_name")
            .and_then(Yaml::as_str)
            .expect("job_name")
            .to_string();
        let (_, addresses) = targets
            .iter()
            .find(|(job, _)| *job == name)
            .unwrap_or_else(|| panic!("the test gives no targets for the shipped job {name}"));
        let discovery: Vec<Yaml> = job
            .keys()
            .filter(|k| {
                k.as_str()
                    .is_some_and(|k| k == "static_configs" || k.ends_with("_sd_configs"))
            })
            .cloned()
            .collect();
        for key in discovery {
            job.remove(&key);
        }
        job.remove("scrape_interval");
        job.remove("scrape_timeout");
        let mut static_config = Mapping::new();
        static_config.insert(
            "targets".into(),
            Yaml::Sequence(addresses.iter().map(|a| a.as_str().into()).collect()),
        );
        job.insert(
            "static_configs".into(),
            Yaml::Sequence(vec![Yaml::Mapping(static_config)]),
        );
        seen.push(name);
    }
    for (job, _) in targets {
        assert!(
            seen.iter().any(|s| s == job),
            "the shipped config has no job {job} (it has {seen:?})"
        );
    }
    serde_yaml::to_string(&config).unwrap()
}

/// A running Prometheus on a free loopback port.
pub struct Prometheus {
    pub address: String,
    pub dir: PathBuf,
    http: reqwest::Client,
    _proc: Proc,
}

impl Prometheus {
    /// Write `config`, check it with promtool, start Prometheus on it and
    /// return once it is ready.
    pub async fn start(config: &str) -> Prometheus {
        let exe = tools::tool("prometheus", INSTALL);
        let dir = procs::temp_dir("prometheus");
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        check_config(&config_path);
        let port = procs::free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let mut cmd = Command::new(exe);
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log);
        let proc = Proc::spawn("prometheus", cmd, libc::SIGTERM);
        let prometheus = Prometheus {
            address: format!("http://127.0.0.1:{port}"),
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            _proc: proc,
        };
        super::eventually("Prometheus ready", Duration::from_secs(20), || async {
            let resp = prometheus
                .http
                .get(format!("{}/-/ready", prometheus.address))
                .send()
                .await
                .ok()?;
            resp.status().is_success().then_some(())
        })
        .await;
        prometheus
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    async fn api(&self, path: &str, params: &[(&str, String)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.address), params)
            .expect("a URL");
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Prometheus {path}: {e}"));
        let body: Value = resp.json().await.expect("Prometheus answers JSON");
        assert_eq!(body["status"], "success", "{path} {params:?}: {body}");
        body["data"].clone()
    }

    /// The active targets: `(job, health, last error)` each.
    pub async fn targets(&self) -> Vec<(String, String, String)> {
        let data = self.api("/api/v1/targets", &[]).await;
        data["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (s(&t["labels"]["job"]), s(&t["health"]), s(&t["lastError"]))
            })
            .collect()
    }

    /// Wait until each job has exactly its number of targets, all up.
    pub async fn wait_targets_up(&self, jobs: &[(&str, usize)], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let targets = self.targets().await;
            let up = |job: &str| {
                let of_job: Vec<_> = targets.iter().filter(|t| t.0 == job).collect();
                (of_job.len(), of_job.iter().all(|t| t.1 == "up"))
            };
            if targets.len() == jobs.iter().map(|j| j.1).sum::<usize>()
                && jobs.iter().all(|&(job, n)| up(job) == (n, true))
            {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "targets not all up within {within:?}: {targets:?}; Prometheus's log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `GET /api/v1/query` at now: the `data` (resultType, result).
    pub async fn query(&self, expr: &str) -> Value {
        self.api("/api/v1/query", &[("query", expr.to_string())])
            .await
    }

    /// `GET /api/v1/query_range` from `start` to now (Unix seconds) every
    /// `step`: the `data`, as a dashboard's time series panel asks for it.
    pub async fn query_range(&self, expr: &str, start: f64, step: &str) -> Value {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let params = [
            ("query", expr.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", step.to_string()),
        ];
        self.api("/api/v1/query_range", &params).await
    }
}

/// The values in a query's `data`, whatever its result type (vector,
/// matrix, scalar), NaN included.
pub fn values(data: &Value) -> Vec<f64> {
    let parse = |pair: &Value| {
        pair[1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    match data["resultType"].as_str() {
        Some("scalar") => vec![parse(&data["result"])],
        Some("vector") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|series| parse(&series["value"]))
            .collect(),
        Some("matrix") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["values"].as_array().cloned().unwrap_or_default())
            .map(|pair| parse(&pair))
            .collect(),
        _ => Vec::new(),
    }
}

/// How many series (or one for a scalar) a query's `data` holds.
pub fn series(data: &Value) -> usize {
    match data["resultType"].as_str() {
        Some("scalar") => 1,
        _ => data["result"].as_array().map_or(0, Vec::len),
    }
}
