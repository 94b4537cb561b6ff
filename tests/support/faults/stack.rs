//! The system under test (its own servers and processes) and the faults
//! injected into it.

use super::*;

/// `temporal workflow show` of an order's workflow (every run), for a report.
pub fn workflow_history(address: &str, order: &str) -> String {
    let bin = procs::find_bin("temporal", "FLIGHTCTL_TEST_TEMPORAL", &[]);
    let mut out = String::new();
    for args in [
        vec!["workflow", "list", "--query"],
        vec!["workflow", "show", "--workflow-id"],
    ] {
        let target = if args[1] == "list" {
            format!("WorkflowId = 'booking-{order}'")
        } else {
            format!("booking-{order}")
        };
        let result = std::process::Command::new(&bin)
            .args(&args)
            .arg(target)
            .args(["--address", address])
            .output();
        match result {
            Ok(o) => {
                out.push_str(&String::from_utf8_lossy(&o.stdout));
                out.push_str(&String::from_utf8_lossy(&o.stderr));
            }
            Err(e) => out.push_str(&format!("temporal: {e}\n")),
        }
    }
    out
}

/// The system under test: its own servers and processes.
pub struct Stack {
    pub pg: Postgres,
    pub redis: Redis,
    pub temporal: Temporal,
    pub settings: flightctl::config::Settings,
    pub serve: Proc,
    pub serve_port: u16,
    pub worker: Proc,
    pub logs: PathBuf,
    /// The processes a stall stopped, until it ends.
    pub frozen: Option<procs::Frozen>,
}

pub const SERVE_ENV: &[(&str, &str)] = &[
    ("SEAT_RESERVATION_TIMEOUT", HOLD),
    ("PAYMENT_VALIDATION_TIMEOUT", PAYMENT_TIMEOUT),
    ("PAYMENT_MAX_RETRIES", "3"),
];

impl Stack {
    pub async fn start() -> Stack {
        let (pg, redis, temporal) = tokio::task::spawn_blocking(|| {
            std::thread::scope(|s| {
                let temporal = s.spawn(Temporal::start);
                let pg = s.spawn(Postgres::start_durable);
                let redis = Redis::start();
                (pg.join().unwrap(), redis, temporal.join().unwrap())
            })
        })
        .await
        .unwrap();
        pg.create_database("faults").await;
        let mut s = support::base_settings();
        s.server.host = "127.0.0.1".into();
        s.database.url = flightctl::config::Secret::new(pg.url("faults"));
        s.redis.target = support::redis_target(&redis.addr());
        s.redis.key_prefix = "faults".into();
        s.temporal.host = temporal.host();
        s.temporal.task_queue = "faults".into();
        s.worker.deployment_name = "faults".into();
        s.worker.build_id = "faults-build".into();
        s.booking.payment_failure_rate = 0.15;
        // Customers name themselves in X-Forwarded-For (`traffic::forwarded_for`),
        // believed from loopback: each is a client of its own for the fair
        // share per client.
        s.server.trusted_proxies =
            flightctl::config::TrustedProxies::parse("127.0.0.1/32").expect("a proxy list");
        // The test flight leaves in a day: cancellable up to an hour before.
        s.booking.refund_cutoff = Duration::from_secs(3600);
        s.booking.refund_failure_rate = 0.15;
        support::prepare_database(&s).await;
        let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("faults-{}", std::process::id()));
        std::fs::create_dir_all(&logs).unwrap();
        let serve_port = procs::free_port();
        let worker = support::worker_process(&s, &logs.join("worker.log"));
        support::make_current(&s).await;
        let settings = s.clone();
        let log = logs.join("serve.log");
        let serve = tokio::task::spawn_blocking(move || {
            support::serve_process_at(&settings, SERVE_ENV, serve_port, &log)
        })
        .await
        .unwrap();
        Stack {
            pg,
            redis,
            temporal,
            settings: s,
            serve,
            serve_port,
            worker,
            logs,
            frozen: None,
        }
    }

    pub fn restart_serve(&mut self) {
        self.serve = support::serve_process_at(
            &self.settings,
            SERVE_ENV,
            self.serve_port,
            &self.logs.join("serve.log"),
        );
    }

    pub fn restart_worker(&mut self) {
        self.worker = support::worker_process(&self.settings, &self.logs.join("worker.log"));
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    Worker,
    Serve,
    Redis,
    Temporal,
    TemporalStall,
    Postgres,
    PostgresStall,
    /// Payments under way, rival buyers after their seats (`rivals.rs`).
    RedisMidPayment,
    WorkerStallMidPayment,
}

impl Fault {
    pub fn describe(self) -> &'static str {
        match self {
            Fault::Worker => "worker: SIGKILL, restart",
            Fault::Serve => "serve: SIGKILL, restart (same port)",
            Fault::Redis => "redis: SIGKILL, restart empty (holds lost)",
            Fault::Temporal => "temporal: SIGKILL, restart (same db file)",
            Fault::TemporalStall => "temporal: stall (SIGSTOP 7s, SIGCONT)",
            Fault::Postgres => "postgres: immediate shutdown, restart",
            Fault::PostgresStall => "postgres: stall (SIGSTOP all 7s, SIGCONT)",
            Fault::RedisMidPayment => "mid-payment: worker frozen, redis restarted empty, rivals",
            Fault::WorkerStallMidPayment => "mid-payment: worker frozen past the holds, rivals",
        }
    }

    /// How long the component stays down (or stopped).
    pub fn down_for(self) -> Duration {
        match self {
            Fault::Worker | Fault::Serve | Fault::Redis => Duration::from_secs(1),
            Fault::Temporal | Fault::Postgres => Duration::from_secs(2),
            Fault::TemporalStall | Fault::PostgresStall => STALL,
            Fault::RedisMidPayment | Fault::WorkerStallMidPayment => Duration::ZERO,
        }
    }

    /// Strikes while payments are under way, with rival buyers (run by
    /// [`mid_payment`], not by [`inject`] and [`restore`]).
    pub fn mid_payment(self) -> bool {
        matches!(self, Fault::RedisMidPayment | Fault::WorkerStallMidPayment)
    }
}

pub struct Injected {
    pub fault: Fault,
    pub at: Duration,
    pub down: Duration,
    pub recovered: Option<Duration>,
    pub notes: Vec<String>,
}

/// Inject the fault; returns what is worth noting.
pub fn inject(stack: &mut Stack, fault: Fault) -> Option<String> {
    match fault {
        Fault::Worker => stack.worker.kill(),
        Fault::Serve => stack.serve.kill(),
        Fault::Redis => stack.redis.kill(),
        Fault::Temporal => stack.temporal.kill(),
        Fault::Postgres => stack.pg.crash(),
        Fault::TemporalStall | Fault::PostgresStall => {
            let (name, pid) = match fault {
                Fault::TemporalStall => ("temporal", stack.temporal.pid()),
                _ => ("postgres", stack.pg.pid()),
            };
            let pid = pid.unwrap_or_else(|| panic!("{name} is not running"));
            let frozen = procs::freeze_tree(pid);
            let note = format!("{} {name} processes stopped", frozen.pids().len());
            stack.frozen = Some(frozen);
            return Some(note);
        }
        Fault::RedisMidPayment | Fault::WorkerStallMidPayment => {}
    }
    None
}

pub fn restore(stack: &mut Stack, fault: Fault) {
    match fault {
        Fault::Worker => stack.restart_worker(),
        Fault::Serve => stack.restart_serve(),
        Fault::Redis => stack.redis.restart(),
        Fault::Temporal => stack.temporal.restart(),
        Fault::Postgres => stack.pg.restart(),
        Fault::TemporalStall | Fault::PostgresStall => {
            if let Some(frozen) = stack.frozen.take() {
                frozen.thaw();
            }
        }
        Fault::RedisMidPayment | Fault::WorkerStallMidPayment => {}
    }
}
