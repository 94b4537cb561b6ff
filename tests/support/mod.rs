//! Test harness: real servers (see `servers`), per-test isolation, the app
//! started in-process on a random port, and `flightctl worker` processes.
#![allow(dead_code)]

pub mod burst;
pub mod cluster;
pub mod engine;
pub mod procs;
pub mod prometheus;
pub mod servers;
pub mod shape;
pub mod smtp;
pub mod sse;
pub mod tools;
pub mod waiting;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use flightctl::api::Application;
use flightctl::config::{RedisTarget, Secret, Settings, Sources};
use flightctl::domain::{FlightId, OrderId, OrderStatus, SeatId};
use flightctl::store::orders::Order;
use flightctl::store::{self, Holds};
use serde_json::{Value, json};
use uuid::Uuid;

pub use procs::Proc;

pub const FL101: &str = "550e8400-e29b-41d4-a716-446655440001";
pub const FL102: &str = "550e8400-e29b-41d4-a716-446655440002";
pub const FL201: &str = "550e8400-e29b-41d4-a716-446655440003";
pub const FL202: &str = "550e8400-e29b-41d4-a716-446655440004";

/// The payload key of every test process (client, workers, replayer), so
/// tests run with payloads encrypted as a deployment does. Test-only: never
/// use it for real payloads.
pub const PAYLOAD_KEY: &str = "bVcuR9zN6JlBiL1JaQ9X7LqLQYAAr+CRsZWzT4zmEgg=";
pub const PAYLOAD_KEY_ID: &str = "test-key-1";
/// The idempotency secret of every test process (serve refuses the
/// development default outside development). Test-only.
pub const IDEMPOTENCY_SECRET: &str = "flightctl-test-idempotency-secret";
/// The admission secret of every test process (serve refuses the
/// development default outside development). Test-only.
pub const ADMISSION_SECRET: &str = "flightctl-test-admission-secret";
/// The codec token of every test process (`CODEC_TOKEN`): the admin
/// helpers send it, as an operator's tool does. Test-only.
pub const CODEC_TOKEN: &str = "flightctl-test-codec-token-0123456789abcdef";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's settings with nothing from this process's environment,
/// and the tests' secrets: payloads encrypted with the tests' key, as a
/// deployment does, and an idempotency secret of their own.
pub fn base_settings() -> Settings {
    let mut s = Settings::load_from(&Sources {
        config_dir: repo_root().join("config"),
        file: None,
        env: Box::new(|_| None),
    })
    .expect("repository config loads");
    s.server.idempotency_secret = Secret::new(IDEMPOTENCY_SECRET);
    s.server.admission_secret = Secret::new(ADMISSION_SECRET);
    s.temporal.payload_encryption_key = Secret::new(PAYLOAD_KEY);
    s.temporal.payload_encryption_key_id = PAYLOAD_KEY_ID.into();
    s.temporal.codec_token = Secret::new(CODEC_TOKEN);
    s
}

/// The seat `id` (a valid one: tests name seats by hand).
pub fn seat(id: &str) -> SeatId {
    SeatId::parse(id).unwrap()
}

/// The seats `ids` (valid ones).
pub fn seat_ids(ids: &[&str]) -> Vec<SeatId> {
    ids.iter().map(|s| seat(s)).collect()
}

/// An order row as a workflow saves it while holding `seats` (35,000 cents
/// each), with no workflow behind it: for tests below the API.
pub fn order_row(id: OrderId, flight: FlightId, seats: &[&str]) -> Order {
    Order {
        id,
        flight_id: flight,
        workflow_id: format!("booking-{id}"),
        status: OrderStatus::SeatsReserved,
        seats: seat_ids(seats),
        total_price_cents: flightctl::money::Cents::new(35_000).times(seats.len()),
        expires_at: None,
        max_expires_at: None,
        confirmed_at: None,
        failure_reason: None,
        payment_attempts: 0,
        last_payment_error: None,
        saved_at_event: 0,
        passengers: Vec::new(),
        seat_prices: Vec::new(),
        reference: None,
        created_at: None,
        updated_at: None,
        version: 0,
    }
}

/// The order's money ledger rows, oldest first: kind, amount, provider
/// reference.
pub async fn ledger_rows(
    pool: &deadpool_postgres::Pool,
    id: OrderId,
) -> Vec<(String, i64, String)> {
    let conn = pool.get().await.unwrap();
    let sql = "SELECT kind, amount_cents, provider_ref FROM ledger WHERE order_id = $1 ORDER BY id";
    let rows = conn.query(sql, &[&id]).await.unwrap();
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Settings pointing at a fresh database, key prefix and task queue.
/// Temporal is started (once per binary) only when `temporal` is true.
pub async fn isolated_settings(temporal: bool) -> Settings {
    let id = Uuid::new_v4().simple().to_string();
    let pg = servers::postgres();
    let db = format!("t_{id}");
    pg.create_database(&db).await;
    let mut s = base_settings();
    s.server.host = "127.0.0.1".into();
    s.server.port = 0;
    // The admin listener keeps its default host (loopback), on a free port.
    s.server.admin_port = 0;
    s.database.url = Secret::new(pg.url(&db));
    s.redis.target = redis_target(&servers::redis().addr());
    s.redis.key_prefix = format!("t{id}");
    s.temporal.task_queue = format!("tq-{id}");
    // Each test its own worker deployment, made current by its first worker.
    s.worker.deployment_name = format!("flightctl-{id}");
    s.worker.build_id = "test-build".into();
    // No reconciliation schedule per test unless a test asks for one.
    s.booking.reconcile_interval = Duration::ZERO;
    // No random payment or refund failures (the shipped default is 15 %)
    // unless a test asks for them: a test's outcome never depends on chance.
    s.booking.payment_failure_rate = 0.0;
    s.booking.refund_failure_rate = 0.0;
    if temporal {
        s.temporal.host = servers::temporal().host();
    }
    s
}

/// Migrate and seed the settings' database.
pub async fn prepare_database(settings: &Settings) -> deadpool_postgres::Pool {
    let pool = store::pg_pool(&settings.database).unwrap();
    store::migrate::up(&pool).await.expect("migrate");
    store::seed::run(&pool).await.expect("seed");
    pool
}

pub struct TestApp {
    pub settings: Settings,
    /// The public listener: `http://127.0.0.1:<port>`.
    pub address: String,
    /// The admin listener (the codec, the probes): `http://<ip>:<port>`, as
    /// bound from `ADMIN_HOST`.
    pub admin_address: String,
    pub http: reqwest::Client,
    pub pool: deadpool_postgres::Pool,
    pub holds: Holds,
    workers: Vec<Proc>,
    log_dir: PathBuf,
}

impl TestApp {
    /// A migrated, seeded database and the real server on a random port.
    pub async fn spawn(settings: Settings) -> TestApp {
        let pool = prepare_database(&settings).await;
        let redis = store::redis_client(&settings.redis).await.unwrap();
        let holds = Holds::new(redis, settings.redis.key_prefix.clone());
        let app = Application::build(settings.clone())
            .await
            .expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let admin_address = format!("http://{}", app.admin_addr());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            settings,
            address,
            admin_address,
            http: http_client(),
            pool,
            holds,
            workers: Vec::new(),
            log_dir: procs::temp_dir("logs"),
        }
    }

    /// A client of an API served elsewhere (`serve` processes, behind a
    /// load balancer at `address`) on the settings' migrated, seeded
    /// database: the same helpers (and `burst`) against that address.
    pub async fn served_at(
        settings: Settings,
        address: String,
        pool: deadpool_postgres::Pool,
    ) -> TestApp {
        let redis = store::redis_client(&settings.redis).await.unwrap();
        let holds = Holds::new(redis, settings.redis.key_prefix.clone());
        TestApp {
            settings,
            admin_address: String::new(),
            address,
            http: http_client(),
            pool,
            holds,
            workers: Vec::new(),
            log_dir: procs::temp_dir("logs"),
        }
    }

    /// The app with a worker process polling its task queue.
    pub async fn with_worker(settings: Settings) -> TestApp {
        let mut app = TestApp::spawn(settings).await;
        app.start_worker().await;
        app
    }

    /// Start a `flightctl worker` process configured like this app; the
    /// first makes its build the deployment's current version.
    pub async fn start_worker(&mut self) {
        self.start_worker_with(&[]).await;
    }

    /// Start a worker with more environment (`env` wins).
    pub async fn start_worker_with(&mut self, env: &[(&str, String)]) {
        let first = self.workers.is_empty();
        self.spawn_worker(env);
        if first {
            make_current(&self.settings).await;
        }
    }

    /// Start a worker process without waiting for anything.
    pub fn spawn_worker(&mut self, env: &[(&str, String)]) {
        let n = self.workers.len();
        let log = std::fs::File::create(self.log_dir.join(format!("worker-{n}.log"))).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flightctl"));
        cmd.arg("worker")
            .current_dir(repo_root())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(worker_env(&self.settings))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(log);
        self.workers.push(Proc::spawn("worker", cmd, libc::SIGTERM));
    }

    /// The most recently started worker.
    pub fn worker(&mut self) -> &mut Proc {
        self.workers.last_mut().expect("a worker was started")
    }

    pub fn worker_log(&self, n: usize) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("worker-{n}.log"))).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A URL of the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_address)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_at(self.url(path)).await
    }

    /// GET from the admin listener, with the codec token (as an operator's
    /// tool sends it; only the codec asks for it).
    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let resp = (self.http.get(self.admin_url(path)))
            .bearer_auth(CODEC_TOKEN)
            .send()
            .await
            .expect("GET");
        read(resp).await
    }

    async fn get_at(&self, url: String) -> (u16, Value) {
        let resp = self.http.get(url).send().await.expect("GET");
        read(resp).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        self.send_at(method, self.url(path), body).await
    }

    /// POST JSON to the admin listener, with the codec token.
    pub async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = (self.http.post(self.admin_url(path)))
            .bearer_auth(CODEC_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("POST");
        read(resp).await
    }

    async fn send_at(&self, method: reqwest::Method, url: String, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .request(method, url)
            .json(&body)
            .send()
            .await
            .expect("request");
        read(resp).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE");
        read(resp).await
    }

    /// Name a passenger for every seat the order holds, as a customer must
    /// before paying; the answer of the PUT (a test of an order that can no
    /// longer change gets its refusal).
    pub async fn name_passengers(&self, order: &str) -> (u16, Value) {
        let (code, status) = self.get(&format!("/api/orders/{order}/status")).await;
        if code != 200 {
            return (code, status);
        }
        let passengers: Vec<Value> = status["seats"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|seat| json!({"seat": seat, "givenName": "Test", "familyName": "Passenger"}))
            .collect();
        if passengers.is_empty() {
            return (code, status);
        }
        self.put(
            &format!("/api/orders/{order}/passengers"),
            json!({ "passengers": passengers }),
        )
        .await
    }

    /// Seat statuses of a flight's seat map, by seat id.
    /// A flight's seat-map event stream, opened and its first event (the
    /// seat map) read: a viewer on the page while bookings happen. It stays
    /// open until the response is dropped.
    pub async fn open_seat_map_stream(&self, flight: &str) -> reqwest::Response {
        let mut stream = self
            .http
            .get(self.url(&format!("/api/flights/{flight}/events")))
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        stream.chunk().await.unwrap().expect("the seat map");
        stream
    }

    pub async fn seat_statuses(&self, flight: &str) -> std::collections::HashMap<String, String> {
        let (code, body) = self.get(&format!("/api/flights/{flight}")).await;
        assert_eq!(code, 200, "{body}");
        body["seatMap"]["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// Make the settings' build the current version of their worker
/// deployment, once its first worker polls (Worker Versioning: until then
/// no workflow task is handed to it).
pub async fn make_current(settings: &Settings) {
    let client = flightctl::temporal::connect(&settings.temporal, "test", Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "temporal client: {e:#}; the server's log, newest first:\n{}",
                servers::temporal_log(&settings.temporal.host)
            )
        });
    let w = &settings.worker;
    flightctl::deployment::set_current(
        &client,
        &w.deployment_name,
        &w.build_id,
        Duration::from_secs(60),
    )
    .await
    .expect("the test build becomes current");
}

/// A replayer for the booking workflow: checks histories against today's code.
/// It decodes payloads as the worker does: encrypted with the tests' key, or
/// plain (histories from before encryption).
pub fn replayer() -> temporalio_sdk::workflow_replayer::WorkflowReplayer {
    use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
    let settings = base_settings();
    let converter = flightctl::temporal::data_converter(&settings.temporal).expect("test key");
    let options = WorkflowReplayerOptions::new()
        .data_converter(converter)
        .register_workflow::<flightctl::booking::Booking>()
        .expect("the booking workflow registers")
        .register_workflow::<flightctl::booking::refund::Refund>()
        .expect("the refund workflow registers")
        .build();
    WorkflowReplayer::new(options).expect("a replayer")
}

/// The address of customer `n` of a crowd (a flash sale, a benchmark's
/// clients): each its own loopback address (all of 127.0.0.0/8 reaches
/// this machine), never 127.0.0.1, the tests' own and the trusted
/// proxies'. The server counts a fair share per client, so a crowd speaks
/// from many addresses, as a real one does.
pub fn customer_address(n: usize) -> std::net::IpAddr {
    let n = n % (250 * 250 * 250);
    let (a, b, c) = (n / 62_500, n / 250 % 250, n % 250);
    std::net::Ipv4Addr::new(127, 10 + a as u8, b as u8 + 1, c as u8 + 1).into()
}

/// An HTTP client of customer `n`: its requests come from
/// [`customer_address`]`(n)`, directly or through the load balancer (which
/// forwards that address). Idle connections are dropped before the
/// server's keep-alive would close them (see `burst::crowd_client`).
pub fn customer_client(n: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(customer_address(n))
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client")
}

/// The tests' HTTP client: a request that hangs fails the test in 30 s.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A `flightctl serve` process configured like `settings` (plus `env`), on
/// a free port, its log in a file; returns it once it listens.
pub fn serve_process(settings: &Settings, env: &[(&str, &str)]) -> (Proc, u16, PathBuf) {
    let port = procs::free_port();
    let log = procs::temp_dir("serve-log").join("serve.log");
    let serve = serve_process_at(settings, env, port, &log);
    (serve, port, log)
}

/// A `flightctl serve` process on `port` (a restarted one takes its
/// predecessor's), appending its log to `log`; returns it once it listens.
pub fn serve_process_at(
    settings: &Settings,
    env: &[(&str, &str)],
    port: u16,
    log: &std::path::Path,
) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flightctl"));
    cmd.arg("serve")
        .current_dir(repo_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(worker_env(settings))
        .env("SERVER_PORT", port.to_string())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(append(log));
    let serve = Proc::spawn("serve", cmd, libc::SIGTERM);
    procs::wait_for_port("serve", port, Duration::from_secs(20));
    serve
}

/// A `flightctl worker` process configured like `settings`, appending its
/// log to `log` (a restarted worker continues its predecessor's file).
pub fn worker_process(settings: &Settings, log: &std::path::Path) -> Proc {
    worker_process_with(settings, &[], log)
}

/// A worker process like [`worker_process`]'s, with more environment
/// (`env` wins).
pub fn worker_process_with(
    settings: &Settings,
    env: &[(&str, String)],
    log: &std::path::Path,
) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flightctl"));
    cmd.arg("worker")
        .current_dir(repo_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(worker_env(settings))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(append(log));
    Proc::spawn("worker", cmd, libc::SIGTERM)
}

fn append(path: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("a log file")
}

/// The one Redis server at `addr` (`host:port`), database 0.
pub fn redis_target(addr: &str) -> RedisTarget {
    format!("redis://{addr}").parse().expect("a Redis address")
}

/// `target` as `REDIS_URL` names it.
fn redis_url(target: &RedisTarget) -> String {
    match target {
        RedisTarget::Single { host, port, db } => format!("redis://{}/{db}", node(host, *port)),
        RedisTarget::Cluster { nodes } => {
            let nodes: Vec<String> = nodes.iter().map(|(h, p)| node(h, *p)).collect();
            format!("redis-cluster://{}", nodes.join(","))
        }
    }
}

fn node(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The environment a worker process needs to match `settings` (and a
/// `serve` process: its admin listener's port, 0 in tests).
pub fn worker_env(s: &Settings) -> Vec<(&'static str, String)> {
    vec![
        ("ADMIN_PORT", s.server.admin_port.to_string()),
        ("DATABASE_URL", s.database.url.expose().to_string()),
        ("REDIS_URL", redis_url(&s.redis.target)),
        ("TRUSTED_PROXIES", s.server.trusted_proxies.to_string()),
        ("REDIS_KEY_PREFIX", s.redis.key_prefix.clone()),
        ("TEMPORAL_HOST", s.temporal.host.clone()),
        ("TEMPORAL_NAMESPACE", s.temporal.namespace.clone()),
        ("TEMPORAL_TASK_QUEUE", s.temporal.task_queue.clone()),
        (
            "IDEMPOTENCY_SECRET",
            s.server.idempotency_secret.expose().to_string(),
        ),
        (
            "ADMISSION_SECRET",
            s.server.admission_secret.expose().to_string(),
        ),
        (
            "QUEUE_GRACE",
            format!("{}ms", s.server.queue_grace.as_millis()),
        ),
        (
            "ADMISSION_TTL",
            format!("{}ms", s.server.admission_ttl.as_millis()),
        ),
        (
            "PAYLOAD_ENCRYPTION",
            s.temporal.payload_encryption.to_string(),
        ),
        (
            "PAYLOAD_ENCRYPTION_KEY",
            s.temporal.payload_encryption_key.expose().to_string(),
        ),
        (
            "PAYLOAD_ENCRYPTION_KEY_ID",
            s.temporal.payload_encryption_key_id.clone(),
        ),
        (
            "PAYLOAD_DECRYPTION_KEYS",
            s.temporal.payload_decryption_keys.expose().to_string(),
        ),
        ("CODEC_TOKEN", s.temporal.codec_token.expose().to_string()),
        (
            "PAYMENT_FAILURE_RATE",
            s.booking.payment_failure_rate.to_string(),
        ),
        (
            "RECONCILE_INTERVAL",
            format!("{}ms", s.booking.reconcile_interval.as_millis()),
        ),
        (
            "REFUND_FAILURE_RATE",
            s.booking.refund_failure_rate.to_string(),
        ),
        (
            "REFUND_MAX_ATTEMPTS",
            s.booking.refund_max_attempts.to_string(),
        ),
        (
            "LOOKUP_MAX_FAILURES",
            s.booking.lookup_max_failures.to_string(),
        ),
        (
            "REFUND_CUTOFF",
            format!("{}ms", s.booking.refund_cutoff.as_millis()),
        ),
        ("RUST_LOG", "warn,flightctl=info".into()),
        // Several workers per test: each its own free metrics port.
        ("WORKER_METRICS_PORT", "0".into()),
        ("WORKER_DEPLOYMENT_NAME", s.worker.deployment_name.clone()),
        ("WORKER_BUILD_ID", s.worker.build_id.clone()),
        (
            "SMTP_URL",
            s.mail
                .smtp_url
                .as_ref()
                .map_or_else(String::new, |u| u.expose().to_string()),
        ),
        ("MAIL_FROM", s.mail.from.clone()),
        ("MANAGE_URL", s.mail.manage_url.clone()),
        (
            "TICKET_AIRLINE_PREFIX",
            s.booking.ticket_airline_prefix.clone(),
        ),
    ]
}

async fn read(resp: reqwest::Response) -> (u16, Value) {
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (code, body)
}

/// Poll `check` until it returns Some, or panic after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first refund workflow of `order` once closed, recorded as the
/// fixture `tests/histories/<name>.json` when `FLIGHTCTL_RECORD_HISTORIES`
/// names that directory, and replayed.
pub async fn record_refund(app: &TestApp, order: &str, name: &str) {
    let within = Duration::from_secs(60);
    let client = flightctl::temporal::connect(&app.settings.temporal, "test", within)
        .await
        .unwrap();
    let handle =
        client.get_workflow_handle::<flightctl::booking::refund::Refund>(format!("refund-{order}"));
    let json = eventually("the refund's closed history", within, || async {
        let options = temporalio_client::WorkflowFetchHistoryOptions::default();
        let json = handle.fetch_history(options).to_json().await.ok()?;
        String::from_utf8_lossy(&json)
            .contains("WorkflowExecutionCompleted")
            .then_some(json)
    })
    .await;
    if let Some(dir) = std::env::var_os("FLIGHTCTL_RECORD_HISTORIES") {
        let file = std::path::Path::new(&dir).join(format!("{name}.json"));
        std::fs::write(file, &json).unwrap();
    }
    let recorded = temporalio_client::WorkflowHistory::from_json(&json).unwrap();
    replayer()
        .replay_workflow(recorded)
        .await
        .unwrap_or_else(|e| panic!("{name} refund-{order} does not replay: {e}"));
}

/// The password [`signed_in_operator`] gives its operators.
pub const OPERATOR_PASSWORD: &str = "correct horse battery staple";

/// A client signed in to the console as `name`, an operator made for it.
pub async fn signed_in_operator(app: &TestApp, name: &str) -> reqwest::Client {
    use flightctl::ops::{Password, hash_password};
    let hash = hash_password(&Password::new(OPERATOR_PASSWORD)).unwrap();
    store::ops::put_operator(&app.pool, name, &hash)
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let signed = http
        .post(app.url("/api/ops/session"))
        .json(&json!({"name": name, "password": OPERATOR_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 200);
    http
}
