//! Real PostgreSQL, Redis and Temporal dev servers on random ports, one of
//! each per test binary (started on first use); tests isolate themselves
//! inside them (own database, own key prefix, own task queue).

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::procs::{Proc, find_bin, free_port, temp_dir, wait_for_port};

/// uid/gid to run Postgres as: `postgres` when we are root (it refuses root).
fn postgres_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = CString::new("postgres").unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "running as root needs a `postgres` user for Postgres"
    );
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn pg_bin_dir() -> PathBuf {
    let initdb = find_bin(
        "initdb",
        "FLIGHTCTL_TEST_INITDB",
        &[
            "/usr/lib/postgresql/15/bin/initdb",
            "/usr/lib/postgresql/16/bin/initdb",
        ],
    );
    let initdb = initdb.canonicalize().unwrap_or(initdb);
    initdb
        .parent()
        .expect("initdb has a directory")
        .to_path_buf()
}

pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    root: PathBuf,
    /// Commits wait for their WAL write (`synchronous_commit=on`), so a
    /// crash of Postgres alone loses nothing it acknowledged.
    durable: bool,
    proc: Mutex<Option<Proc>>,
}

impl Postgres {
    fn start() -> Postgres {
        Postgres::init(false)
    }

    /// A private server for a test that crashes and restarts it: commits it
    /// acknowledged survive an immediate shutdown, as they do in production
    /// (`fsync` stays off: the machine itself does not crash).
    pub fn start_durable() -> Postgres {
        Postgres::init(true)
    }

    fn init(durable: bool) -> Postgres {
        let bin = pg_bin_dir();
        let root = temp_dir("pg");
        let data = root.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let user = postgres_user();
        if let Some((uid, gid)) = user {
            chown(&root, uid, gid);
            chown(&data, uid, gid);
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null());
        as_postgres_user(&mut initdb);
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Postgres {
            port: free_port(),
            bin,
            root,
            durable,
            proc: Mutex::new(None),
        };
        pg.restart();
        pg
    }

    /// Start (again) on the same port and data directory.
    pub fn restart(&self) {
        let sync = if self.durable { "on" } else { "off" };
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.root.join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.root)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", &format!("synchronous_commit={sync}")])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_postgres_user(&mut cmd);
        let proc = Proc::spawn("postgres", cmd, libc::SIGINT);
        *self.proc.lock().unwrap() = Some(proc);
        wait_for_port("postgres", self.port, Duration::from_secs(30));
    }

    /// Immediate shutdown (SIGQUIT): every backend dies at once, nothing is
    /// checkpointed, the next start runs crash recovery.
    pub fn crash(&self) {
        if let Some(mut p) = self.proc.lock().unwrap().take() {
            p.signal_and_wait(libc::SIGQUIT, Duration::from_secs(10));
        }
    }

    /// The postmaster's pid while it runs (its backends are its children).
    pub fn pid(&self) -> Option<u32> {
        self.proc.lock().unwrap().as_ref().map(Proc::pid)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Create an empty database for one test.
    pub async fn create_database(&self, name: &str) {
        let mut last = None;
        for _ in 0..100 {
            match tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    client
                        .simple_query(&format!("CREATE DATABASE {name}"))
                        .await
                        .expect("create test database");
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("postgres never accepted connections: {last:?}");
    }
}

fn as_postgres_user(cmd: &mut Command) {
    if let Some((uid, gid)) = postgres_user() {
        cmd.uid(uid).gid(gid);
    }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown for postgres");
}

/// A Redis server; tests that stop and restart Redis get their own.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl Redis {
    pub fn start() -> Redis {
        let mut redis = Redis {
            port: free_port(),
            dir: temp_dir("redis"),
            proc: None,
        };
        redis.restart();
        redis
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port.
    pub fn restart(&mut self) {
        let bin = find_bin(
            "redis-server",
            "FLIGHTCTL_TEST_REDIS",
            &["/usr/bin/redis-server"],
        );
        let mut cmd = Command::new(bin);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null());
        self.proc = Some(Proc::spawn("redis", cmd, libc::SIGTERM));
        wait_for_port("redis", self.port, Duration::from_secs(15));
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }

    /// Kill it (SIGKILL): a crash.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }
}

/// How long after a worker version stops being current the harness's
/// Temporal first looks for workflows still pinned to it, and how often it
/// looks again (the server's defaults are 3 min and 3 min: a version is
/// reported drained 3 to 6 min after its last workflow closed).
pub const DRAINAGE_GRACE: Duration = Duration::from_secs(2);
pub const DRAINAGE_REFRESH: Duration = Duration::from_secs(1);

/// A Temporal dev server; tests that stop and restart it get their own.
pub struct Temporal {
    pub port: u16,
    ports: [u16; 2],
    dir: PathBuf,
    proc: Option<Proc>,
}

impl Temporal {
    pub fn start() -> Temporal {
        let mut temporal = Temporal {
            port: free_port(),
            ports: [free_port(), free_port()],
            dir: temp_dir("temporal"),
            proc: None,
        };
        temporal.restart();
        temporal
    }

    /// Start (again) on the same ports and the same SQLite file, so
    /// workflows survive. A start that exits at once (one of its ports
    /// briefly taken by a client socket, say) is tried again; its output is
    /// in `temporal.log` beside the database, and in the panic if it never
    /// listens.
    pub fn restart(&mut self) {
        let bin = find_bin("temporal", "FLIGHTCTL_TEST_TEMPORAL", &[]);
        let log = self.dir.join("temporal.log");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("temporal log");
            let mut cmd = Command::new(&bin);
            cmd.args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
                .args(["--port", &self.port.to_string()])
                .args(["--http-port", &self.ports[0].to_string()])
                .args(["--metrics-port", &self.ports[1].to_string()])
                .args(drainage_settings())
                .args(["--log-level", "error", "--db-filename"])
                .arg(self.dir.join("temporal.db"))
                .stdout(out.try_clone().expect("temporal log"))
                .stderr(out);
            let mut proc = Proc::spawn("temporal", cmd, libc::SIGTERM);
            let listens = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            while Instant::now() < deadline && proc.is_running() {
                // The frontend's gRPC port opens before the HTTP and metrics
                // ports; a server that fails on one of those exits after
                // its gRPC port answered. Ready is all three, and still
                // running a moment later.
                if listens(self.port) && self.ports.iter().all(|&p| listens(p)) {
                    std::thread::sleep(Duration::from_millis(200));
                    if proc.is_running() && listens(self.port) {
                        self.proc = Some(proc);
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "temporal did not listen on port {} within 60s; its last lines (newest first):\n{}",
            self.port,
            self.log_tail()
        );
    }

    /// The newest lines of the server's log (all its starts), newest first.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("temporal.log")).unwrap_or_default();
        text.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }

    /// Kill it (SIGKILL): a crash.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }
}

/// The dev server's dynamic settings for drainage (`DRAINAGE_GRACE`,
/// `DRAINAGE_REFRESH`), so a test sees a version drained in seconds.
fn drainage_settings() -> Vec<String> {
    let setting = |key: &str, value: Duration| {
        [
            "--dynamic-config-value".to_string(),
            format!("matching.wv.{key}=\"{}s\"", value.as_secs()),
        ]
    };
    let mut args = setting("VersionDrainageStatusVisibilityGracePeriod", DRAINAGE_GRACE).to_vec();
    args.extend(setting(
        "VersionDrainageStatusRefreshInterval",
        DRAINAGE_REFRESH,
    ));
    args
}

pub fn postgres() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(Postgres::start)
}

pub fn redis() -> &'static Redis {
    static REDIS: OnceLock<Redis> = OnceLock::new();
    REDIS.get_or_init(Redis::start)
}

static TEMPORAL: OnceLock<Temporal> = OnceLock::new();

pub fn temporal() -> &'static Temporal {
    TEMPORAL.get_or_init(Temporal::start)
}

/// The shared server's log tail, if `host` is the shared server.
pub fn temporal_log(host: &str) -> String {
    match TEMPORAL.get() {
        Some(t) if t.host() == host => t.log_tail(),
        _ => "(a server of the test's own)".into(),
    }
}
