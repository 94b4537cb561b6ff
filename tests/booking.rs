//! The booking workflow end to end: real Postgres, Redis, Temporal dev
//! server, a `flightctl worker` process and the API in-process, with short
//! timeouts.

mod support;

use std::time::Duration;

use flightctl::config::Settings;
use flightctl::domain::OrderStatus;
use flightctl::store::orders;
use serde_json::{Value, json};
use support::{FL101, FL102, FL201, TestApp};
use temporalio_client::{WorkflowCountOptions, WorkflowFetchHistoryOptions};
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);

/// Settings for a booking test: `hold`, 1 s payment timeout, no random failures.
async fn settings(hold: Duration) -> Settings {
    let mut s = support::isolated_settings(true).await;
    s.booking.seat_reservation_timeout = hold;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_max_attempts = 3;
    s.booking.payment_failure_rate = 0.0;
    s
}

async fn app(hold: Duration) -> TestApp {
    TestApp::with_worker(settings(hold).await).await
}

async fn create(app: &TestApp, flight: &str, seats: &[&str]) -> (u16, Value) {
    app.post("/api/orders", json!({"flightId": flight, "seats": seats}))
        .await
}

async fn create_ok(app: &TestApp, flight: &str, seats: &[&str]) -> String {
    let (code, body) = create(app, flight, seats).await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().to_string()
}

async fn status(app: &TestApp, order: &str) -> Value {
    let (code, body) = app.get(&format!("/api/orders/{order}/status")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_for(app: &TestApp, order: &str, wanted: &str, within: Duration) -> Value {
    support::eventually(&format!("order {order} to be {wanted}"), within, || async {
        let s = status(app, order).await;
        (s["status"] == wanted).then_some(s)
    })
    .await
}

async fn pay(app: &TestApp, order: &str, code: &str) -> (u16, Value) {
    app.name_passengers(order).await;
    app.post(
        &format!("/api/orders/{order}/pay"),
        json!({"paymentCode": code}),
    )
    .await
}

/// Pay with an `Idempotency-Key`, as the web UI does.
async fn pay_keyed(app: &TestApp, order: &str, code: &str, key: &str) -> (u16, Value) {
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

async fn held_by(app: &TestApp, flight: &str) -> std::collections::HashMap<String, Uuid> {
    app.holds
        .list(Uuid::parse_str(flight).unwrap())
        .await
        .unwrap()
}

async fn row(app: &TestApp, order: &str) -> orders::Order {
    orders::find(&app.pool, Uuid::parse_str(order).unwrap())
        .await
        .unwrap()
}

async fn temporal(app: &TestApp) -> temporalio_client::Client {
    flightctl::temporal::connect(&app.settings.temporal, "test", Duration::from_secs(10))
        .await
        .unwrap()
}

async fn history(app: &TestApp, order: &str) -> Vec<String> {
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

async fn payment_attempts(app: &TestApp, order: &str) -> Vec<(i32, String, Option<String>)> {
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

#[tokio::test]
async fn paying_00000_confirms_and_sells_the_seats() {
    let app = app(Duration::from_secs(60)).await;
    let (code, body) = create(&app, FL101, &["1A", "1B"]).await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap();
    assert_eq!(body["workflowId"], format!("booking-{order}"));
    assert_eq!(body["status"], "SEATS_RESERVED");
    assert_eq!(body["seats"], json!(["1A", "1B"]));
    assert!(body["expiresAt"].as_str().unwrap().ends_with('Z'));
    let s = status(&app, order).await;
    assert_eq!(s["totalPriceCents"], 70000);
    assert!(
        (58..=60).contains(&s["timerRemaining"].as_i64().unwrap()),
        "{s}"
    );

    let (code, body) = pay(&app, order, "00000").await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        body,
        json!({"orderId": order, "status": "PAYMENT_PROCESSING"})
    );
    let s = wait_for(&app, order, "CONFIRMED", LONG).await;
    assert_eq!(s["paymentAttempts"], 1);
    assert_eq!(s["timerRemaining"], 0);

    let seats = app.seat_statuses(FL101).await;
    assert_eq!(
        (seats["1A"].as_str(), seats["1B"].as_str()),
        ("booked", "booked")
    );
    support::eventually("holds released after the sale", LONG, || async {
        held_by(&app, FL101).await.is_empty().then_some(())
    })
    .await;
    let o = row(&app, order).await;
    assert_eq!(o.status, OrderStatus::Confirmed);
    assert!(o.confirmed_at.is_some());
    let (_, detail) = app.get(&format!("/api/orders/{order}")).await;
    assert_eq!(detail["flight"]["flightNumber"], "FL101");
    assert!(detail["confirmedAt"].is_string(), "{detail}");
    let (_, flight) = app.get(&format!("/api/flights/{FL101}")).await;
    assert_eq!(flight["availableSeats"], 118);
}

#[tokio::test]
async fn a_seat_change_resets_the_hold() {
    let app = app(Duration::from_secs(8)).await;
    let order = create_ok(&app, FL102, &["2A", "2B"]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = status(&app, order.as_str()).await["timerRemaining"]
        .as_i64()
        .unwrap();
    assert!(before <= 5, "half the hold has passed: {before}");
    let (code, body) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["2A", "3C"]}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["seats"], json!(["2A", "3C"]));
    let after = status(&app, &order).await["timerRemaining"]
        .as_i64()
        .unwrap();
    assert!(after >= 7, "back near the full 8 s: {after}");
    let seats = app.seat_statuses(FL102).await;
    assert_eq!(seats["2B"], "available");
    assert_eq!(seats["3C"], "reserved");
    assert_eq!(seats["2A"], "reserved");
}

#[tokio::test]
async fn kept_seats_survive_a_reset_past_the_original_deadline() {
    let app = app(Duration::from_secs(6)).await;
    let order = create_ok(&app, FL201, &["4A", "4B"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, _) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["4A", "4C"]}),
        )
        .await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_secs(4)).await; // 7 s: past the first deadline
    let s = status(&app, &order).await;
    assert_eq!(s["status"], "SEATS_RESERVED", "{s}");
    let holds = held_by(&app, FL201).await;
    let me = Uuid::parse_str(&order).unwrap();
    assert_eq!(
        holds.get("4A"),
        Some(&me),
        "the kept seat is still mine: {holds:?}"
    );
    assert_eq!(holds.get("4C"), Some(&me));
    assert!(!holds.contains_key("4B"));
}

#[tokio::test]
async fn an_untouched_order_expires_and_releases_its_seats() {
    let app = app(Duration::from_secs(2)).await;
    let order = create_ok(&app, FL101, &["5A", "5B"]).await;
    assert_eq!(app.seat_statuses(FL101).await["5A"], "reserved");
    let s = wait_for(&app, &order, "EXPIRED", Duration::from_secs(30)).await;
    assert_eq!(s["timerRemaining"], 0);
    let seats = app.seat_statuses(FL101).await;
    assert_eq!(
        (seats["5A"].as_str(), seats["5B"].as_str()),
        ("available", "available")
    );
    assert!(held_by(&app, FL101).await.is_empty());
    use fred::prelude::KeysInterface;
    let (_, keys): (String, Vec<String>) = app
        .holds
        .client()
        .scan_page(
            "0",
            format!("{}:hold:*:*", app.settings.redis.key_prefix),
            Some(1000),
            None,
        )
        .await
        .unwrap();
    assert!(keys.is_empty(), "seat keys gone: {keys:?}");
    assert_eq!(row(&app, &order).await.status, OrderStatus::Expired);
    let (code, body) = pay(&app, &order, "00000").await;
    assert_eq!(code, 409);
    assert_eq!(body["error"], "ORDER_EXPIRED");
    let (code, body) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["5C"]}),
        )
        .await;
    assert_eq!((code, body["error"].as_str()), (409, Some("ORDER_EXPIRED")));
}

#[tokio::test]
async fn code_99999_fails_after_three_visible_attempts_and_releases() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL102, &["6A"]).await;
    assert_eq!(pay(&app, &order, "99999").await.0, 202);
    let retrying = support::eventually("a retry in progress", LONG, || async {
        let s = status(&app, &order).await;
        (s["status"] == "PAYMENT_PROCESSING" && s["paymentAttempts"].as_i64() >= Some(2))
            .then_some(s)
    })
    .await;
    assert!(
        retrying["lastError"].as_str().unwrap().contains("declined"),
        "{retrying}"
    );
    assert_eq!(retrying["maxPaymentAttempts"], 3);
    let s = wait_for(&app, &order, "FAILED", LONG).await;
    assert_eq!(s["paymentAttempts"], 3);
    assert!(
        s["lastError"]
            .as_str()
            .unwrap()
            .contains("payment failed after 3 attempts"),
        "{s}"
    );
    let attempts = payment_attempts(&app, &order).await;
    assert_eq!(
        attempts.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(),
        ["DECLINED"; 3]
    );
    assert_eq!(app.seat_statuses(FL102).await["6A"], "available");
    assert!(held_by(&app, FL102).await.is_empty());
}

#[tokio::test]
async fn code_88888_times_out_on_every_attempt() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL201, &["7A"]).await;
    assert_eq!(pay(&app, &order, "88888").await.0, 202);
    let s = wait_for(&app, &order, "FAILED", LONG).await;
    assert!(
        s["lastError"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{s}"
    );
    let attempts = payment_attempts(&app, &order).await;
    assert_eq!(
        attempts.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(),
        ["TIMED_OUT"; 3]
    );
    assert!(held_by(&app, FL201).await.is_empty());
}

#[tokio::test]
async fn with_failure_rate_one_every_attempt_fails() {
    let mut s = settings(Duration::from_secs(60)).await;
    s.booking.payment_failure_rate = 1.0;
    s.booking.payment_max_attempts = 2;
    let app = TestApp::with_worker(s).await;
    let order = create_ok(&app, FL101, &["8A"]).await;
    assert_eq!(pay(&app, &order, "12345").await.0, 202);
    let s = wait_for(&app, &order, "FAILED", LONG).await;
    assert_eq!(
        s["paymentAttempts"], 2,
        "exactly PAYMENT_MAX_RETRIES attempts"
    );
    assert_eq!(payment_attempts(&app, &order).await.len(), 2);
}

#[tokio::test]
async fn with_failure_rate_zero_the_first_attempt_succeeds() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL101, &["8B"]).await;
    assert_eq!(pay(&app, &order, "12345").await.0, 202);
    let s = wait_for(&app, &order, "CONFIRMED", LONG).await;
    assert_eq!(s["paymentAttempts"], 1);
}

#[tokio::test]
async fn a_refused_change_keeps_the_previous_selection() {
    let app = app(Duration::from_secs(60)).await;
    let mine = create_ok(&app, FL102, &["9A", "9B"]).await;
    let theirs = create_ok(&app, FL102, &["9C"]).await;
    let before = status(&app, &mine).await;
    let (code, body) = app
        .put(
            &format!("/api/orders/{mine}/seats"),
            json!({"seats": ["9A", "9C"]}),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(body["error"], "SEATS_UNAVAILABLE");
    assert!(body["message"].as_str().unwrap().contains("9C"), "{body}");
    let after = status(&app, &mine).await;
    assert_eq!(after["seats"], json!(["9A", "9B"]));
    assert_eq!(
        after["expiresAt"], before["expiresAt"],
        "the timer was not touched"
    );
    let holds = held_by(&app, FL102).await;
    let (me, them) = (
        Uuid::parse_str(&mine).unwrap(),
        Uuid::parse_str(&theirs).unwrap(),
    );
    assert_eq!(
        (holds.get("9A"), holds.get("9B"), holds.get("9C")),
        (Some(&me), Some(&me), Some(&them))
    );
    let (code, body) = create(&app, FL102, &["9B", "9D"]).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("SEATS_UNAVAILABLE"))
    );
    assert!(
        !held_by(&app, FL102).await.contains_key("9D"),
        "nothing partly taken"
    );
}

#[tokio::test]
async fn two_simultaneous_payments_run_one_validation() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL201, &["10A"]).await;
    let (a, b) = tokio::join!(pay(&app, &order, "00000"), pay(&app, &order, "00000"));
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [202, 409], "{a:?} {b:?}");
    let conflict = if a.0 == 409 { a.1 } else { b.1 };
    assert_eq!(conflict["error"], "ORDER_NOT_MODIFIABLE");
    wait_for(&app, &order, "CONFIRMED", LONG).await;
    assert_eq!(payment_attempts(&app, &order).await.len(), 1);
    let (code, body) = pay(&app, &order, "00000").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("ORDER_NOT_MODIFIABLE"))
    );
}

#[tokio::test]
async fn a_bad_payment_code_is_refused_before_the_workflow() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL101, &["11A"]).await;
    for bad in [json!("1234"), json!("abcde"), json!(12345), json!(null)] {
        let (code, body) = app
            .post(
                &format!("/api/orders/{order}/pay"),
                json!({"paymentCode": bad}),
            )
            .await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(body["error"], "INVALID_PAYMENT_CODE");
    }
    assert_eq!(status(&app, &order).await["status"], "SEATS_RESERVED");
    let events = history(&app, &order).await;
    let updates = events
        .iter()
        .filter(|e| e.contains("UpdateAccepted"))
        .count();
    assert_eq!(
        updates, 1,
        "only the creating selection reached the workflow: {events:?}"
    );
    let (code, body) = pay(&app, &Uuid::new_v4().to_string(), "00000").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("ORDER_NOT_FOUND"))
    );
}

/// Create as a well-behaved client: a 503 must carry `Retry-After`, and is
/// retried after it (beyond its in-flight limit the API turns calls away).
async fn create_as_a_client(app: &TestApp, flight: &str, seats: &[&str]) -> (u16, Value) {
    let body = json!({"flightId": flight, "seats": seats});
    loop {
        let resp = app
            .http
            .post(app.url("/api/orders"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let code = resp.status().as_u16();
        let wait = resp.headers().get("retry-after").cloned();
        let body: Value = resp.json().await.unwrap_or_default();
        if code != 503 {
            return (code, body);
        }
        let wait: u64 = wait
            .unwrap_or_else(|| panic!("a 503 without Retry-After: {body}"))
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

#[tokio::test]
async fn thirty_buyers_of_one_seat_one_wins_and_it_is_sold_once() {
    let app = app(Duration::from_secs(60)).await;
    let attempts = (0..30).map(|_| create_as_a_client(&app, FL102, &["12F"]));
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(c, _)| *c == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(c, b)| *c == 201 || (*c == 409 && b["error"] == "SEATS_UNAVAILABLE"))
    );
    let client = temporal(&app).await;
    let query = format!(
        "TaskQueue = '{}' AND ExecutionStatus = 'Running'",
        app.settings.temporal.task_queue
    );
    support::eventually(
        "refused creates to leave no running workflow",
        LONG,
        || async {
            let n = client
                .count_workflows(query.clone(), WorkflowCountOptions::default())
                .await
                .ok()?
                .count();
            (n == 1).then_some(())
        },
    )
    .await;
    let pays = results
        .iter()
        .filter_map(|(_, b)| b["orderId"].as_str())
        .map(|o| pay(&app, o, "00000"));
    for (code, _) in futures::future::join_all(pays).await {
        assert_eq!(code, 202);
    }
    let order = winners[0]["orderId"].as_str().unwrap();
    wait_for(&app, order, "CONFIRMED", LONG).await;
    let conn = app.pool.get().await.unwrap();
    let sold: i64 = conn
        .query_one(
            "SELECT count(*) FROM orders WHERE status = 'CONFIRMED' AND '12F' = ANY(seats)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sold, 1);
    let (_, flight) = app.get(&format!("/api/flights/{FL102}")).await;
    assert_eq!(flight["availableSeats"], 119);
}

#[tokio::test]
async fn cancel_releases_and_a_confirmed_order_cannot_be_cancelled() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL101, &["13A", "13B"]).await;
    let (code, body) = app.delete(&format!("/api/orders/{order}")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, json!({"orderId": order, "status": "CANCELLED"}));
    assert!(held_by(&app, FL101).await.is_empty());
    assert_eq!(app.seat_statuses(FL101).await["13A"], "available");
    assert_eq!(row(&app, &order).await.status, OrderStatus::Cancelled);
    assert_eq!(status(&app, &order).await["status"], "CANCELLED");

    let sold = create_ok(&app, FL101, &["13C"]).await;
    pay(&app, &sold, "00000").await;
    wait_for(&app, &sold, "CONFIRMED", LONG).await;
    let (code, body) = app.delete(&format!("/api/orders/{sold}")).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("ORDER_NOT_MODIFIABLE"))
    );
    let (code, _) = app.delete(&format!("/api/orders/{}", Uuid::new_v4())).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn orders_survive_a_killed_worker() {
    // Long enough for the new worker to take over (a dead worker's sticky
    // queue times out first), short enough to watch an expiry.
    // A task handed to the dead worker is retried after the 10 s workflow
    // task timeout; the hold outlasts that.
    let mut app = app(Duration::from_secs(20)).await;
    let expiring = create_ok(&app, FL201, &["14A"]).await;
    let paying = create_ok(&app, FL201, &["14B"]).await;
    app.name_passengers(&paying).await;
    app.worker().kill();
    assert_eq!(
        status(&app, &expiring).await["status"],
        "SEATS_RESERVED",
        "answered from the row"
    );
    app.start_worker().await;
    support::eventually("the new worker to poll", LONG, || async {
        app.worker_log(1).contains("worker polling").then_some(())
    })
    .await;
    // Until the dead worker's tasks time out the engine cannot answer in
    // time: the API says so (503 nothing changed, or 504 outcome unknown),
    // and a retry with the same key gets the real outcome.
    let (code, body) = support::eventually("the payment to be accepted", LONG, || async {
        let (code, body) = pay_keyed(&app, &paying, "00000", "pay-once").await;
        (code != 503 && code != 504).then_some((code, body))
    })
    .await;
    assert_eq!(code, 202, "{body}");
    wait_for(&app, &paying, "CONFIRMED", LONG).await;
    wait_for(&app, &expiring, "EXPIRED", LONG).await;
    let seats = app.seat_statuses(FL201).await;
    assert_eq!(
        (seats["14A"].as_str(), seats["14B"].as_str()),
        ("available", "booked")
    );
}

#[tokio::test]
async fn the_workflow_history_shows_the_timer_and_the_updates() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL102, &["15A"]).await;
    app.put(
        &format!("/api/orders/{order}/seats"),
        json!({"seats": ["15B"]}),
    )
    .await;
    pay(&app, &order, "00000").await;
    wait_for(&app, &order, "CONFIRMED", LONG).await;
    let events = support::eventually("the workflow to complete", LONG, || async {
        let events = history(&app, &order).await;
        (events.last().map(String::as_str) == Some("WorkflowExecutionCompleted")).then_some(events)
    })
    .await;
    let count = |name: &str| events.iter().filter(|e| e.as_str() == name).count();
    assert!(count("TimerStarted") >= 2, "a timer per hold: {events:?}");
    assert_eq!(
        count("WorkflowExecutionUpdateAccepted"),
        4,
        "select, select, passengers, pay: {events:?}"
    );
    assert_eq!(count("WorkflowExecutionUpdateCompleted"), 4);
    assert!(events.iter().any(|e| e == "ActivityTaskCompleted"));
    assert_eq!(
        events.last().map(String::as_str),
        Some("WorkflowExecutionCompleted")
    );
}

/// Every way an order ends, recorded and replayed; with
/// `FLIGHTCTL_RECORD_HISTORIES=<dir>` the histories are written there as the
/// fixtures `tests/replay.rs` replays in CI.
#[tokio::test]
async fn recorded_histories_replay_deterministically() {
    let app = app(Duration::from_secs(2)).await;
    let failed = create_ok(&app, FL101, &["17A", "17B"]).await;
    app.put(
        &format!("/api/orders/{failed}/seats"),
        json!({"seats": ["17B", "17C"]}),
    )
    .await;
    pay(&app, &failed, "99999").await;
    let timed_out = create_ok(&app, FL101, &["18B"]).await;
    pay(&app, &timed_out, "88888").await;
    let confirmed = create_ok(&app, FL101, &["18C"]).await;
    pay(&app, &confirmed, "00000").await;
    let cancelled = create_ok(&app, FL101, &["18D"]).await;
    assert_eq!(app.delete(&format!("/api/orders/{cancelled}")).await.0, 200);
    let expired = create_ok(&app, FL101, &["18A"]).await;
    let endings = [
        ("failed-payment", &failed, "FAILED"),
        ("failed-timeout", &timed_out, "FAILED"),
        ("confirmed", &confirmed, "CONFIRMED"),
        ("cancelled", &cancelled, "CANCELLED"),
        ("expired", &expired, "EXPIRED"),
    ];
    let client = temporal(&app).await;
    let replayer = support::replayer();
    for (name, order, status) in endings {
        wait_for(&app, order, status, LONG).await;
        let history = support::eventually("a closed history", LONG, || async {
            let events = history(&app, order).await;
            (events.last().map(String::as_str) == Some("WorkflowExecutionCompleted")).then_some(())
        });
        history.await;
        let handle =
            client.get_workflow_handle::<flightctl::booking::Booking>(format!("booking-{order}"));
        let json = handle
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .to_json()
            .await
            .unwrap();
        if let Some(dir) = std::env::var_os("FLIGHTCTL_RECORD_HISTORIES") {
            let path = std::path::Path::new(&dir).join(format!("{name}.json"));
            std::fs::write(path, &json).unwrap();
        }
        let recorded = temporalio_client::WorkflowHistory::from_json(&json).unwrap();
        replayer
            .replay_workflow(recorded)
            .await
            .unwrap_or_else(|e| panic!("{name} booking-{order} does not replay: {e}"));
    }
}

#[tokio::test]
async fn the_event_stream_sends_each_change_and_closes_at_the_end() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL201, &["15C"]).await;
    let resp = app
        .http
        .get(app.url(&format!("/api/orders/{order}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    pay(&app, &order, "00000").await;
    let body = tokio::time::timeout(LONG, resp.text())
        .await
        .expect("stream closes")
        .unwrap();
    let statuses: Vec<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("SEATS_RESERVED"),
        "{body}"
    );
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("CONFIRMED"),
        "{body}"
    );
    let (code, _) = app
        .get(&format!("/api/orders/{}/events", Uuid::new_v4()))
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn order_requests_are_validated_at_the_edge() {
    let app = app(Duration::from_secs(60)).await;
    let (code, body) = create(&app, &Uuid::new_v4().to_string(), &["1A"]).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("FLIGHT_NOT_FOUND"))
    );
    let (code, body) = create(&app, "nope", &["1A"]).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("INVALID_FLIGHT_ID"))
    );
    let ten: Vec<String> = (1..=10).map(|r| format!("{r}A")).collect();
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": ten}))
        .await;
    assert_eq!((code, body["error"].as_str()), (400, Some("INVALID_SEATS")));
    let (code, body) = create(&app, FL101, &[]).await;
    assert_eq!((code, body["error"].as_str()), (400, Some("INVALID_SEATS")));
    let (code, body) = app.get("/api/orders/not-an-id/status").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("INVALID_ORDER_ID"))
    );
    let (code, body) = app
        .get(&format!("/api/orders/{}/status", Uuid::new_v4()))
        .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("ORDER_NOT_FOUND"))
    );
    let order = create_ok(&app, FL101, &["16A"]).await;
    let (code, body) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["99A"]}),
        )
        .await;
    assert_eq!((code, body["error"].as_str()), (400, Some("INVALID_SEATS")));
}

#[tokio::test]
async fn a_lost_hold_still_free_is_taken_back_when_paying() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL201, &["11A", "11B"]).await;
    app.name_passengers(&order).await;
    let flight = Uuid::parse_str(FL201).unwrap();
    let id = Uuid::parse_str(&order).unwrap();
    // The hold of 11B is lost (Redis restarted without it, say).
    app.holds
        .release(flight, id, &["11B".into()])
        .await
        .unwrap();
    assert_eq!(pay(&app, &order, "00000").await.0, 202);
    wait_for(&app, &order, "CONFIRMED", LONG).await;
    let seats = app.seat_statuses(FL201).await;
    assert_eq!(
        (seats["11A"].as_str(), seats["11B"].as_str()),
        ("booked", "booked")
    );
}

#[tokio::test]
async fn a_lost_hold_taken_by_another_order_refuses_the_payment_before_charging() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL201, &["12A", "12B"]).await;
    app.name_passengers(&order).await;
    let flight = Uuid::parse_str(FL201).unwrap();
    let id = Uuid::parse_str(&order).unwrap();
    app.holds
        .release(flight, id, &["12B".into()])
        .await
        .unwrap();
    let (other, seat) = (Uuid::new_v4(), ["12B".to_string()]);
    let taken = app
        .holds
        .lock(flight, other, &seat, Duration::from_secs(60));
    assert_eq!(taken.await.unwrap(), flightctl::store::holds::Lock::Locked);

    let (code, body) = pay(&app, &order, "00000").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("SEATS_UNAVAILABLE")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("12B"), "{body}");
    assert!(!body["message"].as_str().unwrap().contains("12A"), "{body}");
    let s = status(&app, &order).await;
    assert_eq!(
        (s["status"].as_str(), s["paymentAttempts"].as_i64()),
        (Some("SEATS_RESERVED"), Some(0))
    );
    assert!(
        payment_attempts(&app, &order).await.is_empty(),
        "never charged"
    );
    assert_eq!(held_by(&app, FL201).await["12A"], id, "the rest stays held");

    // Still changeable: drop the lost seat, then pay.
    let (code, body) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["12A", "12C"]}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(pay(&app, &order, "00000").await.0, 202);
    wait_for(&app, &order, "CONFIRMED", LONG).await;
    assert_eq!(app.seat_statuses(FL201).await["12B"], "reserved");
}

#[tokio::test]
async fn an_order_whose_row_vanished_is_not_sold_by_retrying_forever() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL201, &["13A"]).await;
    assert_eq!(pay(&app, &order, "00000").await.0, 202);
    // The row disappears while the payment is validated (100 ms or more).
    let conn = app.pool.get().await.unwrap();
    let id = Uuid::parse_str(&order).unwrap();
    let deleted = conn
        .execute("DELETE FROM orders WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    // The sale fails for good: the workflow ends the order FAILED (saving
    // its row again) and puts the seat back on sale.
    let path = format!("/api/orders/{order}/status");
    let s = support::eventually(
        "the order ended FAILED",
        Duration::from_secs(30),
        || async {
            let (code, s) = app.get(&path).await;
            (code == 200 && s["status"] == "FAILED").then_some(s)
        },
    )
    .await;
    assert!(s["lastError"].as_str().is_some(), "{s}");
    assert_eq!(app.seat_statuses(FL201).await["13A"], "available");
    assert!(held_by(&app, FL201).await.is_empty());
}

#[tokio::test]
async fn a_workflow_whose_creating_selection_never_arrives_ends_by_itself() {
    use flightctl::booking::Booking;
    use flightctl::booking::messages::BookingInput;
    use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
    let app = app(Duration::from_secs(60)).await;
    let client = temporal(&app).await;
    let order = Uuid::new_v4();
    let input = BookingInput {
        order_id: order,
        flight_id: Uuid::parse_str(FL101).unwrap(),
        seat_price_cents: 35_000,
        hold_ms: 60_000,
        payment_timeout_ms: 1_000,
        payment_max_attempts: 3,
        creation_wait_ms: Some(2_000),
    };
    let options = WorkflowStartOptions::new(
        app.settings.temporal.task_queue.clone(),
        format!("booking-{order}"),
    )
    .build();
    let started = std::time::Instant::now();
    let handle = client
        .start_workflow(Booking::run, input, options)
        .await
        .unwrap();
    let ended = tokio::time::timeout(LONG, handle.get_result(WorkflowGetResultOptions::default()))
        .await
        .expect("the workflow ends by itself")
        .unwrap();
    assert_eq!(ended, OrderStatus::Created, "it ends without an order");
    assert!(started.elapsed() >= Duration::from_secs(2));
    let events = history(&app, &order.to_string()).await;
    assert!(events.iter().any(|e| e == "TimerFired"), "{events:?}");
    let (code, _) = app.get(&format!("/api/orders/{order}/status")).await;
    assert_eq!(code, 404, "no order was recorded");
    // This ending replays too (a fixture with FLIGHTCTL_RECORD_HISTORIES).
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .unwrap();
    if let Some(dir) = std::env::var_os("FLIGHTCTL_RECORD_HISTORIES") {
        std::fs::write(std::path::Path::new(&dir).join("never-created.json"), &json).unwrap();
    }
    let recorded = temporalio_client::WorkflowHistory::from_json(&json).unwrap();
    support::replayer()
        .replay_workflow(recorded)
        .await
        .expect("the history replays");
}

#[tokio::test]
async fn a_usual_booking_records_no_creation_timer() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL102, &["16A"]).await;
    let (code, _) = app.delete(&format!("/api/orders/{order}")).await;
    assert_eq!(code, 200);
    let events = support::eventually("the workflow to complete", LONG, || async {
        let events = history(&app, &order).await;
        (events.last().map(String::as_str) == Some("WorkflowExecutionCompleted")).then_some(events)
    })
    .await;
    let count = |name: &str| events.iter().filter(|e| e.as_str() == name).count();
    assert_eq!(
        count("TimerStarted"),
        1,
        "only the hold's timer: {events:?}"
    );
    assert_eq!(
        count("MarkerRecorded"),
        2,
        "two local activities, no patch: {events:?}"
    );
}

/// Lock, then check: a seat sold in Postgres whose Redis hold is gone is
/// never left held, seats the order held before stay held, and seats the
/// refused lock took are given back.
#[tokio::test]
async fn a_lock_never_keeps_a_seat_sold_meanwhile() {
    use flightctl::booking::BookingActivities;
    use flightctl::booking::messages::{LockSeats, Locked};
    let app = app(Duration::from_secs(60)).await;
    let flight = Uuid::parse_str(FL201).unwrap();
    // 3C is sold to another order; its hold is gone from Redis.
    let buyer = create_ok(&app, FL201, &["3C"]).await;
    pay(&app, &buyer, "00000").await;
    wait_for(&app, &buyer, "CONFIRMED", LONG).await;
    let acts = BookingActivities::new(app.pool.clone(), app.holds.clone(), 0.0);
    let me = Uuid::new_v4();
    let seats = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let lock = |wanted: &[&str], held: &[&str]| LockSeats {
        order_id: me,
        flight_id: flight,
        seats: seats(wanted),
        ttl_ms: 60_000,
        held: seats(held),
    };
    let mine = || async {
        let mut held: Vec<String> = app
            .holds
            .list(flight)
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, o)| *o == me)
            .map(|(s, _)| s)
            .collect();
        held.sort();
        held
    };
    assert_eq!(acts.lock(&lock(&["3A"], &[])).await.unwrap(), Locked::All);
    assert_eq!(
        acts.lock(&lock(&["3A", "3B", "3C"], &["3A"]))
            .await
            .unwrap(),
        Locked::Unavailable(seats(&["3C"]))
    );
    assert_eq!(
        mine().await,
        seats(&["3A"]),
        "3A kept, 3B and 3C given back"
    );
    assert_eq!(
        acts.lock(&lock(&["3A", "3D", "99Z"], &["3A"]))
            .await
            .unwrap(),
        Locked::Unknown(seats(&["99Z"]))
    );
    assert_eq!(mine().await, seats(&["3A"]), "3D and 99Z given back");
    // A check that fails: the lock's outcome is unknown to the workflow,
    // so the seats it took go back before the error.
    let conn = app.pool.get().await.unwrap();
    conn.batch_execute("ALTER TABLE seats RENAME TO seats_away")
        .await
        .unwrap();
    let failed = acts.lock(&lock(&["3A", "3E"], &["3A"])).await;
    conn.batch_execute("ALTER TABLE seats_away RENAME TO seats")
        .await
        .unwrap();
    assert!(failed.is_err());
    assert_eq!(mine().await, seats(&["3A"]), "3E given back");
}
