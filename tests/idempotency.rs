//! Flash-sale rules on real servers: idempotent creates and payments, fast
//! refusals that start no workflow, admission control, and creation
//! deadlines (a non-2xx create leaves nothing held).

mod support;

use std::time::{Duration, Instant};

use flightctl::booking::Booking;
use flightctl::booking::messages::{BookingInput, Deadline, Refusal, SelectSeats};
use flightctl::config::Settings;
use flightctl::domain::{FlightId, OrderId, SeatId, SeatSelection};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use support::{FL101, FL102, FL201, TestApp};
use temporalio_client::{
    WorkflowCountOptions, WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions,
};
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);

async fn settings() -> Settings {
    let mut s = support::isolated_settings(true).await;
    s.booking.seat_reservation_timeout = Duration::from_secs(60);
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_failure_rate = 0.0;
    s
}

/// A request with an optional `Idempotency-Key`; status, headers, body.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> (u16, HeaderMap, Value) {
    let mut req = app.http.request(method, app.url(path)).json(&body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.expect("request");
    let (code, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().await.unwrap_or_default();
    (
        code,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn create(app: &TestApp, key: Option<&str>, flight: &str, seats: &[&str]) -> (u16, Value) {
    let body = json!({"flightId": flight, "seats": seats});
    let (code, _, body) = call(app, reqwest::Method::POST, "/api/orders", key, body).await;
    (code, body)
}

async fn pay(app: &TestApp, key: Option<&str>, order: &str) -> (u16, Value) {
    app.name_passengers(order).await;
    let path = format!("/api/orders/{order}/pay");
    let body = json!({"paymentCode": "00000"});
    let (code, _, body) = call(app, reqwest::Method::POST, &path, key, body).await;
    (code, body)
}

async fn status(app: &TestApp, order: &str) -> Value {
    app.get(&format!("/api/orders/{order}/status")).await.1
}

async fn workflows(app: &TestApp) -> usize {
    let client =
        flightctl::temporal::connect(&app.settings.temporal, "test", Duration::from_secs(10))
            .await
            .unwrap();
    let query = format!("TaskQueue = '{}'", app.settings.temporal.task_queue);
    client
        .count_workflows(query, WorkflowCountOptions::default())
        .await
        .unwrap()
        .count()
}

async fn holders(app: &TestApp, flight: &str) -> std::collections::HashMap<SeatId, OrderId> {
    app.holds.list(flight.parse().unwrap()).await.unwrap()
}

async fn one(app: &TestApp, sql: &str, order: &str) -> i64 {
    let conn = app.pool.get().await.unwrap();
    let id = Uuid::parse_str(order).unwrap();
    conn.query_one(sql, &[&id]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_replayed_create_returns_the_same_order_also_from_another_serve() {
    let app = TestApp::with_worker(settings().await).await;
    let (first, body) = create(&app, Some("create-1"), FL101, &["1A", "1B"]).await;
    assert_eq!(first, 201, "{body}");
    let (again, replay) = create(&app, Some("create-1"), FL101, &["1B", "1A"]).await;
    assert_eq!(again, 201, "{replay}");
    assert_eq!(replay["orderId"], body["orderId"]);
    assert_eq!(replay, body, "the same answer");
    // Another `serve` (a restarted one has no memory either) answers alike.
    let restarted = TestApp::spawn(app.settings.clone()).await;
    let (code, after) = create(&restarted, Some("create-1"), FL101, &["1A", "1B"]).await;
    assert_eq!((code, &after), (201, &body));
    assert_eq!(workflows(&app).await, 1);
}

#[tokio::test]
async fn a_replayed_payment_is_accepted_again_and_pays_once() {
    let app = TestApp::with_worker(settings().await).await;
    let (_, body) = create(&app, None, FL102, &["2A"]).await;
    let order = body["orderId"].as_str().unwrap();
    let (a, b) = tokio::join!(
        pay(&app, Some("pay-1"), order),
        pay(&app, Some("pay-1"), order)
    );
    assert_eq!((a.0, b.0), (202, 202), "{a:?} {b:?}");
    support::eventually("the order to be confirmed", LONG, || async {
        (status(&app, order).await["status"] == "CONFIRMED").then_some(())
    })
    .await;
    let (code, body) = pay(&app, Some("pay-1"), order).await;
    assert_eq!(code, 202, "still the first answer after the sale: {body}");
    let attempts = one(
        &app,
        "SELECT count(*) FROM payment_attempts WHERE order_id = $1",
        order,
    )
    .await;
    assert_eq!(attempts, 1, "one payment");
    let (code, body) = pay(&app, Some("pay-2"), order).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("ORDER_NOT_MODIFIABLE"))
    );
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_422_and_changes_nothing() {
    let app = TestApp::with_worker(settings().await).await;
    let (code, _) = create(&app, Some("k"), FL201, &["3A"]).await;
    assert_eq!(code, 201);
    let (code, body) = create(&app, Some("k"), FL201, &["3B"]).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED")),
        "{body}"
    );
    assert!(
        !holders(&app, FL201)
            .await
            .contains_key(&support::seat("3B"))
    );
    assert_eq!(workflows(&app).await, 1);
    for bad in ["", &"x".repeat(256), "caf\u{e9}"] {
        let (code, body) = create(&app, Some(bad), FL201, &["3C"]).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (400, Some("INVALID_IDEMPOTENCY_KEY")),
            "{bad:?}: {body}"
        );
    }
}

#[tokio::test]
async fn a_seat_already_held_is_refused_409_without_starting_a_workflow() {
    let app = TestApp::with_worker(settings().await).await;
    let (code, _) = create(&app, None, FL101, &["4A"]).await;
    assert_eq!(code, 201);
    for _ in 0..5 {
        let (code, body) = create(&app, None, FL101, &["4B", "4A"]).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (409, Some("SEATS_UNAVAILABLE"))
        );
        assert!(body["message"].as_str().unwrap().contains("4A"), "{body}");
    }
    assert_eq!(workflows(&app).await, 1, "losers never reached Temporal");
    assert!(
        !holders(&app, FL101)
            .await
            .contains_key(&support::seat("4B"))
    );
}

#[tokio::test]
async fn beyond_the_in_flight_limit_the_api_answers_503_busy_at_once() {
    let mut s = settings().await;
    s.server.max_in_flight = 1;
    // Both creates come from this test's one address: its share of calls
    // in flight is raised past the instance's one slot, which is what this
    // test is about.
    s.server.max_in_flight_per_client = 2;
    s.server.call_timeout = Duration::from_secs(3);
    // No worker: the first create waits for its workflow and keeps the slot.
    let app = TestApp::spawn(s).await;
    let first = create(&app, None, FL102, &["5A"]);
    let second = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let began = Instant::now();
        let body = json!({"flightId": FL102, "seats": ["5B"]});
        let answer = call(&app, reqwest::Method::POST, "/api/orders", None, body).await;
        (answer, began.elapsed())
    };
    let (first, ((code, headers, body), took)) = tokio::join!(first, second);
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"], "SERVICE_BUSY");
    let retry_after: u32 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    assert!(
        took < Duration::from_millis(500),
        "answered at once: {took:?}"
    );
    // No worker: the engine never answers, and the API says it cannot
    // know the outcome; the claim no workflow adopted is dropped.
    assert_eq!(
        first.0, 504,
        "no worker: the outcome is unknown: {}",
        first.1
    );
    assert_eq!(first.1["error"], "OUTCOME_UNKNOWN");
    assert!(holders(&app, FL102).await.is_empty(), "nothing stays held");
}

#[tokio::test]
async fn a_create_retried_after_an_unknown_outcome_gets_the_real_one() {
    let mut s = settings().await;
    s.server.call_timeout = Duration::from_secs(1);
    let mut app = TestApp::spawn(s).await;
    let (code, headers, body) = call(
        &app,
        reqwest::Method::POST,
        "/api/orders",
        Some("retry-me"),
        json!({"flightId": FL201, "seats": ["6A", "6B"]}),
    )
    .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (504, Some("OUTCOME_UNKNOWN"))
    );
    assert!(headers.contains_key("retry-after"));
    assert!(
        holders(&app, FL201).await.is_empty(),
        "no claim stays without a workflow that adopted it"
    );
    // The answer names the order whose outcome is unknown.
    let message = body["message"].as_str().unwrap();
    let first = message
        .split("/api/orders/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the status URL")
        .to_string();

    // The worker comes: the first attempt reaches its workflow after its
    // deadline and is refused, so the retry starts a fresh order at once.
    app.start_worker().await;
    let (code, body) = support::eventually("the retry to succeed", LONG, || async {
        let (code, body) = create(&app, Some("retry-me"), FL201, &["6A", "6B"]).await;
        (code != 503 && code != 504).then_some((code, body))
    })
    .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    // Never a stale answer of the first attempt's run, which ended without
    // an order (its workflow id is never run again): a fresh order.
    assert_ne!(order, first, "a fresh order, not the abandoned one");
    let (code, _) = app.get(&format!("/api/orders/{first}/status")).await;
    assert_eq!(code, 404, "the abandoned attempt left no order");
    let (code, again) = create(&app, Some("retry-me"), FL201, &["6A", "6B"]).await;
    assert_eq!((code, &again["orderId"]), (201, &body["orderId"]));
    let me: OrderId = order.parse().unwrap();
    let held = holders(&app, FL201).await;
    assert_eq!(
        (
            held.get(&support::seat("6A")),
            held.get(&support::seat("6B"))
        ),
        (Some(&me), Some(&me))
    );
    assert_eq!(status(&app, &order).await["status"], "SEATS_RESERVED");
}

#[tokio::test]
async fn a_creation_processed_after_its_deadline_holds_nothing() {
    let app = TestApp::with_worker(settings().await).await;
    let client =
        flightctl::temporal::connect(&app.settings.temporal, "test", Duration::from_secs(10))
            .await
            .unwrap();
    let order_id = OrderId::random();
    let flight_id: FlightId = FL101.parse().unwrap();
    let seats = SeatSelection::parse(&["7A", "7B"]).unwrap();
    // A claim like the API's, taken before the workflow saw the creation.
    app.holds
        .lock(flight_id, order_id, seats.seats(), Duration::from_secs(30))
        .await
        .unwrap();
    let input = BookingInput {
        order_id,
        flight_id,
        hold_ms: 60_000,
        hold_max_lifetime_ms: 120_000,
        payment_timeout_ms: 1_000,
        payment_max_attempts: 3,
        creation_wait_ms: None,
    };
    let past = chrono::Utc::now().timestamp_millis() as u64 - 1_000;
    let select = SelectSeats {
        seats,
        prices: Vec::new(),
        deadline_ms: Deadline::from_unix_ms(past),
        request_id: None,
    };
    let options = WorkflowUpdateWithStartOptions::new(
        app.settings.temporal.task_queue.clone(),
        format!("booking-{order_id}"),
        WorkflowIdConflictPolicy::Fail,
    )
    .build();
    let outcome = client
        .execute_update_with_start_workflow(
            Booking::run,
            input,
            Booking::select_seats,
            select,
            options,
        )
        .await
        .unwrap();
    assert_eq!(outcome, Err(Refusal::Late));
    assert!(
        holders(&app, FL101).await.is_empty(),
        "the claim is dropped"
    );
    let (code, _) = app.get(&format!("/api/orders/{order_id}/status")).await;
    assert_eq!(code, 404, "no order was recorded");
}
