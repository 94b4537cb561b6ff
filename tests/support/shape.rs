//! Many instances behind a real load balancer: `serve` processes and
//! `worker` processes on one database, Redis prefix, task queue and worker
//! deployment, with HAProxy in front running the repository's own
//! `deploy/haproxy/haproxy.cfg`. Every process on free ports, killed when
//! the shape is dropped (or the test binary exits).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use flightctl::config::Settings;

use super::procs::{self, Proc};
use super::{TestApp, eventually, make_current, prepare_database, repo_root};

/// How long the load balancer may take to see every instance ready.
const IN_ROTATION_WITHIN: Duration = Duration::from_secs(30);

/// One `flightctl serve` process.
pub struct Instance {
    pub proc: Proc,
    pub port: u16,
    log: PathBuf,
}

impl Instance {
    /// A URL of this instance's public listener, bypassing the balancer.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

pub struct Shape {
    /// The API through the load balancer (`app.address` is HAProxy's), with
    /// the database pool and Redis holds of the instances: what `burst` and
    /// the `TestApp` helpers take.
    pub app: TestApp,
    pub serves: Vec<Instance>,
    pub workers: Vec<Proc>,
    pub lb: Proc,
    stats_port: u16,
    log_dir: PathBuf,
}

impl Shape {
    /// `serves` instances and `workers` workers configured like `settings`
    /// (a fresh database is migrated and seeded, `TRUSTED_PROXIES` is the
    /// balancer's address), HAProxy in front; returns
    /// once the balancer has every instance in rotation.
    pub async fn start(settings: Settings, serves: usize, workers: usize) -> Shape {
        Self::start_with(settings, serves, workers, None).await
    }

    /// As [`Shape::start`], HAProxy terminating TLS with `tls_cert` (a PEM:
    /// certificate, then key): `app.address` is `https://…`.
    pub async fn start_tls(
        settings: Settings,
        serves: usize,
        workers: usize,
        tls_cert: &std::path::Path,
    ) -> Shape {
        Self::start_with(settings, serves, workers, Some(tls_cert)).await
    }

    async fn start_with(
        mut settings: Settings,
        serves: usize,
        workers: usize,
        tls_cert: Option<&std::path::Path>,
    ) -> Shape {
        // The instances believe the balancer's X-Forwarded-For, as
        // `./dev up SERVE=2` configures them.
        settings.server.trusted_proxies =
            flightctl::config::TrustedProxies::parse("127.0.0.1").expect("a proxy list");
        assert!(
            (1..=8).contains(&serves),
            "haproxy.cfg names up to 8 instances"
        );
        let pool = prepare_database(&settings).await;
        let log_dir = procs::temp_dir("shape");
        let mut shape_workers = Vec::new();
        for n in 0..workers {
            let log = log_dir.join(format!("worker-{n}.log"));
            shape_workers.push(super::worker_process(&settings, &log));
        }
        if workers > 0 {
            make_current(&settings).await;
        }
        let instances: Vec<Instance> = (0..serves)
            .map(|n| {
                let port = procs::free_port();
                let log = log_dir.join(format!("serve-{n}.log"));
                let proc = super::serve_process_at(&settings, &[], port, &log);
                Instance { proc, port, log }
            })
            .collect();
        let (lb, lb_port, stats_port) = haproxy(&instances, &log_dir, tls_cert);
        let scheme = if tls_cert.is_some() { "https" } else { "http" };
        let address = format!("{scheme}://127.0.0.1:{lb_port}");
        let app = TestApp::served_at(settings, address, pool).await;
        let shape = Shape {
            app,
            serves: instances,
            workers: shape_workers,
            lb,
            stats_port,
            log_dir,
        };
        shape.wait_in_rotation(serves).await;
        shape
    }

    /// A URL through the load balancer.
    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// The balancer's view of each instance, in order: `UP`, `DOWN`, or a
    /// transition such as `UP 1/2`.
    pub async fn rotation(&self) -> Vec<String> {
        let rows = self.stats().await;
        (rows.iter())
            .filter(|r| r.get("svname").is_some_and(|s| s.starts_with("serve")))
            .map(|r| r.get("status").cloned().unwrap_or_default())
            .collect()
    }

    /// A counter summed over the instances, e.g. `chkdown` (times one was
    /// taken out of rotation).
    pub async fn instances_counter(&self, column: &str) -> u64 {
        let rows = self.stats().await;
        (rows.iter())
            .filter(|r| r.get("svname").is_some_and(|s| s.starts_with("serve")))
            .filter_map(|r| r.get(column)?.parse::<u64>().ok())
            .sum()
    }

    /// A counter of the backend as a whole from the balancer's stats, e.g.
    /// `wretr` (retries) or `wredis` (redispatches to another instance).
    pub async fn backend_counter(&self, column: &str) -> u64 {
        let rows = self.stats().await;
        (rows.iter())
            .find(|r| r.get("svname").map(String::as_str) == Some("BACKEND"))
            .and_then(|r| r.get(column)?.parse().ok())
            .unwrap_or(0)
    }

    /// The rows of backend `serve` in HAProxy's CSV stats, by column name.
    async fn stats(&self) -> Vec<std::collections::HashMap<String, String>> {
        let url = format!("http://127.0.0.1:{}/stats;csv", self.stats_port);
        let Ok(resp) = self.app.http.get(url).send().await else {
            return Vec::new();
        };
        let csv = resp.text().await.unwrap_or_default();
        let mut lines = csv.lines();
        let header: Vec<String> = (lines.next().unwrap_or_default())
            .trim_start_matches("# ")
            .split(',')
            .map(str::to_string)
            .collect();
        lines
            .map(|l| {
                header
                    .iter()
                    .cloned()
                    .zip(l.split(',').map(str::to_string))
                    .collect()
            })
            .filter(|r: &std::collections::HashMap<String, String>| {
                r.get("pxname").map(String::as_str) == Some("serve")
            })
            .collect()
    }

    /// Wait until the balancer sends requests to `n` instances.
    pub async fn wait_in_rotation(&self, n: usize) {
        let within = IN_ROTATION_WITHIN;
        let what = format!("{n} instances UP in haproxy; logs:\n{}", self.logs());
        eventually(&what, within, || async {
            let up = self.rotation().await.iter().filter(|s| *s == "UP").count();
            (up == n).then_some(())
        })
        .await;
    }

    /// Kill instance `n` (SIGKILL: a crash).
    pub fn kill_serve(&mut self, n: usize) {
        self.serves[n].proc.kill();
    }

    /// Start instance `n` again on its port (after `kill_serve`).
    pub fn restart_serve(&mut self, n: usize) {
        let instance = &mut self.serves[n];
        instance.proc =
            super::serve_process_at(&self.app.settings, &[], instance.port, &instance.log);
    }

    /// Kill worker `n` (SIGKILL: its tasks are lost with it).
    pub fn kill_worker(&mut self, n: usize) {
        self.workers[n].kill();
    }

    /// The last lines of every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.log_dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            out.push_str(&format!("--- {name}\n{tail}\n"));
        }
        out
    }
}

/// HAProxy with the repository's configuration in front of `instances`;
/// returns it with its client port and its stats port, once it listens.
fn haproxy(
    instances: &[Instance],
    log_dir: &std::path::Path,
    tls_cert: Option<&std::path::Path>,
) -> (Proc, u16, u16) {
    let bin = procs::find_bin("haproxy", "HAPROXY_BIN", &["/usr/sbin/haproxy"]);
    let config = repo_root().join("deploy/haproxy/haproxy.cfg");
    let (port, stats) = (procs::free_port(), procs::free_port());
    let log = std::fs::File::create(log_dir.join("haproxy.log")).expect("a log file");
    let mut cmd = Command::new(bin);
    cmd.arg("-db")
        .arg("-f")
        .arg(config)
        .env_clear()
        .env("LB_BIND", format!("127.0.0.1:{port}"))
        .env("LB_STATS_BIND", format!("127.0.0.1:{stats}"))
        .envs(instances.iter().enumerate().map(|(n, i)| {
            (
                format!("FLIGHTCTL_SERVE_{}", n + 1),
                format!("127.0.0.1:{}", i.port),
            )
        }))
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(cert) = tls_cert {
        cmd.env("LB_TLS_CERT", cert);
    }
    let lb = Proc::spawn("haproxy", cmd, libc::SIGTERM);
    procs::wait_for_port("haproxy", port, Duration::from_secs(10));
    (lb, port, stats)
}
