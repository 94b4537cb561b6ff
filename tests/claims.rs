//! Seats claimed in Postgres before a payment is charged: whatever Redis
//! forgets, no other order can hold or pay for a seat an order is paying
//! for, and the paying order is sold it. Real Postgres, Redis, Temporal dev
//! server and `flightctl worker` processes; the API in-process (helpers in
//! `tests/support/booking.rs`).

#[path = "support/booking.rs"]
mod booking;
mod support;

use std::time::Duration;

use flightctl::domain::{FlightId, OrderId};
use serde_json::Value;
use support::{FL201, TestApp};

use booking::*;

/// A worker whose provider declines every code but the test codes: an
/// order paying with `12345` stays in its payment, attempt after attempt,
/// while a rival paying with `00000` (always approved) goes through.
fn declining() -> [(&'static str, String); 1] {
    [("PAYMENT_FAILURE_RATE", "1".into())]
}

fn order_id(order: &str) -> OrderId {
    order.parse().unwrap()
}

/// The reproduction: the worker running a payment is killed, the
/// order's holds are lost from Redis (a failover), and a rival creates and
/// pays for the same seat while the first payment is still going. Before
/// seats were claimed in Postgres the rival was sold the seat and the first
/// order ended FAILED with its payment approved; now the rival is refused
/// and the first order is sold its seat, charged once.
#[tokio::test]
async fn a_rival_cannot_buy_a_seat_whose_payment_lost_its_worker_and_its_holds() {
    let mut s = settings(Duration::from_secs(120)).await;
    s.booking.payment_validation_timeout = Duration::from_secs(2);
    // Room for the attempts the declining workers use up meanwhile.
    s.booking.payment_max_attempts = 10;
    let mut app = TestApp::spawn(s).await;
    app.start_worker_with(&declining()).await;
    let flight: FlightId = FL201.parse().unwrap();

    let first = create_ok(&app, FL201, &["5A"]).await;
    assert_eq!(pay(&app, &first, "12345").await.0, 202);
    support::eventually("the first attempt to be declined", LONG, || async {
        let s = status(&app, &first).await;
        (s["paymentAttempts"].as_i64() >= Some(1)).then_some(())
    })
    .await;
    app.worker().kill();
    let lost = app
        .holds
        .release(flight, order_id(&first), &support::seat_ids(&["5A"]))
        .await
        .unwrap();
    assert_eq!(lost, 1, "the paying order's hold was in Redis until now");

    app.start_worker_with(&declining()).await;
    let rival = rival_buys(&app, "5A").await;
    app.worker().kill();
    app.start_worker().await;
    let first_end = wait_until_ended(&app, &first).await;

    let approved = payment_attempts(&app, &first)
        .await
        .iter()
        .filter(|a| a.1 == "SUCCEEDED")
        .count();
    let outcome = format!(
        "rival: {}; first order: {} ({}), {approved} approved attempt(s)",
        rival.describe(),
        first_end["status"],
        first_end["lastError"]
    );
    assert!(rival.refused(), "{outcome}");
    assert_eq!(first_end["status"], "CONFIRMED", "{outcome}");
    assert_eq!(approved, 1, "charged once: {outcome}");
    assert_eq!(app.seat_statuses(FL201).await["5A"], "booked");
}

/// What a rival got when it tried to buy a seat.
enum Rival {
    /// Its create was refused.
    CreateRefused(u16, Value),
    /// Its payment was refused, with this many attempts made.
    PayRefused(u16, Value, usize),
    /// It paid; its order ended so.
    Paid(Value),
}

impl Rival {
    /// Refused with 409 `SEATS_UNAVAILABLE`, without a payment attempt.
    fn refused(&self) -> bool {
        match self {
            Rival::CreateRefused(code, body) => {
                *code == 409 && body["error"] == "SEATS_UNAVAILABLE"
            }
            Rival::PayRefused(code, body, attempts) => {
                *code == 409 && body["error"] == "SEATS_UNAVAILABLE" && *attempts == 0
            }
            Rival::Paid(_) => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Rival::CreateRefused(code, body) => format!("create refused {code} {body}"),
            Rival::PayRefused(code, body, attempts) => {
                format!("pay refused {code} {body} after {attempts} attempt(s)")
            }
            Rival::Paid(end) => format!("paid, ended {} ({})", end["status"], end["lastError"]),
        }
    }
}

/// A rival creates an order for `seat` and pays for it with `00000`.
async fn rival_buys(app: &TestApp, seat: &str) -> Rival {
    let (code, body) = create(app, FL201, &[seat]).await;
    if code != 201 {
        return Rival::CreateRefused(code, body);
    }
    let order = body["orderId"].as_str().unwrap().to_string();
    let (code, body) = pay(app, &order, "00000").await;
    if code != 202 {
        let attempts = payment_attempts(app, &order).await.len();
        return Rival::PayRefused(code, body, attempts);
    }
    Rival::Paid(wait_until_ended(app, &order).await)
}

/// The order's status once it has ended.
async fn wait_until_ended(app: &TestApp, order: &str) -> Value {
    support::eventually(&format!("order {order} to end"), LONG * 2, || async {
        let s = status(app, order).await;
        let live = ["SEATS_RESERVED", "PAYMENT_PROCESSING"];
        (!live.contains(&s["status"].as_str().unwrap_or_default())).then_some(s)
    })
    .await
}
