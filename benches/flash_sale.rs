//! Flash-sale figures on the real stack, per deployment shape: `serve`
//! processes behind HAProxy (`deploy/haproxy/haproxy.cfg`) and `worker`
//! processes, on random ports, one file-backed Temporal dev server for
//! every shape of a run:
//!
//! - bookings/s: booking cycles (hold a seat, cancel) through the balancer,
//!   next to the cycles/s of a no-op workflow with the same message shape
//!   (update-with-start, then an update) polled by as many workers, on the
//!   same Temporal server: the engine's ceiling for that shape. Their ratio
//!   says whose limit it is: near 1, the engine's; well below, ours;
//! - the burst: a crowd of buyers on one flight, what they were answered and
//!   what they left behind (see `tests/support/burst.rs`).
//!
//! `cargo bench --bench flash_sale` runs the full size for 1 serve + 1
//! worker and 2 serve + 3 workers; `-- --serve N --workers M` runs one
//! shape. `cargo test` runs a smoke size of the larger shape only (the
//! other is the same code with other counts), so this stays working and
//! short.
//!
//! `-- --waiting-room` runs a scheduled sale through the waiting room
//! instead (`tests/support/waiting.rs`): 120 seats, 200 buyers pre-queued,
//! then 5,000 joining within 2 s, each following its ticket's stream and
//! buying with its admission; per shape it prints join latency, time to
//! sell out, 503/504 counts, the Kendall tau of join order against queue
//! and admission order, the median error of the first wait estimate, and
//! the engine share (confirmed bookings/s over the sale ÷ the no-op's
//! cycles/s on the same server). `tests/flash_sale.rs` runs it at a smoke
//! size.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::burst::{self, BurstReport, Limits};
use support::engine::{self, Share};
use support::shape::Shape;
use support::waiting::{self, SaleReport, SaleScale};
use support::{FL101, isolated_settings};

/// The waiting-room sale of issue 25.
const SALE_FULL: SaleScale = SaleScale {
    rows: 20,
    prequeued: 200,
    joiners: 5_000,
    join_within: Duration::from_secs(2),
    opens_after: Duration::from_secs(5),
    buyer_for: Duration::from_secs(180),
};

const SALE_SMOKE: SaleScale = SaleScale {
    rows: 2,
    prequeued: 10,
    joiners: 40,
    join_within: Duration::from_secs(1),
    opens_after: Duration::from_secs(2),
    buyer_for: Duration::from_secs(60),
};

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
    buyers: 24,
    flight: Flight::Inserted(2),
    limits: Limits {
        buyer_for: Duration::from_secs(10),
        sell_out_within: Duration::from_secs(12),
        settle_within: Duration::from_secs(3),
    },
    warmup: Duration::from_millis(500),
    measure: Duration::from_secs(2),
};

/// `serve` instances and workers.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ShapeOf {
    serves: usize,
    workers: usize,
}

/// The shapes a run without flags compares.
const SHAPES: [ShapeOf; 2] = [
    ShapeOf {
        serves: 1,
        workers: 1,
    },
    ShapeOf {
        serves: 2,
        workers: 3,
    },
];

/// What one shape measured.
struct Measured {
    shape: ShapeOf,
    clients: usize,
    share: Share,
    report: BurstReport,
}

/// `--serve N` and `--workers M` (or `--serve=N`); either alone leaves the
/// other at 1; neither runs every shape of `SHAPES` (the last one only at
/// the smoke size).
fn shapes(args: &[String], full: bool) -> Vec<ShapeOf> {
    let value = |flag: &str| {
        let mut found = None;
        for (i, arg) in args.iter().enumerate() {
            let v = match arg.strip_prefix(flag) {
                Some("") => args.get(i + 1).map(String::as_str),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            };
            if let Some(v) = v {
                let n: usize = v
                    .parse()
                    .unwrap_or_else(|_| panic!("{flag} takes a number, not {v:?}"));
                assert!(n >= 1, "{flag} is at least 1");
                found = Some(n);
            }
        }
        found
    };
    match (value("--serve"), value("--workers")) {
        (None, None) if full => SHAPES.to_vec(),
        (None, None) => SHAPES[SHAPES.len() - 1..].to_vec(),
        (serves, workers) => vec![ShapeOf {
            serves: serves.unwrap_or(1),
            workers: workers.unwrap_or(1),
        }],
    }
}

fn summary(m: &Measured) -> String {
    let report = &m.report;
    let sold = report
        .sold_out_after
        .map_or_else(|| "not sold out".into(), |d| format!("sold out in {d:.2?}"));
    format!(
        "summary {}+{}: {} buyers / {} seats: {sold}, 201 {} / 409 {} / 503 {} / other {}, \
         checkout 503 {}, violations {}, ghosts {}, double sales {}; \
         bookings {:.1}/s, no-op ceiling {:.1}/s, engine share {:.1} %",
        m.shape.serves,
        m.shape.workers,
        report.buyers,
        report.seats,
        report.created,
        report.conflicts,
        report.busy,
        report.other,
        report.checkout_busy,
        report.violations,
        report.ghosts(),
        report.double_sales,
        m.share.booking,
        m.share.noop,
        m.share.ratio() * 100.0,
    )
}

async fn measure(scale: &Scale, shape_of: ShapeOf) -> Measured {
    let ShapeOf { serves, workers } = shape_of;
    println!("\n== {serves} serve + {workers} worker(s), behind HAProxy ==");
    let mut settings = isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let shape = Shape::start(settings, serves, workers).await;
    // Each instance admits CLIENTS creates at once: as many clients per
    // instance, so the bookings measure the engine, not a storm of 503s.
    let clients = engine::CLIENTS * serves;
    // The engine share goes first, on a quiet server: a burst can leave
    // Temporal working through creates the API already gave up on.
    let window = engine::Window {
        warmup: scale.warmup,
        measure: scale.measure,
    };
    let share = engine::engine_share_with(&shape.app, window, clients, workers).await;
    // Confirmed bookings (pay naming the passengers) against the no-op,
    // with the history each costs.
    engine::sale_share(&shape.app, window, engine::SALE_CLIENTS * serves, workers).await;
    let flight = match scale.flight {
        Flight::Seeded(id) => id.to_string(),
        Flight::Inserted(rows) => burst::insert_flight(&shape.app.pool, rows).await,
    };
    let report = burst::burst_with(&shape.app, &flight, scale.buyers, scale.limits).await;
    report.print();
    // Whether the balancer took busy instances for broken ones: each
    // out-of-rotation spell, and spells with none left (HAProxy's 503s).
    println!(
        "  balancer: instances out of rotation    {} times, none ready {} times",
        shape.instances_counter("chkdown").await,
        shape.backend_counter("chkdown").await,
    );
    let measured = Measured {
        shape: shape_of,
        clients,
        share,
        report,
    };
    println!("{}", summary(&measured));
    measured
}

/// The figures side by side, as README's table has them.
fn table(all: &[Measured]) {
    let base = all.first().map(|m| (m.share.booking, m.share.noop));
    println!(
        "\n| shape (serve + workers) | clients | bookings/s (hold + cancel) | no-op ceiling/s, same workers | bookings ÷ ceiling | bookings, × first shape | ceiling, × first shape | burst: seats sold in |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for m in all {
        let (b0, n0) = base.unwrap_or((1.0, 1.0));
        let sold = m.report.sold_out_after.map_or_else(
            || "not sold out".to_string(),
            |d| format!("{} in {d:.2?}", m.report.seats),
        );
        println!(
            "| {} + {} | {} | {:.1} | {:.1} | {:.2} | {:.2}× | {:.2}× | {sold} |",
            m.shape.serves,
            m.shape.workers,
            m.clients,
            m.share.booking,
            m.share.noop,
            m.share.ratio(),
            m.share.booking / b0.max(f64::MIN_POSITIVE),
            m.share.noop / n0.max(f64::MIN_POSITIVE),
        );
    }
}

async fn run(scale: Scale, shapes: Vec<ShapeOf>) {
    let mut all = Vec::new();
    for shape in shapes {
        all.push(measure(&scale, shape).await);
    }
    table(&all);
}

/// What one shape measured in the waiting-room sale.
struct Sale {
    shape: ShapeOf,
    report: SaleReport,
    /// The no-op workflow's cycles/s on the same server, before the sale.
    noop: f64,
}

impl Sale {
    /// Confirmed bookings per second from the opening to the sell-out (or
    /// to the buyers' patience).
    fn completions(&self, scale: &SaleScale) -> f64 {
        let over = self.report.sold_out_after.unwrap_or(scale.buyer_for);
        self.report.confirmed() as f64 / over.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

async fn waiting_room_sale(scale: &Scale, sale: &SaleScale, shape_of: ShapeOf) -> Sale {
    let ShapeOf { serves, workers } = shape_of;
    println!("\n== waiting room: {serves} serve + {workers} worker(s), behind HAProxy ==");
    let mut settings = isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let shape = Shape::start(settings, serves, workers).await;
    let window = engine::Window {
        warmup: scale.warmup,
        measure: scale.measure,
    };
    let clients = engine::CLIENTS * serves;
    let noop = engine::noop_rate_with(&shape.app, window, clients, workers).await;
    engine::print_rate("no-op workflow, same server", &noop);
    let seed = waiting::seed();
    println!("  seed {seed} (FLIGHTCTL_SEED={seed} repeats the buyers' choices)");
    let report = waiting::scheduled_sale(&shape.app, *sale, seed).await;
    report.print();
    let measured = Sale {
        shape: shape_of,
        report,
        noop: noop.per_second,
    };
    println!(
        "  engine share: {:.1} confirmed bookings/s ÷ {:.1} no-op cycles/s = {:.2}",
        measured.completions(sale),
        measured.noop,
        measured.completions(sale) / measured.noop.max(f64::MIN_POSITIVE),
    );
    measured
}

fn sale_table(all: &[Sale], scale: &SaleScale) {
    println!(
        "\n| shape (serve + workers) | join p50 / p99 | sold out after the opening | 503 / 504 | tau, join vs queue (vs admission) | first estimate, median error | confirmed/s ÷ no-op/s |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{v:.3}"));
    for m in all {
        let r = &m.report;
        let (busy, timeouts) = r.busy();
        let sold = r
            .sold_out_after
            .map_or_else(|| "not sold out".into(), |d| format!("{d:.2?}"));
        println!(
            "| {} + {} | {:.0?} / {:.0?} | {sold} | {busy} / {timeouts} | {} ({}) | {} | {:.1} ÷ {:.1} = {:.2} |",
            m.shape.serves,
            m.shape.workers,
            r.join_latency(0.50),
            r.join_latency(0.99),
            fmt(r.tau_queue()),
            fmt(r.tau_admission()),
            r.estimate_error()
                .map_or_else(|| "n/a".into(), |e| format!("{:.0} %", e * 100.0)),
            m.completions(scale),
            m.noop,
            m.completions(scale) / m.noop.max(f64::MIN_POSITIVE),
        );
    }
}

async fn run_waiting_room(scale: Scale, sale: SaleScale, shapes: Vec<ShapeOf>) {
    let mut all = Vec::new();
    for shape in shapes {
        all.push(waiting_room_sale(&scale, &sale, shape).await);
    }
    sale_table(&all, &sale);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    let shapes = shapes(&args, full);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let scale = if full { FULL } else { SMOKE };
    if args.iter().any(|a| a == "--waiting-room") {
        let sale = if full { SALE_FULL } else { SALE_SMOKE };
        runtime.block_on(run_waiting_room(scale, sale, shapes));
    } else {
        runtime.block_on(run(scale, shapes));
    }
}
