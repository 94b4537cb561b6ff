//! The booking workflow end to end: real Postgres, Redis, Temporal dev
//! server, a `flightctl worker` process and the API in-process, with short
//! timeouts (helpers in `tests/support/booking.rs`).
//!
//! The workflow itself: a killed worker, its history and timers, replay,
//! the event stream, and workflows whose order row or first selection
//! never arrives.

#[path = "support/booking.rs"]
mod booking;
mod support;

use std::time::Duration;

use flightctl::domain::{OrderId, OrderStatus};
use serde_json::{Value, json};
use support::{FL101, FL102, FL201};
use temporalio_client::WorkflowFetchHistoryOptions;
use uuid::Uuid;

use booking::*;

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
    // The confirmed booking names its passenger in the payment: two updates.
    let passengers = json!([{"seat": "18C", "givenName": "Ada", "familyName": "Lovelace"}]);
    let body = json!({"paymentCode": "00000", "passengers": passengers});
    let (code, paid) = app
        .post(&format!("/api/orders/{confirmed}/pay"), body)
        .await;
    assert_eq!(code, 202, "{paid}");
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
    let order = OrderId::random();
    let input = BookingInput {
        order_id: order,
        flight_id: FL101.parse().unwrap(),
        hold_ms: 60_000,
        hold_max_lifetime_ms: 120_000,
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
