//! Seats claimed in Postgres before a payment is charged: whatever Redis
//! forgets, no other order can hold or pay for a seat an order is paying
//! for, and the paying order is sold it. Real Postgres, Redis, Temporal dev
//! server and `flightctl worker` processes; the API in-process (helpers in
//! `tests/support/booking.rs`).

#[path = "support/booking.rs"]
mod booking;
mod support;

use std::time::Duration;

use deadpool_postgres::Pool;
use flightctl::domain::{FlightId, OrderId, OrderStatus};
use flightctl::store::orders::{self, Confirm, Order};
use flightctl::store::{flights, reconcile};
use serde_json::{Value, json};
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

/// Whatever Redis forgets, a seat an order is paying for is refused to a
/// rival's create, change and payment (409 `SEATS_UNAVAILABLE`, no payment
/// attempt) and shows `reserved`, counted out of the availability; once
/// the payment fails it is on sale again.
#[tokio::test]
async fn a_claimed_seat_is_refused_to_every_rival_and_reserved_without_redis() {
    let mut s = settings(Duration::from_secs(120)).await;
    // 88888 times out on every attempt: paying for about 17 s.
    s.booking.payment_validation_timeout = Duration::from_secs(5);
    let app = TestApp::with_worker(s).await;
    let payer = create_ok(&app, FL201, &["5A"]).await;
    forget_holds(&app, &payer).await;
    // Redis lost the payer's hold before it paid: a rival holds 5A too.
    let rival = create_ok(&app, FL201, &["5A"]).await;
    app.name_passengers(&rival).await;
    forget_holds(&app, &rival).await;
    assert_eq!(pay(&app, &payer, "88888").await.0, 202);
    forget_holds(&app, &payer).await;
    assert!(held_by(&app, FL201).await.is_empty(), "Redis holds nothing");

    assert_eq!(app.seat_statuses(FL201).await["5A"], "reserved");
    assert_eq!(available_seats(&app).await, 89);
    let paid = json!({"paymentCode": "00000"});
    let (code, body) = app.post(&format!("/api/orders/{rival}/pay"), paid).await;
    assert_eq!(
        (code, &body["error"]),
        (409, &json!("SEATS_UNAVAILABLE")),
        "{body}"
    );
    assert!(payment_attempts(&app, &rival).await.is_empty());
    assert_eq!(status(&app, &rival).await["status"], "SEATS_RESERVED");
    let change = json!({"seats": ["5A", "5B"]});
    let (code, body) = app.put(&format!("/api/orders/{rival}/seats"), change).await;
    assert_eq!(
        (code, &body["error"]),
        (409, &json!("SEATS_UNAVAILABLE")),
        "{body}"
    );
    let (code, body) = create(&app, FL201, &["5A"]).await;
    assert_eq!(
        (code, &body["error"]),
        (409, &json!("SEATS_UNAVAILABLE")),
        "{body}"
    );
    assert_eq!(app.seat_statuses(FL201).await["5A"], "reserved");

    wait_for(&app, &payer, "FAILED", LONG).await;
    assert_eq!(app.seat_statuses(FL201).await["5A"], "available");
    assert_eq!(available_seats(&app).await, 90);
}

/// Redis loses every hold of `order` (a failover, a restart without
/// persistence).
async fn forget_holds(app: &TestApp, order: &str) {
    let flight: FlightId = FL201.parse().unwrap();
    let order = order_id(order);
    let mine: Vec<_> = app
        .holds
        .list(flight)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, o)| *o == order)
        .map(|(seat, _)| seat)
        .collect();
    app.holds.release(flight, order, &mine).await.unwrap();
}

/// FL201's `availableSeats` in the flight list.
async fn available_seats(app: &TestApp) -> i64 {
    let (code, body) = app.get("/api/flights").await;
    assert_eq!(code, 200, "{body}");
    let flights = body["flights"].as_array().unwrap();
    let fl201 = flights.iter().find(|f| f["id"] == FL201).unwrap();
    fl201["availableSeats"].as_i64().unwrap()
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

// The store: claims taken with the save of a payment, released with any
// other ending, turned into the sale.

/// The order row `status` of `id` holding `seats` of FL201.
fn row_of(id: OrderId, status: OrderStatus, seats: &[&str]) -> Order {
    Order {
        status,
        ..support::order_row(id, FL201.parse().unwrap(), seats)
    }
}

/// The claimed seats of FL201 and who claims them, by seat.
async fn claimed(pool: &Pool) -> Vec<(String, OrderId)> {
    let conn = pool.get().await.unwrap();
    let rows = conn
        .query(
            "SELECT id, claimed_by FROM seats WHERE flight_id = $1 AND claimed_by IS NOT NULL
             ORDER BY id",
            &[&FL201.parse::<FlightId>().unwrap()],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

async fn store() -> Pool {
    support::prepare_database(&support::isolated_settings(false).await).await
}

#[tokio::test]
async fn a_payment_claims_every_seat_of_its_order_or_none() {
    let pool = store().await;
    let (first, second) = (OrderId::random(), OrderId::random());
    let paying = row_of(first, OrderStatus::PaymentProcessing, &["2A", "2B"]);
    let saved = orders::save(&pool, &paying, None).await.unwrap();
    assert!(saved.committed && saved.unavailable.is_empty(), "{saved:?}");
    let both = vec![("2A".to_string(), first), ("2B".to_string(), first)];
    assert_eq!(claimed(&pool).await, both);

    // A selection claims nothing; its payment is refused whole: not 2C
    // either, and no row.
    let holding = row_of(second, OrderStatus::SeatsReserved, &["2B", "2C"]);
    assert!(orders::save(&pool, &holding, None).await.unwrap().committed);
    let rival = Order {
        saved_at_event: 9,
        ..row_of(second, OrderStatus::PaymentProcessing, &["2B", "2C"])
    };
    let refused = orders::save(&pool, &rival, None).await.unwrap();
    assert!(!refused.committed, "{refused:?}");
    assert_eq!(refused.unavailable, support::seat_ids(&["2B"]));
    assert_eq!(claimed(&pool).await, both);
    let row = orders::find(&pool, second).await.unwrap();
    assert_eq!(row.status, OrderStatus::SeatsReserved);

    // A retried save of the payment is its own claim again.
    assert!(orders::save(&pool, &paying, None).await.unwrap().committed);
    assert_eq!(claimed(&pool).await, both);

    // Creates and changes see the claim, the paying order does not.
    let flight = FL201.parse().unwrap();
    let wanted = support::seat_ids(&["2B", "2C"]);
    let check = flights::check_seats(&pool, flight, second, &wanted).await;
    assert_eq!(check.unwrap().taken, support::seat_ids(&["2B"]));
    let check = flights::check_seats(&pool, flight, first, &wanted).await;
    assert!(check.unwrap().taken.is_empty());
}

#[tokio::test]
async fn every_ending_but_the_sale_releases_the_claims_with_its_save() {
    let pool = store().await;
    for ending in [
        OrderStatus::Failed,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
    ] {
        let id = OrderId::random();
        let paying = Order {
            saved_at_event: 5,
            ..row_of(id, OrderStatus::PaymentProcessing, &["3A"])
        };
        orders::save(&pool, &paying, None).await.unwrap();
        // An older save of the ending changes nothing, its release neither.
        let stale = Order {
            status: ending,
            saved_at_event: 1,
            ..paying.clone()
        };
        orders::save(&pool, &stale, None).await.unwrap();
        assert_eq!(claimed(&pool).await, [("3A".to_string(), id)], "{ending}");
        let ended = Order {
            status: ending,
            saved_at_event: 9,
            ..paying
        };
        let saved = orders::save(&pool, &ended, None).await.unwrap();
        assert_eq!(saved.ended, Some(ending));
        assert_eq!(claimed(&pool).await, Vec::new(), "{ending} released 3A");
    }

    // The sweep's ending of an order whose workflow is gone releases too.
    let orphan = OrderId::random();
    let paying = row_of(orphan, OrderStatus::PaymentProcessing, &["3B"]);
    orders::save(&pool, &paying, None).await.unwrap();
    assert!(reconcile::end_orphan(&pool, orphan, "gone").await.unwrap());
    assert_eq!(claimed(&pool).await, Vec::new());
    // And a row deleted (a creation that never was) takes its claims along.
    let forgotten = OrderId::random();
    let paying = row_of(forgotten, OrderStatus::PaymentProcessing, &["3C"]);
    orders::save(&pool, &paying, None).await.unwrap();
    assert!(orders::forget_unsold(&pool, forgotten).await.unwrap());
    assert_eq!(claimed(&pool).await, Vec::new());
}

#[tokio::test]
async fn the_sale_turns_the_claim_into_the_booking_and_no_one_else_sells_it() {
    let pool = store().await;
    let flight: FlightId = FL201.parse().unwrap();
    let (paying, holding) = (OrderId::random(), OrderId::random());
    let seats = support::seat_ids(&["4A"]);
    let row = row_of(paying, OrderStatus::PaymentProcessing, &["4A"]);
    orders::save(&pool, &row, None).await.unwrap();
    // An order whose Redis hold outlived the claim's: confirm refuses it.
    let other = row_of(holding, OrderStatus::SeatsReserved, &["4A"]);
    orders::save(&pool, &other, None).await.unwrap();
    let refused = orders::confirm(&pool, holding, flight, &seats).await;
    assert_eq!(refused.unwrap(), Confirm::SeatsTaken(seats.clone()));

    let sold = orders::confirm(&pool, paying, flight, &seats).await;
    assert_eq!(sold.unwrap(), Confirm::Sold);
    assert_eq!(
        claimed(&pool).await,
        Vec::new(),
        "the claim became the sale"
    );
    let conn = pool.get().await.unwrap();
    let seat = conn
        .query_one(
            "SELECT status, order_id FROM seats WHERE flight_id = $1 AND id = '4A'",
            &[&flight],
        )
        .await
        .unwrap();
    assert_eq!(seat.get::<_, &str>(0), "booked");
    assert_eq!(seat.get::<_, OrderId>(1), paying);
    // A claimed seat stays unsold for the availability the sweep corrects:
    // nothing drifts while one is claimed, one seat fewer once sold.
    let later = row_of(OrderId::random(), OrderStatus::PaymentProcessing, &["4B"]);
    orders::save(&pool, &later, None).await.unwrap();
    assert!(
        reconcile::correct_availability(&pool)
            .await
            .unwrap()
            .is_empty()
    );
    let stored = flights::find(&pool, flight).await.unwrap();
    assert_eq!(stored.available_seats, 89, "the unsold seats");
}
