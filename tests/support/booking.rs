//! What the booking suites (`tests/booking*.rs`) share: settings with short
//! timeouts and no random payment failures, and the order calls and reads
//! they make. Included by each with `#[path]`; not every suite uses every
//! helper, hence the allowance.
#![allow(dead_code)]

use std::time::Duration;

use crate::support::{self, TestApp};
use flightctl::config::Settings;
use flightctl::domain::{OrderId, SeatId};
use flightctl::store::orders;
use serde_json::{Value, json};
use temporalio_client::WorkflowFetchHistoryOptions;
use uuid::Uuid;

pub const LONG: Duration = Duration::from_secs(60);

/// Settings for a booking test: `hold`, 1 s payment timeout, no random failures.
pub async fn settings(hold: Duration) -> Settings {
    let mut s = support::isolated_settings(true).await;
    s.booking.seat_reservation_timeout = hold;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_max_attempts = 3;
    s.booking.payment_failure_rate = 0.0;
    s
}

pub async fn app(hold: Duration) -> TestApp {
    TestApp::with_worker(settings(hold).await).await
}

pub async fn create(app: &TestApp, flight: &str, seats: &[&str]) -> (u16, Value) {
    app.post("/api/orders", json!({"flightId": flight, "seats": seats}))
        .await
}

pub async fn create_ok(app: &TestApp, flight: &str, seats: &[&str]) -> String {
    let (code, body) = create(app, flight, seats).await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().to_string()
}

pub async fn status(app: &TestApp, order: &str) -> Value {
    let (code, body) = app.get(&format!("/api/orders/{order}/status")).await;
    assert_eq!(code, 200, "{body}");
    body
}

pub async fn wait_for(app: &TestApp, order: &str, wanted: &str, within: Duration) -> Value {
    support::eventually(&format!("order {order} to be {wanted}"), within, || async {
        let s = status(app, order).await;
        (s["status"] == wanted).then_some(s)
    })
    .await
}

pub async fn pay(app: &TestApp, order: &str, code: &str) -> (u16, Value) {
    app.name_passengers(order).await;
    app.post(
        &format!("/api/orders/{order}/pay"),
        json!({"paymentCode": code}),
    )
    .await
}

/// Pay with an `Idempotency-Key`, as the web UI does.
pub async fn pay_keyed(app: &TestApp, order: &str, code: &str, key: &str) -> (u16, Value) {
    app.name_passengers(order).await;
    let resp = app
        .http
        .post(app.url(&format!("/api/orders/{order}/pay")))
        .header("Idempotency-Key", key)
        .json(&json!({"paymentCode": code}))
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or_default())
}

pub async fn held_by(app: &TestApp, flight: &str) -> std::collections::HashMap<SeatId, OrderId> {
    app.holds.list(flight.parse().unwrap()).await.unwrap()
}

pub async fn row(app: &TestApp, order: &str) -> orders::Order {
    orders::find(&app.pool, order.parse().unwrap())
        .await
        .unwrap()
}

pub async fn temporal(app: &TestApp) -> temporalio_client::Client {
    flightctl::temporal::connect(&app.settings.temporal, "test", Duration::from_secs(10))
        .await
        .unwrap()
}

pub async fn history(app: &TestApp, order: &str) -> Vec<String> {
    let client = temporal(app).await;
    let handle =
        client.get_workflow_handle::<flightctl::booking::Booking>(format!("booking-{order}"));
    let events = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .unwrap();
    events
        .iter()
        .map(|e| format!("{:?}", e.event_type()))
        .collect()
}

pub async fn payment_attempts(app: &TestApp, order: &str) -> Vec<(i32, String, Option<String>)> {
    let conn = app.pool.get().await.unwrap();
    conn.query(
        "SELECT attempt, outcome, error FROM payment_attempts WHERE order_id = $1 ORDER BY attempt",
        &[&Uuid::parse_str(order).unwrap()],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}
