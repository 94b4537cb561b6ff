//! The booking workflow end to end: real Postgres, Redis, Temporal dev
//! server, a `flightctl worker` process and the API in-process, with short
//! timeouts (helpers in `tests/support/booking.rs`).
//!
//! Paying: the test codes (00000, 99999, 88888), the failure rate, one
//! validation for simultaneous payments, and the hold re-check before
//! charging.

#[path = "support/booking.rs"]
mod booking;
mod support;

use std::time::Duration;

use flightctl::domain::{FlightId, OrderId};
use serde_json::{Value, json};
use support::{FL101, FL102, FL201, TestApp};
use uuid::Uuid;

use booking::*;

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

#[tokio::test]
async fn a_lost_hold_still_free_is_taken_back_when_paying() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL201, &["11A", "11B"]).await;
    app.name_passengers(&order).await;
    let flight: FlightId = FL201.parse().unwrap();
    let id: OrderId = order.parse().unwrap();
    // The hold of 11B is lost (Redis restarted without it, say).
    app.holds
        .release(flight, id, &[support::seat("11B")])
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
    let flight: FlightId = FL201.parse().unwrap();
    let id: OrderId = order.parse().unwrap();
    app.holds
        .release(flight, id, &[support::seat("12B")])
        .await
        .unwrap();
    let (other, seat) = (OrderId::random(), [support::seat("12B")]);
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
    assert_eq!(
        held_by(&app, FL201).await[&support::seat("12A")],
        id,
        "the rest stays held"
    );

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

/// Pay with the passengers in the same request: `{paymentCode, passengers}`.
async fn pay_naming(app: &TestApp, order: &str, passengers: Value) -> (u16, Value) {
    app.post(
        &format!("/api/orders/{order}/pay"),
        json!({"paymentCode": "00000", "passengers": passengers}),
    )
    .await
}

fn passenger(seat: &str, given: &str) -> Value {
    json!({"seat": seat, "givenName": given, "familyName": "Lovelace"})
}

/// The updates the order's workflow accepted so far.
async fn updates(app: &TestApp, order: &str) -> usize {
    let events = history(app, order).await;
    events
        .iter()
        .filter(|e| e.contains("UpdateAccepted"))
        .count()
}

#[tokio::test]
async fn a_payment_names_the_passengers_in_the_same_update() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL201, &["13A", "13B"]).await;
    let both = json!([passenger("13A", "Ada"), passenger("13b", "Byron")]);
    let (code, body) = pay_naming(&app, &order, both).await;
    assert_eq!(code, 202, "{body}");
    wait_for(&app, &order, "CONFIRMED", LONG).await;
    let names: Vec<(String, String)> = (row(&app, &order).await.passengers.iter())
        .map(|p| (p.seat.to_string(), p.given_name.clone()))
        .collect();
    assert_eq!(
        names,
        [("13A".into(), "Ada".into()), ("13B".into(), "Byron".into())]
    );
    assert_eq!(
        updates(&app, &order).await,
        2,
        "the creation and the payment, no passenger update"
    );
}

#[tokio::test]
async fn a_payment_whose_passengers_are_refused_changes_nothing() {
    let app = app(Duration::from_secs(60)).await;
    let order = create_ok(&app, FL201, &["14A", "14B"]).await;
    let unchanged = |s: &Value| {
        assert_eq!(s["status"], "SEATS_RESERVED", "{s}");
        assert_eq!(s["passengers"], json!([]), "{s}");
        assert_eq!(s["paymentAttempts"], 0, "{s}");
    };
    // Refused at the edge, as the passenger route refuses them.
    let cases = [
        json!([]),
        json!([
            passenger("14A", "Ada"),
            json!({"seat": "14B", "givenName": "", "familyName": "X"})
        ]),
        json!([passenger("14A", "Ada"), passenger("14a", "Twice")]),
        json!("Ada"),
    ];
    for bad in cases {
        let (code, body) = pay_naming(&app, &order, bad.clone()).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(body["error"], "INVALID_PASSENGERS", "{bad}: {body}");
        unchanged(&status(&app, &order).await);
    }
    assert_eq!(updates(&app, &order).await, 1, "none reached the workflow");
    // Refused by the workflow: a seat the order does not hold, a seat
    // left without a passenger.
    let (code, body) = pay_naming(
        &app,
        &order,
        json!([passenger("14A", "Ada"), passenger("14C", "Byron")]),
    )
    .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("INVALID_PASSENGERS")),
        "{body}"
    );
    assert_eq!(body["seat"], "14C", "{body}");
    unchanged(&status(&app, &order).await);
    let (code, body) = pay_naming(&app, &order, json!([passenger("14A", "Ada")])).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("PASSENGERS_REQUIRED")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("14B"), "{body}");
    unchanged(&status(&app, &order).await);
    assert!(row(&app, &order).await.passengers.is_empty());
    assert!(payment_attempts(&app, &order).await.is_empty());
    // Named before: the payment's list replaces the earlier one.
    app.name_passengers(&order).await;
    let both = json!([passenger("14A", "Ada"), passenger("14B", "Byron")]);
    assert_eq!(pay_naming(&app, &order, both).await.0, 202);
    wait_for(&app, &order, "CONFIRMED", LONG).await;
    let names: Vec<String> = (row(&app, &order).await.passengers.iter())
        .map(|p| p.given_name.clone())
        .collect();
    assert_eq!(names, ["Ada", "Byron"]);
}
