//! Flash-sale figures on the real stack (random ports, file-backed Temporal
//! dev server, a `flightctl worker` process, the API in-process):
//!
//! - the engine share: booking cycles/s divided by the cycles/s of a no-op
//!   workflow with the same message shape (update-with-start, then an
//!   update) on the same Temporal server — how much of what the engine can
//!   do the booking code keeps;
//! - the burst: a crowd of buyers on one flight, what they were answered and
//!   what they left behind (see `tests/support/burst.rs`).
//!
//! `cargo bench --bench flash_sale` runs the full size; `cargo test` runs a
//! smoke size so this stays working.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flightctl::config::TemporalSettings;
use serde_json::json;
use support::burst::{self, BurstReport, Limits};
use support::{FL101, FL102, TestApp};
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions,
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::time::Instant;
use uuid::Uuid;

use noop::Noop;

/// Concurrent clients of the engine-share measurement.
const CLIENTS: usize = 16;

/// The flight the crowd buys on.
enum Flight {
    Seeded(&'static str),
    /// A flight of this many rows inserted for the run.
    Inserted(i32),
}

struct Scale {
    buyers: usize,
    flight: Flight,
    limits: Limits,
    warmup: Duration,
    measure: Duration,
}

const FULL: Scale = Scale {
    buyers: 500,
    flight: Flight::Seeded(FL101),
    limits: Limits {
        buyer_for: Duration::from_secs(60),
        sell_out_within: Duration::from_secs(90),
        settle_within: Duration::from_secs(30),
    },
    warmup: Duration::from_secs(3),
    measure: Duration::from_secs(20),
};

const SMOKE: Scale = Scale {
    buyers: 40,
    flight: Flight::Inserted(5),
    limits: Limits {
        buyer_for: Duration::from_secs(10),
        sell_out_within: Duration::from_secs(12),
        settle_within: Duration::from_secs(3),
    },
    warmup: Duration::from_millis(500),
    measure: Duration::from_secs(2),
};

/// The smallest workflow with the booking workflow's message shape: started
/// by an update, ended by another.
mod noop {
    use temporalio_macros::{workflow, workflow_methods};
    use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowResult};

    #[workflow]
    #[derive(Default)]
    pub struct Noop {
        begun: bool,
        done: bool,
    }

    #[workflow_methods]
    impl Noop {
        #[run]
        pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
            ctx.wait_condition(|s| s.done).await?;
            Ok(())
        }

        #[update]
        pub fn begin(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _req: ()) -> bool {
            self.begun = true;
            self.begun
        }

        #[update]
        pub fn end(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _req: ()) -> bool {
            self.done = true;
            self.done
        }
    }
}

/// Cycles completed inside the measured window, and failed ones by why.
struct Rate {
    cycles: usize,
    failed: BTreeMap<String, usize>,
    per_second: f64,
}

/// One cycle's outcome; a failure says which step answered what.
type Cycle = Result<(), String>;

/// Run `op(client, i)` in a loop from `clients` tasks for `warmup +
/// measure`; count what completes inside the measured window.
async fn cycles_per_second<F, Fut>(
    clients: usize,
    warmup: Duration,
    measure: Duration,
    op: F,
) -> Rate
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Cycle> + Send,
{
    let op = Arc::new(op);
    let from = Instant::now() + warmup;
    let until = from + measure;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0.. {
                    let outcome = op(c, i).await;
                    let now = Instant::now();
                    if now > until {
                        break;
                    }
                    if now >= from {
                        outcomes.push(outcome);
                    }
                }
                outcomes
            })
        })
        .collect();
    let mut rate = Rate {
        cycles: 0,
        failed: BTreeMap::new(),
        per_second: 0.0,
    };
    for t in tasks {
        for outcome in t.await.expect("a client task") {
            match outcome {
                Ok(()) => rate.cycles += 1,
                Err(why) => *rate.failed.entry(why).or_default() += 1,
            }
        }
    }
    rate.per_second = rate.cycles as f64 / measure.as_secs_f64();
    rate
}

/// An in-process worker for `Noop`. Its future is not `Send`, so it runs on
/// its own thread with a current-thread runtime.
struct NoopWorker {
    shutdown: Box<dyn Fn() + Send>,
    thread: std::thread::JoinHandle<()>,
}

impl NoopWorker {
    fn start(temporal: TemporalSettings, queue: String) -> NoopWorker {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn Fn() + Send>>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the no-op worker");
            rt.block_on(async move {
                let client = connect(&temporal).await;
                let options = WorkerOptions::new(queue)
                    .register_workflow::<Noop>()
                    .expect("the no-op workflow registers")
                    .build();
                let runtime = Runtime::from_current_tokio(Default::default()).expect("runtime");
                let mut worker = Worker::new(&runtime, client, options).expect("a worker");
                tx.send(Box::new(worker.shutdown_handle()))
                    .expect("the bench waits for the worker");
                worker.run().await.expect("the no-op worker runs");
            });
        });
        let shutdown = rx.recv().expect("the no-op worker started");
        NoopWorker { shutdown, thread }
    }

    fn stop(self) {
        (self.shutdown)();
        self.thread.join().expect("the no-op worker stopped");
    }
}

async fn connect(temporal: &TemporalSettings) -> Client {
    flightctl::temporal::connect(temporal, "flash-sale-bench", Duration::from_secs(10))
        .await
        .expect("temporal client")
}

/// The no-op workflow's cycle, on its own task queue.
async fn noop_rate(app: &TestApp, scale: &Scale) -> Rate {
    let queue = format!("noop-{}", Uuid::new_v4().simple());
    let worker = NoopWorker::start(app.settings.temporal.clone(), queue.clone());
    let client = connect(&app.settings.temporal).await;
    // A new worker takes seconds to start polling: one cycle first, so the
    // warm-up measures the engine, not the worker's start.
    let probe = noop_cycle(client.clone(), queue.clone()).await;
    probe.expect("a no-op cycle");
    let rate = cycles_per_second(CLIENTS, scale.warmup, scale.measure, move |_, _| {
        noop_cycle(client.clone(), queue.clone())
    })
    .await;
    worker.stop();
    rate
}

async fn noop_cycle(client: Client, queue: String) -> Cycle {
    let id = format!("noop-{}", Uuid::new_v4());
    let options =
        WorkflowUpdateWithStartOptions::new(queue, id.clone(), WorkflowIdConflictPolicy::Fail)
            .build();
    client
        .execute_update_with_start_workflow(Noop::run, (), Noop::begin, (), options)
        .await
        .map_err(|e| short("begin", &e))?;
    client
        .get_workflow_handle::<Noop>(id)
        .execute_update(Noop::end, (), WorkflowExecuteUpdateOptions::default())
        .await
        .map_err(|e| short("end", &e))?;
    Ok(())
}

/// A failure's first words: enough to tell kinds apart, and they group.
fn short(step: &str, e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    format!("{step}: {}", text.chars().take(60).collect::<String>())
}

/// The booking cycle: hold one seat, cancel. Each client cycles through its
/// own seats of FL102, so clients never collide.
async fn booking_rate(app: &TestApp, scale: &Scale) -> Rate {
    let mut seats: Vec<String> = app.seat_statuses(FL102).await.into_keys().collect();
    seats.sort();
    let own: Arc<Vec<Vec<String>>> = Arc::new(
        (0..CLIENTS)
            .map(|c| seats.iter().skip(c).step_by(CLIENTS).cloned().collect())
            .collect(),
    );
    let (http, base) = (burst::crowd_client(), app.address.clone());
    // One cycle first, as for the no-op: the worker process is fresh too.
    let probe = booking_cycle(http.clone(), base.clone(), own[0][0].clone());
    probe.await.expect("a booking cycle");
    cycles_per_second(CLIENTS, scale.warmup, scale.measure, move |c, i| {
        let seat = own[c][i % own[c].len()].clone();
        booking_cycle(http.clone(), base.clone(), seat)
    })
    .await
}

async fn booking_cycle(http: reqwest::Client, base: String, seat: String) -> Cycle {
    let created = http
        .post(format!("{base}/api/orders"))
        .json(&json!({"flightId": FL102, "seats": [seat]}))
        .send()
        .await
        .map_err(|_| "create: transport error")?;
    if created.status() != 201 {
        return Err(format!("create: {}", created.status().as_u16()));
    }
    let body: serde_json::Value = created
        .json()
        .await
        .map_err(|_| "create: transport error")?;
    let order = body["orderId"].as_str().unwrap_or_default();
    let cancelled = http
        .delete(format!("{base}/api/orders/{order}"))
        .send()
        .await
        .map_err(|_| "cancel: transport error")?;
    match cancelled.status().as_u16() {
        200 => Ok(()),
        code => Err(format!("cancel: {code}")),
    }
}

fn line(label: &str, value: String) {
    println!("  {label:<40} {value}");
}

fn print_rate(label: &str, rate: &Rate) {
    let failed: usize = rate.failed.values().sum();
    line(
        label,
        format!(
            "{:.1}   ({} cycles, {failed} failed)",
            rate.per_second, rate.cycles
        ),
    );
    for (why, n) in &rate.failed {
        println!("    failed {n:>5} × {why}");
    }
}

fn summary(report: &BurstReport, share: f64) -> String {
    let sold = report
        .sold_out_after
        .map_or_else(|| "not sold out".into(), |d| format!("sold out in {d:.2?}"));
    format!(
        "summary: {} buyers / {} seats: {sold}, 201 {} / 409 {} / 503 {} / other {}, \
         violations {}, ghosts {}, double sales {}; engine share {:.1} %",
        report.buyers,
        report.seats,
        report.created,
        report.conflicts,
        report.busy,
        report.other,
        report.violations,
        report.ghosts(),
        report.double_sales,
        share * 100.0,
    )
}

/// Measure the engine share: the no-op, then booking, then the no-op again
/// (the dev server's rate drifts while it warms up; the two no-op runs
/// bracket the booking run and their mean is the reference).
async fn engine_share(app: &TestApp, scale: &Scale) -> f64 {
    println!(
        "engine share: {CLIENTS} clients, {:.1?} measured after {:.1?} warm-up",
        scale.measure, scale.warmup
    );
    let before = noop_rate(app, scale).await;
    print_rate("no-op workflow cycles/s (before)", &before);
    let booking = booking_rate(app, scale).await;
    print_rate("booking cycles/s (create + cancel)", &booking);
    let after = noop_rate(app, scale).await;
    print_rate("no-op workflow cycles/s (after)", &after);
    let noop = (before.per_second + after.per_second) / 2.0;
    let share = booking.per_second / noop.max(f64::MIN_POSITIVE);
    line(
        "engine share the booking code keeps",
        format!("{:.1} % (of the no-op mean {noop:.1}/s)", share * 100.0),
    );
    share
}

async fn run(scale: Scale) {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let app = TestApp::with_worker(settings).await;
    // The engine share goes first, on a quiet server: a burst can leave
    // Temporal working through creates the API already gave up on.
    let share = engine_share(&app, &scale).await;
    let flight = match scale.flight {
        Flight::Seeded(id) => id.to_string(),
        Flight::Inserted(rows) => burst::insert_flight(&app.pool, rows).await,
    };
    let report = burst::burst_with(&app, &flight, scale.buyers, scale.limits).await;
    report.print();
    println!("{}", summary(&report, share));
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(if full { FULL } else { SMOKE }));
}
