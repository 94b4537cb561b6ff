//! What one confirmed booking costs the servers behind it, measured on the
//! real stack, for the capacity model in README ("Capacity"):
//!
//! - Temporal: each booking's closed history read back, its events counted
//!   by type, workflow tasks, and the Temporal Cloud actions they bill
//!   (a start, each update, each activity, each timer, each signal, and the
//!   local activities of one workflow task as one);
//! - Redis: `INFO commandstats` before and after, per command;
//! - Postgres: `pg_stat_database` and `pg_stat_user_tables` (rows written,
//!   per table) and the WAL written (`pg_current_wal_lsn`).
//!
//! This binary has its own Postgres, Redis and Temporal dev server (the
//! harness starts one of each per binary), so what the counters say is
//! this run's. What the servers do while nobody books (the API's and the
//! worker's own timers) is measured first over a quiet window and taken off
//! pro rata. Each buyer does what the web UI does: create an order for one
//! seat, name its passenger, pay, and wait until the order is confirmed
//! (read from the order row, not through the API, so the wait costs Redis
//! nothing).
//!
//! Then the queue by simulation: the real Redis queue code
//! (`flightctl::store::queue`, no HTTP, no Postgres) driven with 1,000,000
//! tickets — a tenth pre-queued, the opening's shuffle, the rest joining
//! behind, then polls of random tickets and admissions — printing ops/s,
//! Redis commands per step and Redis memory (`INFO memory`) per ticket.
//!
//! `cargo bench --bench capacity` runs 200 bookings and 1,000,000 tickets;
//! `-- --simulate` the simulation alone; `cargo test` a smoke size of both.
//! The booking counts are counts, not timings: a debug build measures the
//! same (`cargo test --bench capacity -- --bench`); the simulation's rates
//! are Redis's own (its scripts run inside Redis), the client's build
//! barely matters.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::TestApp;
use tokio::time::Instant;

struct Scale {
    bookings: usize,
    /// Concurrent buyers.
    clients: usize,
    /// The quiet window the background rates are measured over.
    quiet: Duration,
}

const FULL: Scale = Scale {
    bookings: 200,
    clients: 8,
    quiet: Duration::from_secs(10),
};

const SMOKE: Scale = Scale {
    bookings: 6,
    clients: 3,
    quiet: Duration::from_secs(2),
};

/// Postgres (15) publishes a backend's counters when it goes idle, at most
/// once a second and otherwise within 10 s: wait that long before reading.
const STATS_FLUSH: Duration = Duration::from_secs(11);

/// Counters of the servers at one moment.
#[derive(Clone, Debug, Default)]
struct Snapshot {
    at: Option<Instant>,
    /// Redis calls per command (`cmdstat_<name>`), the INFO calls of this
    /// bench left out.
    redis: BTreeMap<String, f64>,
    /// Postgres figures by name: transactions, rows inserted / updated /
    /// deleted in the database, WAL bytes, rows written per table.
    pg: BTreeMap<String, f64>,
}

impl Snapshot {
    async fn take(app: &TestApp) -> Snapshot {
        let pg = pg_counters(app).await;
        let redis = redis_commandstats(&support::servers::redis().addr());
        Snapshot {
            at: Some(Instant::now()),
            redis,
            pg,
        }
    }

    fn since(&self, before: &Snapshot) -> (Duration, Snapshot) {
        let elapsed = self.at.unwrap() - before.at.unwrap();
        let diff = |a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>| {
            a.iter()
                .map(|(k, v)| (k.clone(), v - b.get(k).copied().unwrap_or(0.0)))
                .filter(|(_, v)| *v != 0.0)
                .collect()
        };
        (
            elapsed,
            Snapshot {
                at: None,
                redis: diff(&self.redis, &before.redis),
                pg: diff(&self.pg, &before.pg),
            },
        )
    }

    /// This change less `quiet` (a change over `quiet_for`) scaled to
    /// `elapsed`: what the work itself did.
    fn less(&self, quiet: &Snapshot, quiet_for: Duration, elapsed: Duration) -> Snapshot {
        let scale = elapsed.as_secs_f64() / quiet_for.as_secs_f64();
        let less = |a: &BTreeMap<String, f64>, q: &BTreeMap<String, f64>| {
            a.iter()
                .map(|(k, v)| {
                    let background = q.get(k).copied().unwrap_or(0.0) * scale;
                    (k.clone(), (v - background).max(0.0))
                })
                .collect()
        };
        Snapshot {
            at: None,
            redis: less(&self.redis, &quiet.redis),
            pg: less(&self.pg, &quiet.pg),
        }
    }
}

/// Commands the Redis at `addr` runs while this watches (`MONITOR`), split
/// into what clients sent (round trips, by command) and what scripts ran
/// inside Redis: `INFO commandstats` counts both alike.
struct Monitor {
    child: std::process::Child,
    counts: std::thread::JoinHandle<(BTreeMap<String, f64>, f64)>,
}

impl Monitor {
    fn start(addr: &str) -> Monitor {
        use std::io::BufRead;
        let (host, port) = addr.rsplit_once(':').unwrap();
        let mut child = Command::new("redis-cli")
            .args(["-h", host, "-p", port, "MONITOR"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        let out = child.stdout.take().unwrap();
        let counts = std::thread::spawn(move || {
            let (mut sent, mut scripted) = (BTreeMap::new(), 0.0);
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // `<time> [<db> <client>|lua] "<command>" ...`
                let Some((origin, rest)) = line.split_once("] ") else {
                    continue;
                };
                if origin.ends_with(" lua") {
                    scripted += 1.0;
                    continue;
                }
                let command = rest.split('"').nth(1).unwrap_or("?").to_lowercase();
                if !matches!(command.as_str(), "info" | "monitor") {
                    *sent.entry(command).or_insert(0.0) += 1.0;
                }
            }
            (sent, scripted)
        });
        Monitor { child, counts }
    }

    fn stop(mut self) -> (BTreeMap<String, f64>, f64) {
        self.child.kill().ok();
        self.child.wait().ok();
        self.counts.join().unwrap()
    }
}

/// `INFO commandstats` of the Redis at `addr`: calls per command.
fn redis_commandstats(addr: &str) -> BTreeMap<String, f64> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = Command::new("redis-cli")
        .args(["-h", host, "-p", port, "INFO", "commandstats"])
        .output()
        .expect("redis-cli runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        // The bench's own INFO (and the CLI's handshake) are not the app's.
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "info" | "monitor" | "command" | "command|docs"
            )
        })
        .collect()
}

async fn pg_counters(app: &TestApp) -> BTreeMap<String, f64> {
    let conn = app.pool.get().await.unwrap();
    conn.batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    let db = conn
        .query_one(
            "SELECT xact_commit::float8, tup_inserted::float8, tup_updated::float8,
                    tup_deleted::float8,
                    pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8,
                    pg_database_size(current_database())::float8
             FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap();
    for (i, name) in [
        "transactions committed",
        "rows inserted",
        "rows updated",
        "rows deleted",
        "WAL bytes",
        "database bytes",
    ]
    .iter()
    .enumerate()
    {
        out.insert((*name).to_string(), db.get::<_, f64>(i));
    }
    let tables = conn
        .query(
            "SELECT relname::text, (n_tup_ins + n_tup_upd + n_tup_del)::float8
             FROM pg_stat_user_tables",
            &[],
        )
        .await
        .unwrap();
    for t in tables {
        out.insert(
            format!("rows written: {}", t.get::<_, String>(0)),
            t.get::<_, f64>(1),
        );
    }
    out
}

/// One buyer: an order for `seat`, its passenger named, paid, and waited
/// for until confirmed. Returns the order id, the busy answers met and the
/// order row reads of the wait (each a transaction of this bench's, taken
/// off the count).
async fn buy(app: &TestApp, n: usize, flight: &str, seat: &str) -> (String, usize, f64) {
    let http = support::customer_client(n);
    let mut busy = 0;
    let order = loop {
        let resp = http
            .post(app.url("/api/orders"))
            .json(&json!({"flightId": flight, "seats": [seat]}))
            .send()
            .await
            .unwrap();
        if resp.status() == 503 {
            busy += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(resp.status(), 201, "create");
        let body: Value = resp.json().await.unwrap();
        break body["orderId"].as_str().unwrap().to_string();
    };
    let named = http
        .put(app.url(&format!("/api/orders/{order}/passengers")))
        .json(&json!({"passengers": [
            {"seat": seat, "givenName": "Test", "familyName": "Passenger"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 200, "passengers");
    let paid = http
        .post(app.url(&format!("/api/orders/{order}/pay")))
        .json(&json!({"paymentCode": "00000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 202, "pay");
    let id = order.parse().unwrap();
    let reads = std::sync::atomic::AtomicUsize::new(0);
    support::eventually("the order confirmed", Duration::from_secs(60), || async {
        reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let row = flightctl::store::orders::find(&app.pool, id).await.ok()?;
        (row.status == flightctl::domain::OrderStatus::Confirmed).then_some(())
    })
    .await;
    (order, busy, reads.into_inner() as f64)
}

/// A booking workflow's history, counted.
#[derive(Default)]
struct History {
    events: BTreeMap<String, f64>,
    workflow_tasks: f64,
    actions: f64,
    bytes: f64,
    closed: bool,
}

async fn history(app: &TestApp, order: &str) -> History {
    let client =
        flightctl::temporal::connect(&app.settings.temporal, "bench", Duration::from_secs(10))
            .await
            .unwrap();
    let handle =
        client.get_workflow_handle::<flightctl::booking::Booking>(format!("booking-{order}"));
    let json = handle
        .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .unwrap();
    let parsed: Value = serde_json::from_slice(&json).unwrap();
    let mut h = History {
        bytes: json.len() as f64,
        ..History::default()
    };
    let mut la_tasks = std::collections::BTreeSet::new();
    for event in parsed["events"].as_array().unwrap() {
        let Some((key, attrs)) = event["attributes"]
            .as_object()
            .and_then(|a| a.iter().next())
        else {
            continue;
        };
        let kind = key.trim_end_matches("EventAttributes").to_string();
        *h.events.entry(kind.clone()).or_default() += 1.0;
        match kind.as_str() {
            "WorkflowTaskCompleted" => h.workflow_tasks += 1.0,
            "WorkflowExecutionStarted"
            | "WorkflowExecutionUpdateAccepted"
            | "ActivityTaskScheduled"
            | "TimerStarted"
            | "WorkflowExecutionSignaled" => h.actions += 1.0,
            "MarkerRecorded" => {
                la_tasks.insert(attrs["workflow_task_completed_event_id"].to_string());
            }
            "WorkflowExecutionCompleted" => h.closed = true,
            _ => {}
        }
    }
    h.actions += la_tasks.len() as f64;
    h
}

fn print_per(what: &str, figures: &BTreeMap<String, f64>, n: f64) {
    println!("\n{what} (per confirmed booking)");
    let total: f64 = figures.values().sum();
    for (k, v) in figures {
        if *v / n >= 0.005 {
            println!("  {k:<44} {:>10.2}", v / n);
        }
    }
    if what.starts_with("redis") {
        println!("  {:<44} {:>10.2}", "all commands", total / n);
    }
}

async fn run(scale: Scale) {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let app = TestApp::with_worker(settings).await;
    let rows = scale.bookings.div_ceil(6) as i32;
    let flight = support::burst::insert_flight(&app.pool, rows).await;

    // What the servers do with nobody booking.
    tokio::time::sleep(STATS_FLUSH).await;
    let a = Snapshot::take(&app).await;
    tokio::time::sleep(scale.quiet).await;
    let b = Snapshot::take(&app).await;
    let (quiet_for, quiet) = b.since(&a);

    let app = Arc::new(app);
    let flight = Arc::new(flight);
    let monitor = Monitor::start(&support::servers::redis().addr());
    // MONITOR is on once its client is connected.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let began = Instant::now();
    let tasks: Vec<_> = (0..scale.clients)
        .map(|t| {
            let (app, flight) = (app.clone(), flight.clone());
            let n = scale.bookings;
            let clients = scale.clients;
            tokio::spawn(async move {
                let mut out = Vec::new();
                for i in (t..n).step_by(clients) {
                    let seat = format!("{}{}", i / 6 + 1, ['A', 'B', 'C', 'D', 'E', 'F'][i % 6]);
                    out.push(buy(&app, i, &flight, &seat).await);
                }
                out
            })
        })
        .collect();
    let mut orders = Vec::new();
    let (mut busy, mut reads) = (0, 0.0);
    for t in tasks {
        for (order, b, r) in t.await.unwrap() {
            orders.push(order);
            busy += b;
            reads += r;
        }
    }
    let booked_in = began.elapsed();
    tokio::time::sleep(STATS_FLUSH).await;
    let (sent, scripted) = monitor.stop();
    let c = Snapshot::take(&app).await;
    let (elapsed, raw) = c.since(&b);
    let mut net = raw.less(&quiet, quiet_for, elapsed);
    if let Some(t) = net.pg.get_mut("transactions committed") {
        *t = (*t - reads).max(0.0);
    }
    let n = orders.len() as f64;

    println!(
        "\ncapacity: {} bookings confirmed by {} buyers in {booked_in:.2?} ({busy} busy answers retried); counters over {elapsed:.2?}, background from a quiet {quiet_for:.2?} taken off",
        orders.len(),
        scale.clients,
    );

    let mut events = BTreeMap::new();
    let (mut tasks, mut actions, mut bytes, mut closed) = (0.0, 0.0, 0.0, 0);
    for order in &orders {
        let h = history(&app, order).await;
        for (k, v) in h.events {
            *events.entry(k).or_insert(0.0) += v;
        }
        tasks += h.workflow_tasks;
        actions += h.actions;
        bytes += h.bytes;
        closed += usize::from(h.closed);
    }
    let total_events: f64 = events.values().sum();
    print_per("temporal: history events by type", &events, n);
    println!("  {:<44} {:>10.2}", "all history events", total_events / n);
    println!("  {:<44} {:>10.2}", "workflow tasks", tasks / n);
    println!(
        "  {:<44} {:>10.2}",
        "Temporal Cloud actions (estimate)",
        actions / n
    );
    println!("  {:<44} {:>10.0}", "history JSON bytes", bytes / n);
    println!(
        "  workflows closed at confirmation: {closed} of {}",
        orders.len()
    );
    print_per("redis: commands run (INFO commandstats)", &net.redis, n);
    print_per("redis: round trips, by command (MONITOR)", &sent, n);
    println!(
        "  {:<44} {:>10.2}",
        "commands run inside scripts",
        scripted / n
    );
    print_per("postgres", &net.pg, n);
    println!(
        "\nbackground while quiet, per second: redis {:.1} commands, postgres {:.2} transactions, {:.0} WAL bytes",
        (quiet.redis.values().sum::<f64>() / quiet_for.as_secs_f64()).abs(),
        quiet
            .pg
            .get("transactions committed")
            .copied()
            .unwrap_or(0.0)
            / quiet_for.as_secs_f64(),
        quiet.pg.get("WAL bytes").copied().unwrap_or(0.0) / quiet_for.as_secs_f64(),
    );

    // A smoke run still checks what it measured is real.
    assert_eq!(orders.len(), scale.bookings);
    assert!(tasks > 0.0 && actions > 0.0);
    assert!(
        net.redis.values().sum::<f64>() > 0.0,
        "no Redis commands seen"
    );
    assert!(net.pg.get("WAL bytes").copied().unwrap_or(0.0) > 0.0);
}

/// The size of the queue simulation.
struct SimScale {
    prequeued: usize,
    joiners: usize,
    polls: usize,
    /// Concurrent callers (a `serve` instance's worth of requests in flight).
    tasks: usize,
}

const SIM_FULL: SimScale = SimScale {
    prequeued: 100_000,
    joiners: 900_000,
    polls: 200_000,
    tasks: 64,
};

const SIM_SMOKE: SimScale = SimScale {
    prequeued: 200,
    joiners: 1_800,
    polls: 500,
    tasks: 8,
};

/// `INFO memory`'s `used_memory` of the Redis at `addr`.
fn redis_memory(addr: &str) -> f64 {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = Command::new("redis-cli")
        .args(["-h", host, "-p", port, "INFO", "memory"])
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("used_memory:")?.parse().ok())
        .unwrap_or(0.0)
}

/// Run `n` calls of `op(i)` from `tasks` tasks; returns calls per second.
async fn drive<F, Fut>(n: usize, tasks: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let began = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in (t..n).step_by(tasks) {
                    op(i).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    n as f64 / began.elapsed().as_secs_f64()
}

/// Redis commands run per call over `calls`, from two commandstats.
fn per_call(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, calls: f64) -> f64 {
    let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
    (total(after) - total(before)) / calls
}

fn ticket_id(i: usize) -> String {
    format!(
        "{:032x}",
        (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
    )
}

async fn simulate(scale: SimScale) {
    use flightctl::store::queue::{Queues, Stored, Tick};
    let addr = support::servers::redis().addr();
    // The application's client gives up on a command after 3 s; the
    // opening's shuffle of a large pre-queue takes longer (see below), so
    // the simulation's client waits as long as it takes.
    let client = {
        use fred::prelude::{Builder, ClientLike, Config};
        let config = Config::from_url(&format!("redis://{addr}")).unwrap();
        let client = Builder::from_config(config)
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(600))
            .build()
            .unwrap();
        client.init().await.unwrap();
        client
    };
    let queues = Arc::new(Queues::new(client, "sim").unhurried());
    let flight = flightctl::domain::FlightId::random();
    let now_ms = || chrono::Utc::now().timestamp_millis();
    let tick = Tick {
        opens_at_ms: now_ms() + 3_600_000,
        seed: 1,
        // Nobody lapses in the simulation: the figures are of the queue's
        // steps, not of buyers leaving.
        grace: Duration::from_secs(3600),
        ttl: Duration::from_secs(3600),
        floor: 16,
        seats_left: 50_000,
        per_minute: 0,
        sold_out: false,
        window_s: 5,
        min_tick: Duration::from_millis(100),
    };
    let tickets = scale.prequeued + scale.joiners;
    println!(
        "\nqueue simulation: {tickets} tickets on one flight ({} pre-queued), {} concurrent callers, Redis {addr}",
        scale.prequeued, scale.tasks
    );
    let memory0 = redis_memory(&addr);

    // The pre-queue.
    let stats0 = redis_commandstats(&addr);
    let (q, t) = (queues.clone(), Arc::new(tick.clone()));
    let rate = drive(scale.prequeued, scale.tasks, move |i| {
        let (q, t) = (q.clone(), t.clone());
        async move {
            let raw = q
                .join(flight, &t, &format!("client-{i}"), &ticket_id(i))
                .await
                .unwrap();
            assert_eq!(raw.stored, Stored::Prequeue);
        }
    })
    .await;
    let stats1 = redis_commandstats(&addr);
    println!(
        "  join, before the opening      {rate:>9.0} joins/s   {:>6.1} Redis commands each (1 round trip)",
        per_call(&stats0, &stats1, scale.prequeued as f64)
    );

    // The opening: the first step after it shuffles the whole pre-queue
    // into the line, in one script (Redis does nothing else meanwhile).
    let mut open = tick.clone();
    open.opens_at_ms = now_ms();
    let began = Instant::now();
    let raw = queues
        .view(flight, &open, &ticket_id(0), true)
        .await
        .unwrap()
        .unwrap();
    let shuffle = began.elapsed();
    assert_eq!(raw.stored, Stored::Waiting);
    println!(
        "  the opening's shuffle of {} pre-queued: one script of {shuffle:.2?} (Redis serves nothing else meanwhile; the application's calls give up after {:?})",
        scale.prequeued,
        flightctl::store::COMMAND_TIMEOUT,
    );

    // Joiners behind, first come first served. No admissions yet: the
    // engine has completed nothing and the floor is soon reached.
    let stats2 = redis_commandstats(&addr);
    let (q, t) = (queues.clone(), Arc::new(open.clone()));
    let first = scale.prequeued;
    let rate = drive(scale.joiners, scale.tasks, move |i| {
        let (q, t) = (q.clone(), t.clone());
        async move {
            let i = first + i;
            let raw = q
                .join(flight, &t, &format!("client-{i}"), &ticket_id(i))
                .await
                .unwrap();
            assert!(matches!(
                raw.stored,
                Stored::Waiting | Stored::Admitted { .. }
            ));
        }
    })
    .await;
    let stats3 = redis_commandstats(&addr);
    let memory1 = redis_memory(&addr);
    println!(
        "  join, after the opening       {rate:>9.0} joins/s   {:>6.1} Redis commands each (1 round trip)",
        per_call(&stats2, &stats3, scale.joiners as f64)
    );
    println!(
        "  Redis memory: {:.1} MiB for {tickets} tickets, {:.0} bytes a ticket",
        (memory1 - memory0) / 1_048_576.0,
        (memory1 - memory0) / tickets as f64
    );

    // Polls (or stream beats) of random tickets: the position is a ZRANK.
    let (q, t) = (queues.clone(), Arc::new(open.clone()));
    let mut rng = StdRng::seed_from_u64(SIM_SEED);
    let picks: Arc<Vec<usize>> = Arc::new(
        (0..scale.polls)
            .map(|_| rng.random_range(0..tickets))
            .collect(),
    );
    let rate = drive(scale.polls, scale.tasks, move |i| {
        let (q, t, picks) = (q.clone(), t.clone(), picks.clone());
        async move {
            let raw = q
                .view(flight, &t, &ticket_id(picks[i]), true)
                .await
                .unwrap();
            assert!(raw.is_some());
        }
    })
    .await;
    let stats4 = redis_commandstats(&addr);
    println!(
        "  poll / stream beat            {rate:>9.0} views/s   {:>6.1} Redis commands each (1 round trip)",
        per_call(&stats3, &stats4, scale.polls as f64)
    );

    // FIFO behind the pre-queue: one more joiner, alone, is last in line.
    let tickets = tickets + 1;
    let last = queues
        .join(flight, &open, "client-last", &ticket_id(tickets - 1))
        .await
        .unwrap();
    let stats = queues.stats(flight, &open).await.unwrap();
    assert_eq!(
        last.position,
        Some(stats.waiting),
        "the last joiner is last"
    );

    // Admissions as the engine completes creates: `floor` more a window,
    // then as many as it completed. A burst of 1,000 completions admits
    // up to the floor more than that in one step.
    let mut busy = open.clone();
    busy.floor = 1_000;
    busy.min_tick = Duration::ZERO;
    for _ in 0..1_000 {
        queues.completed(flight, &busy).await.unwrap();
    }
    let began = Instant::now();
    let after = queues.stats(flight, &busy).await.unwrap();
    let step = began.elapsed();
    let admitted = after.admitted_total - stats.admitted_total;
    println!(
        "  one step admitting {admitted} of {} waiting: {step:.2?}; admission rate then {:.1}/s",
        stats.waiting,
        after.rate_milli as f64 / 1000.0
    );
    println!(
        "  Redis memory in all: {:.1} MiB",
        redis_memory(&addr) / 1_048_576.0
    );
    assert_eq!(
        stats.waiting as usize + stats.admitted_total as usize,
        tickets
    );
    assert!(admitted > 0);
}

/// The simulation's polls pick their tickets with this seed.
const SIM_SEED: u64 = 25;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let only_sim = args.iter().any(|a| a == "--simulate");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    if !only_sim {
        runtime.block_on(run(if full { FULL } else { SMOKE }));
    }
    runtime.block_on(simulate(if full { SIM_FULL } else { SIM_SMOKE }));
}
