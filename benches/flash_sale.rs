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

use std::time::Duration;

use support::burst::{self, BurstReport, Limits};
use support::{FL101, TestApp, engine};

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

fn summary(report: &BurstReport, share: f64) -> String {
    let sold = report
        .sold_out_after
        .map_or_else(|| "not sold out".into(), |d| format!("sold out in {d:.2?}"));
    format!(
        "summary: {} buyers / {} seats: {sold}, 201 {} / 409 {} / 503 {} / other {}, \
         checkout 503 {}, violations {}, ghosts {}, double sales {}; engine share {:.1} %",
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
        share * 100.0,
    )
}

async fn run(scale: Scale) {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let app = TestApp::with_worker(settings).await;
    // The engine share goes first, on a quiet server: a burst can leave
    // Temporal working through creates the API already gave up on.
    let window = engine::Window {
        warmup: scale.warmup,
        measure: scale.measure,
    };
    let share = engine::engine_share(&app, window).await;
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
