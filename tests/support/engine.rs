//! The engine share: how much of what the Temporal server can do the
//! booking code keeps. Booking cycles/s (hold a seat, cancel) divided by the
//! cycles/s of a no-op workflow with the same message shape
//! (update-with-start, then an update that ends it) on the same server,
//! measured before and after the booking run. Shared by the benchmarks.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flightctl::config::TemporalSettings;
use serde_json::json;
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions,
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::time::Instant;
use uuid::Uuid;

use super::{FL102, TestApp};
use noop::Noop;

/// Concurrent clients of a cycle rate: the creates one `serve` admits at
/// once with the default `API_MAX_IN_FLIGHT` (16, less the quarter kept for
/// checkout calls), so the booking run measures the engine, not a storm of
/// 503s; the no-op runs with as many, for a fair ratio.
pub const CLIENTS: usize = 12;

/// How long a rate warms up, then is measured.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub warmup: Duration,
    pub measure: Duration,
}

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
pub struct Rate {
    pub cycles: usize,
    pub failed: BTreeMap<String, usize>,
    pub per_second: f64,
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
pub async fn noop_rate(app: &TestApp, window: Window) -> Rate {
    noop_rate_with(app, window, CLIENTS, 1).await
}

/// The no-op workflow's cycle from `clients` clients, polled by `workers`
/// no-op workers (each its own thread, runtime and connection, as a worker
/// process has): the engine's ceiling for that many workers.
pub async fn noop_rate_with(app: &TestApp, window: Window, clients: usize, workers: usize) -> Rate {
    let queue = format!("noop-{}", Uuid::new_v4().simple());
    let pool: Vec<NoopWorker> = (0..workers.max(1))
        .map(|_| NoopWorker::start(app.settings.temporal.clone(), queue.clone()))
        .collect();
    let client = connect(&app.settings.temporal).await;
    // A new worker takes seconds to start polling: one cycle first, so the
    // warm-up measures the engine, not the worker's start.
    let probe = noop_cycle(client.clone(), queue.clone()).await;
    probe.expect("a no-op cycle");
    let rate = cycles_per_second(clients, window.warmup, window.measure, move |_, _| {
        noop_cycle(client.clone(), queue.clone())
    })
    .await;
    for worker in pool {
        worker.stop();
    }
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
/// own free seats of FL102, so clients never collide.
pub async fn booking_rate(app: &TestApp, window: Window) -> Rate {
    booking_rate_with(app, window, CLIENTS).await
}

/// The booking cycle from `clients` clients (at most one per free seat).
pub async fn booking_rate_with(app: &TestApp, window: Window, clients: usize) -> Rate {
    let statuses = app.seat_statuses(FL102).await;
    let free = statuses
        .into_iter()
        .filter(|(_, status)| status == "available");
    let mut seats: Vec<String> = free.map(|(seat, _)| seat).collect();
    seats.sort();
    let clients = clients.min(seats.len());
    let own: Arc<Vec<Vec<String>>> = Arc::new(
        (0..clients)
            .map(|c| seats.iter().skip(c).step_by(clients).cloned().collect())
            .collect(),
    );
    // Each client a customer of its own (the server counts a fair share
    // per client address).
    let http: Arc<Vec<reqwest::Client>> =
        Arc::new((0..clients).map(super::customer_client).collect());
    let base = app.address.clone();
    // One cycle first, as for the no-op: the worker process is fresh too.
    let probe = booking_cycle(http[0].clone(), base.clone(), own[0][0].clone());
    probe.await.expect("a booking cycle");
    cycles_per_second(clients, window.warmup, window.measure, move |c, i| {
        let seat = own[c][i % own[c].len()].clone();
        booking_cycle(http[c].clone(), base.clone(), seat)
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

pub fn line(label: &str, value: String) {
    println!("  {label:<40} {value}");
}

pub fn print_rate(label: &str, rate: &Rate) {
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

/// Booking cycles/s next to the no-op ceiling on the same server.
#[derive(Clone, Copy, Debug)]
pub struct Share {
    pub booking: f64,
    /// The mean of the no-op runs before and after the booking run.
    pub noop: f64,
}

impl Share {
    /// The fraction of the engine's ceiling the booking code keeps.
    pub fn ratio(&self) -> f64 {
        self.booking / self.noop.max(f64::MIN_POSITIVE)
    }
}

/// Measure the engine share: the no-op, then booking, then the no-op again
/// (the dev server's rate drifts while it warms up; the two no-op runs
/// bracket the booking run and their mean is the reference).
pub async fn engine_share(app: &TestApp, window: Window) -> f64 {
    engine_share_with(app, window, CLIENTS, 1).await.ratio()
}

/// The engine share with `clients` clients, the no-op polled by as many
/// workers as the booking workflow has (`workers`).
pub async fn engine_share_with(
    app: &TestApp,
    window: Window,
    clients: usize,
    workers: usize,
) -> Share {
    println!(
        "engine share: {clients} clients, {workers} worker(s), {:.1?} measured after {:.1?} warm-up",
        window.measure, window.warmup
    );
    let before = noop_rate_with(app, window, clients, workers).await;
    print_rate("no-op workflow cycles/s (before)", &before);
    let booking = booking_rate_with(app, window, clients).await;
    print_rate("booking cycles/s (create + cancel)", &booking);
    let after = noop_rate_with(app, window, clients, workers).await;
    print_rate("no-op workflow cycles/s (after)", &after);
    let share = Share {
        booking: booking.per_second,
        noop: (before.per_second + after.per_second) / 2.0,
    };
    line(
        "engine share the booking code keeps",
        format!(
            "{:.1} % (of the no-op mean {:.1}/s)",
            share.ratio() * 100.0,
            share.noop
        ),
    );
    share
}

/// How a buyer of a confirmed-booking cycle names its passengers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// In the payment: create, pay with the passengers (two updates).
    WithPay,
    /// First `PUT …/passengers`, then pay (three updates: the client
    /// before `pay` carried them).
    Apart,
}

/// Clients of a confirmed-booking rate: as the issue measured it.
pub const SALE_CLIENTS: usize = 16;

/// Confirmed bookings/s: each of `clients` buyers creates an order for one
/// seat of its own of `flight`, pays (code 00000, naming its passenger as
/// `naming` says) and reads the order's status until it ends. Counted:
/// cycles ending CONFIRMED inside the window. Returns the rate and the
/// confirmed orders' ids.
pub async fn sale_rate(
    app: &TestApp,
    window: Window,
    clients: usize,
    flight: &str,
    naming: Naming,
) -> (Rate, Vec<String>) {
    let statuses = app.seat_statuses(flight).await;
    let free = statuses
        .into_iter()
        .filter(|(_, status)| status == "available");
    let mut seats: Vec<String> = free.map(|(seat, _)| seat).collect();
    seats.sort();
    let clients = clients.min(seats.len());
    let own: Arc<Vec<Vec<String>>> = Arc::new(
        (0..clients)
            .map(|c| seats.iter().skip(c).step_by(clients).cloned().collect())
            .collect(),
    );
    let http: Arc<Vec<reqwest::Client>> =
        Arc::new((0..clients).map(super::customer_client).collect());
    let base = app.address.clone();
    let flight = flight.to_string();
    let confirmed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sold = confirmed.clone();
    // Each client's next seat: a seat is used once a create took it or
    // refused it, never by a busy answer (that cycle tries it again).
    let next: Arc<Vec<std::sync::atomic::AtomicUsize>> =
        Arc::new((0..clients).map(|_| Default::default()).collect());
    let rate = cycles_per_second(clients, window.warmup, window.measure, move |c, _| {
        use std::sync::atomic::Ordering::Relaxed;
        let (own, next) = (own.clone(), next.clone());
        let (http, base, flight) = (http[c].clone(), base.clone(), flight.clone());
        let sold = sold.clone();
        async move {
            let Some(seat) = own[c].get(next[c].load(Relaxed)).cloned() else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Err("out of seats: a larger flight".into());
            };
            let (used, cycle) = sale_cycle(http, base, flight, seat, naming).await;
            if used {
                next[c].fetch_add(1, Relaxed);
            }
            sold.lock().expect("the list").push(cycle?);
            Ok(())
        }
    })
    .await;
    let orders = std::mem::take(&mut *confirmed.lock().expect("the list"));
    (rate, orders)
}

/// One sale: whether it used its seat (a create took or refused it), and
/// the confirmed order or what went wrong.
async fn sale_cycle(
    http: reqwest::Client,
    base: String,
    flight: String,
    seat: String,
    naming: Naming,
) -> (bool, Result<String, String>) {
    let created = http
        .post(format!("{base}/api/orders"))
        .json(&json!({"flightId": flight, "seats": [seat]}))
        .send()
        .await;
    let Ok(created) = created else {
        return (false, Err("create: transport error".into()));
    };
    match created.status().as_u16() {
        201 => (true, checkout(http, base, created, seat, naming).await),
        code @ (503 | 504) => {
            // Busy: back off a little, as a client honouring Retry-After.
            tokio::time::sleep(Duration::from_millis(100)).await;
            (false, Err(format!("create: {code}")))
        }
        code => (true, Err(format!("create: {code}"))),
    }
}

/// Pay for the order just created (naming the passenger as `naming` says)
/// and read its status until it ends.
async fn checkout(
    http: reqwest::Client,
    base: String,
    created: reqwest::Response,
    seat: String,
    naming: Naming,
) -> Result<String, String> {
    let body: serde_json::Value = created
        .json()
        .await
        .map_err(|_| "create: transport error")?;
    let order = body["orderId"].as_str().unwrap_or_default().to_string();
    let passengers = json!([{"seat": seat, "givenName": "Bench", "familyName": "Buyer"}]);
    let pay = match naming {
        Naming::WithPay => json!({"paymentCode": "00000", "passengers": passengers}),
        Naming::Apart => {
            let named = http
                .put(format!("{base}/api/orders/{order}/passengers"))
                .json(&json!({ "passengers": passengers }))
                .send()
                .await
                .map_err(|_| "passengers: transport error")?;
            if named.status() != 200 {
                return Err(format!("passengers: {}", named.status().as_u16()));
            }
            json!({"paymentCode": "00000"})
        }
    };
    let paid = http
        .post(format!("{base}/api/orders/{order}/pay"))
        .json(&pay)
        .send()
        .await
        .map_err(|_| "pay: transport error")?;
    if paid.status() != 202 {
        return Err(format!("pay: {}", paid.status().as_u16()));
    }
    loop {
        let status = http
            .get(format!("{base}/api/orders/{order}/status"))
            .send()
            .await
            .map_err(|_| "status: transport error")?;
        let body: serde_json::Value = status.json().await.map_err(|_| "status: transport error")?;
        match body["status"].as_str().unwrap_or_default() {
            "CONFIRMED" => return Ok(order),
            "PAYMENT_PROCESSING" => tokio::time::sleep(Duration::from_millis(20)).await,
            other => return Err(format!("ended {other}")),
        }
    }
}

/// What the engine recorded for one booking, averaged over orders.
#[derive(Clone, Copy, Debug, Default)]
pub struct PerBooking {
    pub orders: usize,
    pub events: f64,
    pub workflow_tasks: f64,
    pub activities: f64,
    pub local_activities: f64,
    pub updates: f64,
    pub timers: f64,
}

/// The histories of (up to 10 of) `orders`' workflows, counted.
pub async fn per_booking(app: &TestApp, orders: &[String]) -> PerBooking {
    use temporalio_common::protos::temporal::api::enums::v1::EventType;
    let client = connect(&app.settings.temporal).await;
    let mut sum = PerBooking::default();
    for order in orders.iter().take(10) {
        let handle =
            client.get_workflow_handle::<flightctl::booking::Booking>(format!("booking-{order}"));
        let events = handle
            .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
            .into_events()
            .await
            .expect("the booking's history");
        let count = |t: EventType| events.iter().filter(|e| e.event_type() == t).count() as f64;
        sum.orders += 1;
        sum.events += events.len() as f64;
        sum.workflow_tasks += count(EventType::WorkflowTaskCompleted);
        sum.activities += count(EventType::ActivityTaskScheduled);
        sum.local_activities += count(EventType::MarkerRecorded);
        sum.updates += count(EventType::WorkflowExecutionUpdateAccepted);
        sum.timers += count(EventType::TimerStarted);
    }
    let n = sum.orders.max(1) as f64;
    PerBooking {
        orders: sum.orders,
        events: sum.events / n,
        workflow_tasks: sum.workflow_tasks / n,
        activities: sum.activities / n,
        local_activities: sum.local_activities / n,
        updates: sum.updates / n,
        timers: sum.timers / n,
    }
}

pub fn print_per_booking(label: &str, p: &PerBooking) {
    line(
        label,
        format!(
            "{:.1} history events, {:.1} workflow tasks, {:.1} updates, {:.1} activities, \
             {:.1} local activities, {:.1} timers ({} orders)",
            p.events,
            p.workflow_tasks,
            p.updates,
            p.activities,
            p.local_activities,
            p.timers,
            p.orders
        ),
    );
}

/// Confirmed bookings/s of each way of naming passengers between two no-op
/// runs of as many clients, on a flight of its own; the history counts per
/// confirmed booking and the ratio to the no-op (polled by `workers`
/// no-op workers, as many as the booking workflow has). Returns the ratio
/// of the current client (passengers in the payment).
pub async fn sale_share(app: &TestApp, window: Window, clients: usize, workers: usize) -> f64 {
    println!(
        "confirmed bookings: {clients} clients, {:.1?} measured after {:.1?} warm-up",
        window.measure, window.warmup
    );
    // Enough seats for ~60/s over the whole window, per way of naming.
    let secs = (window.warmup + window.measure).as_secs_f64();
    let rows = ((secs * 60.0) as i32 / 6).max(clients as i32);
    let before = noop_rate_with(app, window, clients, workers).await;
    print_rate("no-op workflow cycles/s (before)", &before);
    let mut results = Vec::new();
    for naming in [Naming::WithPay, Naming::Apart] {
        let flight = super::burst::insert_flight(&app.pool, rows).await;
        let (rate, orders) = sale_rate(app, window, clients, &flight, naming).await;
        let label = match naming {
            Naming::WithPay => "confirmed bookings/s, passengers in pay",
            Naming::Apart => "confirmed bookings/s, passengers apart",
        };
        print_rate(label, &rate);
        results.push((naming, rate.per_second, per_booking(app, &orders).await));
    }
    let after = noop_rate_with(app, window, clients, workers).await;
    print_rate("no-op workflow cycles/s (after)", &after);
    let noop = (before.per_second + after.per_second) / 2.0;
    let mut ratio = 0.0;
    for (naming, per_second, per) in &results {
        let what = match naming {
            Naming::WithPay => "passengers in pay",
            Naming::Apart => "passengers apart",
        };
        print_per_booking(&format!("per confirmed booking, {what}"), per);
        let share = per_second / noop.max(f64::MIN_POSITIVE);
        line(
            &format!("confirmed/s ÷ no-op/s, {what}"),
            format!("{share:.2} ({per_second:.1}/s of the no-op mean {noop:.1}/s; goal 0.8)"),
        );
        if *naming == Naming::WithPay {
            ratio = share;
        }
    }
    ratio
}
