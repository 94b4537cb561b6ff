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

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::burst::{self, BurstReport, Limits};
use support::engine::{self, Share};
use support::shape::Shape;
use support::{FL101, isolated_settings};

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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    let shapes = shapes(&args, full);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(if full { FULL } else { SMOKE }, shapes));
}
