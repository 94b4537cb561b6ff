//! A flash sale against the real stack: many more buyers than seats, all at
//! once, through the HTTP API. Every seat is sold exactly once, every answer
//! is one a client can act on, and nothing is left held.

mod support;

use std::time::Duration;

use support::TestApp;
use support::burst::{self, Limits};

const BUYERS: usize = 120;
const ROWS: i32 = 5;

async fn app() -> TestApp {
    let mut s = support::isolated_settings(true).await;
    // The default 15 min hold stays: a ghost must still be holding its
    // seats when the audit looks, not quietly expire first.
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_max_attempts = 3;
    s.booking.payment_failure_rate = 0.0;
    TestApp::with_worker(s).await
}

/// Keeps the whole test well under a minute even when the API stalls.
const LIMITS: Limits = Limits {
    buyer_for: Duration::from_secs(35),
    sell_out_within: Duration::from_secs(40),
    settle_within: Duration::from_secs(10),
};

async fn available_seats(app: &TestApp, flight: &str) -> (i32, i64) {
    let flight = uuid::Uuid::parse_str(flight).unwrap();
    let row = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT f.available_seats,
                    (SELECT count(*) FROM seats s
                     WHERE s.flight_id = f.id AND s.status = 'available')
             FROM flights f WHERE f.id = $1",
            &[&flight],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_buyers_sells_every_seat_once_and_leaves_no_ghost() {
    let app = app().await;
    let flight = burst::insert_flight(&app.pool, ROWS).await;

    let report = burst::burst_with(&app, &flight, BUYERS, LIMITS).await;
    report.print();

    assert_eq!(
        report.violations, 0,
        "every create answer is 201, 409 or 503 with Retry-After: {:?}",
        report.violation_examples
    );
    assert!(report.created > 0, "someone bought a seat");
    assert_eq!(report.ghosts(), 0, "no order or hold outlives the sale");
    assert_eq!(report.double_sales, 0, "every booked seat has one owner");
    assert_eq!(report.multi_listed, 0, "no seat is in two confirmed orders");
    assert!(
        report.sold_out_after.is_some(),
        "every one of the {} seats is sold",
        report.seats
    );
    let (column, counted) = available_seats(&app, &flight).await;
    assert_eq!(
        i64::from(column),
        counted,
        "flights.available_seats matches the seats on sale"
    );
}

/// A scheduled sale through the waiting room at a smoke size (the bench's
/// `--waiting-room` at full size): buyers pre-queue, more join after the
/// opening, each follows its ticket and buys with its admission. Every seat
/// is sold once, no admitted buyer is answered 503 or 504, everyone who
/// did not buy is told `SOLD_OUT`, and later joiners are queued in the
/// order they joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_sale_through_the_waiting_room_sells_every_seat_once_in_join_order() {
    use support::waiting::{self, SaleScale};
    let app = app().await;
    let scale = SaleScale {
        rows: 2,
        prequeued: 10,
        joiners: 30,
        join_within: Duration::from_secs(2),
        opens_after: Duration::from_secs(2),
        buyer_for: Duration::from_secs(60),
    };
    let seed = waiting::seed();
    println!("seed {seed} (FLIGHTCTL_SEED={seed} repeats the buyers' choices)");
    let report = waiting::scheduled_sale(&app, scale, seed).await;
    report.print();

    assert_eq!(
        report.seats_booked as usize, report.seats,
        "every seat sold"
    );
    assert_eq!(report.double_sales, 0);
    assert_eq!(report.confirmed(), report.seats, "one seat a buyer");
    assert!(report.sold_out_after.is_some());
    assert_eq!(
        report.busy(),
        (0, 0),
        "no 503 or 504 to a join or an admitted buyer"
    );
    let errors: Vec<&String> = report.buyers.iter().flat_map(|b| &b.other_errors).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let unserved: Vec<usize> = (report.buyers.iter())
        // An admitted buyer may find every seat gone: admission runs a little
        // ahead of the seats still for sale.
        .filter(|b| !b.confirmed && !b.sold_out_told && b.admitted_at.is_none())
        .map(|b| b.n)
        .collect();
    assert!(
        unserved.is_empty(),
        "buyers neither served nor told SOLD_OUT: {unserved:?}"
    );
    let tau = report.tau_queue().expect("later joiners were given places");
    assert!(
        tau >= 0.9,
        "later joiners queued out of join order: tau {tau:.3}"
    );
}
