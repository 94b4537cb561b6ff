//! Refunds that end: a dependency outage is waited out, never counted as a
//! provider decline, against the real stack.

mod support;

use std::time::Duration;

use flightctl::booking::refund::RefundInput;
use flightctl::booking::service::Engine;
use flightctl::domain::OrderId;
use serde_json::{Value, json};
use support::servers::Postgres;
use support::{FL101, TestApp};

const LONG: Duration = Duration::from_secs(120);

async fn status(app: &TestApp, order: &str) -> Value {
    let (code, body) = app.get(&format!("/api/orders/{order}/status")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_status(app: &TestApp, order: &str, wanted: &str, within: Duration) -> Value {
    support::eventually(&format!("order {order} {wanted}"), within, || async {
        let s = status(app, order).await;
        (s["status"] == wanted).then_some(s)
    })
    .await
}

/// Book `seat` on FL101 for a passenger named Lovelace: the order id.
async fn book(app: &TestApp, seat: &str) -> String {
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": [seat]}))
        .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    let passengers = json!({"passengers": [
        {"seat": seat, "givenName": "Ada", "familyName": "Lovelace"}
    ]});
    let (code, body) = app
        .put(&format!("/api/orders/{order}/passengers"), passengers)
        .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    wait_status(app, &order, "CONFIRMED", LONG).await;
    order
}

/// A refund in flight outlives a 60 s Postgres stall (every Postgres
/// process SIGSTOPped): the provider never declines (rate 0), so only the
/// outage is in its way, and it ends REFUNDED once Postgres is back.
#[tokio::test]
async fn a_refund_in_flight_survives_a_minute_long_postgres_outage() {
    let pg = Postgres::start_durable();
    let db = "refund_outage";
    pg.create_database(db).await;
    let mut s = support::isolated_settings(true).await;
    s.database.url = flightctl::config::Secret::new(pg.url(db));
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.refund_failure_rate = 0.0;
    let app = TestApp::with_worker(s).await;
    let order = book(&app, "11C").await;
    let id: OrderId = order.parse().unwrap();

    // The cancellation recorded as the API records it; its workflow started
    // once Postgres has stopped, so the refund is in flight during the
    // outage whatever the timing.
    let cutoff = Duration::from_secs(3600);
    let asked = flightctl::store::refunds::request(&app.pool, id, cutoff, None)
        .await
        .unwrap();
    assert_eq!(asked, flightctl::store::refunds::Request::Accepted);
    let frozen = support::procs::freeze_tree(pg.pid().expect("postgres runs"));
    let engine = Engine::new(app.settings.temporal.clone(), Duration::from_secs(5));
    let input = RefundInput {
        order_id: id,
        max_attempts: app.settings.booking.refund_max_attempts,
    };
    engine.start_refund(input).await.expect("the refund starts");
    tokio::time::sleep(Duration::from_secs(60)).await;
    frozen.thaw();

    let refunded = wait_status(&app, &order, "REFUNDED", LONG).await;
    assert_eq!(refunded["status"], "REFUNDED");
    let conn = app.pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT status, (SELECT count(*) FROM provider_refunds WHERE order_id = $1) AS paid
             FROM refunds WHERE order_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>("status"), "REFUNDED");
    assert_eq!(row.get::<_, i64>("paid"), 1, "paid out once");
}
