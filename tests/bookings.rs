//! Passengers, booking references, "manage my booking" and the refund of a
//! cancelled booking, against the real stack.

mod support;

use std::time::Duration;

use flightctl::config::Settings;
use flightctl::domain::OrderId;
use serde_json::{Value, json};
use support::{FL101, FL201, TestApp};
use temporalio_client::WorkflowFetchHistoryOptions;
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);

async fn settings() -> Settings {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_failure_rate = 0.0;
    s.booking.refund_failure_rate = 0.0;
    s
}

async fn create(app: &TestApp, flight: &str, seats: &[&str]) -> String {
    let (code, body) = app
        .post("/api/orders", json!({"flightId": flight, "seats": seats}))
        .await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().to_string()
}

async fn status(app: &TestApp, order: &str) -> Value {
    let (code, body) = app.get(&format!("/api/orders/{order}/status")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn name(app: &TestApp, order: &str, passengers: Value) -> (u16, Value) {
    app.put(
        &format!("/api/orders/{order}/passengers"),
        json!({ "passengers": passengers }),
    )
    .await
}

async fn pay(app: &TestApp, order: &str) -> (u16, Value) {
    app.post(
        &format!("/api/orders/{order}/pay"),
        json!({"paymentCode": "00000"}),
    )
    .await
}

async fn wait_status(app: &TestApp, order: &str, wanted: &str) -> Value {
    support::eventually(&format!("order {order} {wanted}"), LONG, || async {
        let s = status(app, order).await;
        (s["status"] == wanted).then_some(s)
    })
    .await
}

fn passenger(seat: &str, given: &str, family: &str) -> Value {
    json!({"seat": seat, "givenName": given, "familyName": family})
}

/// Book `seats` on `flight` for passengers of family name `family`;
/// returns the order id and its booking reference.
async fn book(app: &TestApp, flight: &str, seats: &[&str], family: &str) -> (String, String) {
    let order = create(app, flight, seats).await;
    let list: Vec<Value> = (seats.iter().enumerate())
        .map(|(i, seat)| {
            passenger(
                seat,
                &format!("Given{}", "abcdefghi".as_bytes()[i] as char),
                family,
            )
        })
        .collect();
    let (code, body) = name(app, &order, Value::Array(list)).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = pay(app, &order).await;
    assert_eq!(code, 202, "{body}");
    let s = wait_status(app, &order, "CONFIRMED").await;
    let reference = s["bookingReference"]
        .as_str()
        .expect("a reference")
        .to_string();
    (order, reference)
}

async fn attempts(app: &TestApp, order: &str) -> i64 {
    let id = Uuid::parse_str(order).unwrap();
    let conn = app.pool.get().await.unwrap();
    conn.query_one(
        "SELECT count(*) FROM payment_attempts WHERE order_id = $1",
        &[&id],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn passengers_are_checked_kept_with_their_seats_and_required_to_pay() {
    let app = TestApp::with_worker(settings().await).await;
    let order = create(&app, FL101, &["3A", "3B"]).await;
    let before = status(&app, &order).await;
    assert_eq!(before["passengers"], json!([]));
    assert_eq!(before["bookingReference"], Value::Null);

    // Bad input: a clear error naming the seat and field, nothing changed.
    for (list, seat, field) in [
        (
            json!([passenger("3A", "Ada", "L0velace")]),
            "3A",
            "familyName",
        ),
        (json!([passenger("3B", " ", "Lovelace")]), "3B", "givenName"),
        (
            json!([{"seat": "3A", "givenName": "Ada", "familyName": "Lovelace", "email": "ada@"}]),
            "3A",
            "email",
        ),
        (json!([passenger("3C", "Ada", "Lovelace")]), "3C", "seat"),
    ] {
        let (code, body) = name(&app, &order, list).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["error"], "INVALID_PASSENGERS", "{body}");
        assert_eq!(
            (body["seat"].as_str(), body["field"].as_str()),
            (Some(seat), Some(field)),
            "{body}"
        );
    }
    assert_eq!(status(&app, &order).await["passengers"], json!([]));

    // Paying without passengers: 409 naming the seats, no payment attempt.
    let (code, body) = pay(&app, &order).await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"], "PASSENGERS_REQUIRED");
    assert_eq!(body["seats"], json!(["3A", "3B"]));
    assert_eq!(attempts(&app, &order).await, 0);

    // Named: shown in the status; the hold goes on as it was (naming
    // passengers never restarts it).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let list = json!([
        {"seat": "3B", "givenName": "Charles", "familyName": "Babbage", "email": "cb@example.com"},
        passenger("3a", "Ada", "Lovelace"),
    ]);
    let (code, named) = name(&app, &order, list).await;
    assert_eq!(code, 200, "{named}");
    let seats: Vec<&str> = (named["passengers"].as_array().unwrap().iter())
        .map(|p| p["seat"].as_str().unwrap())
        .collect();
    assert_eq!(seats, ["3A", "3B"]);
    // The seats named, not who: an order id is no key to personal data.
    assert_eq!(named["passengers"], json!([{"seat": "3A"}, {"seat": "3B"}]));
    for name in ["Babbage", "Lovelace", "cb@example.com"] {
        assert!(!named.to_string().contains(name), "{named}");
    }
    assert_eq!(
        named["expiresAt"], before["expiresAt"],
        "naming passengers restarts no hold"
    );

    // A seat change keeps the kept seat's passenger and drops the other.
    let (code, body) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["3A", "3C"]}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let after = status(&app, &order).await;
    assert_eq!(after["passengers"], json!([{"seat": "3A"}]), "{after}");
    let (code, body) = pay(&app, &order).await;
    assert_eq!(
        (code, body["seats"].clone()),
        (409, json!(["3C"])),
        "{body}"
    );

    let list = json!([
        passenger("3A", "Ada", "Lovelace"),
        // Names a ticket can carry: Latin letters, accents kept.
        passenger("3C", "Maria", "Skłodowska-Curie")
    ]);
    assert_eq!(name(&app, &order, list).await.0, 200);
    let (code, body) = pay(&app, &order).await;
    assert_eq!(code, 202, "{body}");
    let confirmed = wait_status(&app, &order, "CONFIRMED").await;
    let reference = confirmed["bookingReference"].as_str().unwrap();
    assert_eq!(reference.len(), 6, "{reference}");
    assert!(
        reference
            .chars()
            .all(|c| "23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(c)),
        "{reference}"
    );
    let (code, detail) = app.get(&format!("/api/orders/{order}")).await;
    assert_eq!(code, 200);
    assert_eq!(detail["bookingReference"], reference);
    assert_eq!(
        detail["passengers"],
        json!([{"seat": "3A"}, {"seat": "3C"}])
    );
    assert!(!detail.to_string().contains("Skłodowska"), "{detail}");

    // After payment the passengers are fixed.
    let (code, body) = name(&app, &order, json!([passenger("3A", "Eve", "Other")])).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("ORDER_NOT_MODIFIABLE"))
    );
}

#[tokio::test]
async fn a_booking_is_found_by_reference_and_family_name_and_guessing_is_refused() {
    let mut s = settings().await;
    s.booking.lookup_max_failures = 3;
    let app = TestApp::with_worker(s).await;
    let (_, reference) = book(&app, FL101, &["5A", "5B"], "Núñez-O'Brien").await;

    let app = &app;
    let look = |reference: String, last: &str| {
        let body = json!({"reference": reference, "lastName": last});
        async move { app.post("/api/bookings/lookup", body).await }
    };
    // Case and accents do not matter; the reference may be typed lower case.
    let (code, booking) = look(reference.to_lowercase(), "NUNEZ-o'brien").await;
    assert_eq!(code, 200, "{booking}");
    assert_eq!(booking["reference"], reference.as_str());
    assert_eq!(booking["status"], "CONFIRMED");
    assert_eq!(booking["flight"]["flightNumber"], "FL101");
    assert_eq!(booking["seats"], json!(["5A", "5B"]));
    assert_eq!(booking["passengers"][0]["seat"], "5A");
    assert_eq!(booking["passengers"][1]["familyName"], "Núñez-O'Brien");
    assert!(booking["totalPriceCents"].as_i64().unwrap() > 0);
    assert!(booking["confirmedAt"].is_string());
    assert_eq!(booking["refund"], Value::Null);
    assert!(!booking.to_string().contains("email"), "{booking}");

    // A wrong name and an unknown reference: the same answer.
    let (code, wrong_name) = look(reference.clone(), "Smith").await;
    assert_eq!(code, 404);
    let (code, unknown) = look("ZZZZZZ".into(), "Núñez-O'Brien").await;
    assert_eq!(code, 404);
    assert_eq!(wrong_name, unknown);
    assert_eq!(unknown["error"], "BOOKING_NOT_FOUND");
    let (code, body) = app
        .post("/api/bookings/lookup", json!({"reference": reference}))
        .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("INVALID_REQUEST")),
        "the name is required"
    );

    // The third failure uses up the window: even the right name is refused.
    // A client cannot dodge the count by naming another address: with no
    // `TRUSTED_PROXIES`, `X-Forwarded-For` is not believed.
    let spoofed = app
        .http
        .post(app.url("/api/bookings/lookup"))
        .json(&json!({"reference": "ABCDEF", "lastName": "x"}))
        .header("X-Forwarded-For", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status().as_u16(), 404);
    let resp = app
        .http
        .post(app.url("/api/bookings/lookup"))
        .json(&json!({"reference": reference, "lastName": "Nunez-O'Brien"}))
        .header("X-Forwarded-For", "198.51.100.8")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "TOO_MANY_LOOKUPS");
}

async fn cancel(app: &TestApp, reference: &str, last: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url(&format!("/api/bookings/{reference}/cancel")))
        .json(&json!({ "lastName": last }));
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or_default(),
    )
}

async fn booking(app: &TestApp, reference: &str, last: &str) -> Value {
    let (code, body) = app
        .post(
            "/api/bookings/lookup",
            json!({"reference": reference, "lastName": last}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn count(app: &TestApp, sql: &str, order: &str) -> i64 {
    let id = Uuid::parse_str(order).unwrap();
    let conn = app.pool.get().await.unwrap();
    conn.query_one(sql, &[&id]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_cancelled_booking_is_refunded_once_and_its_seats_go_back_on_sale() {
    let app = TestApp::with_worker(settings().await).await;
    let (order, reference) = book(&app, FL101, &["7A", "7B"], "Lovelace").await;
    let (_, available_before) = flight_counts(&app, FL101).await;

    let (code, body) = cancel(&app, &reference, "lovelace", Some("cancel-1")).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        body,
        json!({"reference": reference, "status": "REFUND_PENDING"})
    );
    // The same key: the same answer. Another request: refused.
    let (code, again) = cancel(&app, &reference, "Lovelace", Some("cancel-1")).await;
    assert_eq!((code, &again), (202, &body));
    let (code, other) = cancel(&app, &reference, "Lovelace", None).await;
    assert_eq!(
        (code, other["error"].as_str()),
        (409, Some("BOOKING_NOT_CANCELLABLE"))
    );

    let refunded = support::eventually("the refund", LONG, || async {
        let b = booking(&app, &reference, "Lovelace").await;
        (b["status"] == "REFUNDED").then_some(b)
    })
    .await;
    assert_eq!(refunded["refund"]["status"], "REFUNDED");
    assert_eq!(
        refunded["refund"]["amountCents"],
        refunded["totalPriceCents"]
    );
    assert!(refunded["refund"]["refundedAt"].is_string());
    let seats = app.seat_statuses(FL101).await;
    assert_eq!(
        (seats["7A"].as_str(), seats["7B"].as_str()),
        ("available", "available")
    );
    let (column, available) = flight_counts(&app, FL101).await;
    assert_eq!(
        i64::from(column),
        available,
        "available_seats follows the seats"
    );
    assert_eq!(available, available_before + 2);
    assert_eq!(status(&app, &order).await["status"], "REFUNDED");
    let paid_out = "SELECT count(*) FROM provider_refunds WHERE order_id = $1";
    assert_eq!(count(&app, paid_out, &order).await, 1, "one refund");
    let still_owned = "SELECT count(*) FROM seats WHERE order_id = $1";
    assert_eq!(count(&app, still_owned, &order).await, 0);
    let (code, _) = cancel(&app, &reference, "Lovelace", Some("cancel-2")).await;
    assert_eq!(code, 409, "a refunded booking is not cancellable");
    support::record_refund(&app, &order, "refunded").await;

    // The seats sell again.
    book(&app, FL101, &["7A"], "Babbage").await;
}

#[tokio::test]
async fn a_refund_the_provider_keeps_declining_ends_refund_failed_for_an_operator() {
    let mut s = settings().await;
    s.booking.refund_failure_rate = 1.0;
    s.booking.refund_max_attempts = 2;
    let app = TestApp::with_worker(s).await;
    let (order, reference) = book(&app, FL101, &["8C"], "Hopper").await;
    let (code, body) = cancel(&app, &reference, "Hopper", None).await;
    assert_eq!(code, 202, "{body}");
    let failed = support::eventually("the refund to fail", LONG, || async {
        let b = booking(&app, &reference, "Hopper").await;
        (b["status"] == "REFUND_FAILED").then_some(b)
    })
    .await;
    assert_eq!(failed["refund"]["status"], "FAILED");
    assert_eq!(failed["refund"]["refundedAt"], Value::Null);
    let tries = "SELECT attempts::bigint FROM refunds WHERE order_id = $1";
    assert_eq!(
        count(&app, tries, &order).await,
        2,
        "every attempt was made"
    );
    let paid_out = "SELECT count(*) FROM provider_refunds WHERE order_id = $1";
    assert_eq!(count(&app, paid_out, &order).await, 0);
    assert_eq!(
        app.seat_statuses(FL101).await["8C"],
        "booked",
        "the seats stay sold"
    );
    support::record_refund(&app, &order, "refund-failed").await;
}

#[tokio::test]
async fn no_cancellation_within_the_cutoff_before_departure() {
    let app = TestApp::with_worker(settings().await).await;
    // FL201 leaves in 24 h: inside the default 24 h cutoff.
    let (order, reference) = book(&app, FL201, &["2D"], "Turing").await;
    let (code, body) = cancel(&app, &reference, "Turing", None).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("REFUND_WINDOW_CLOSED")),
        "{body}"
    );
    assert_eq!(status(&app, &order).await["status"], "CONFIRMED");
    let refunds = "SELECT count(*) FROM refunds WHERE order_id = $1";
    assert_eq!(count(&app, refunds, &order).await, 0);
}

#[tokio::test]
async fn a_refund_whose_workflow_never_started_is_started_by_the_sweep() {
    let mut s = settings().await;
    s.booking.reconcile_interval = Duration::from_secs(1);
    let app = TestApp::with_worker(s).await;
    let (order, _) = book(&app, FL101, &["9E"], "Liskov").await;
    // The request recorded as the API records it, but no workflow started
    // (as when Temporal is down at that moment), a minute ago.
    let id: OrderId = order.parse().unwrap();
    let cutoff = Duration::from_secs(3600);
    let done = flightctl::store::refunds::request(&app.pool, id, cutoff, None)
        .await
        .unwrap();
    assert_eq!(done, flightctl::store::refunds::Request::Accepted);
    let conn = app.pool.get().await.unwrap();
    conn.execute(
        "UPDATE refunds SET requested_at = NOW() - interval '2 minutes' WHERE order_id = $1",
        &[&id],
    )
    .await
    .unwrap();
    wait_status(&app, &order, "REFUNDED").await;
}

/// The flight's `available_seats` and its seats actually on sale.
async fn flight_counts(app: &TestApp, flight: &str) -> (i32, i64) {
    let id = Uuid::parse_str(flight).unwrap();
    let conn = app.pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT f.available_seats,
                    (SELECT count(*) FROM seats s WHERE s.flight_id = f.id AND s.status = 'available')
             FROM flights f WHERE f.id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn passenger_names_never_reach_logs_metrics_or_plain_temporal_payloads() {
    let app = TestApp::with_worker(settings().await).await;
    let family = "Zzyzxquartz";
    let (order, reference) = book(&app, FL101, &["10F"], family).await;
    assert_eq!(cancel(&app, &reference, family, None).await.0, 202);
    wait_status(&app, &order, "REFUNDED").await;

    let client = flightctl::temporal::connect(&app.settings.temporal, "test", LONG)
        .await
        .unwrap();
    for id in [format!("booking-{order}"), format!("refund-{order}")] {
        let handle = client.get_workflow_handle::<flightctl::booking::Booking>(id.clone());
        let raw = handle
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .to_json()
            .await
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        assert!(!raw.contains(family), "{id}: a name in a plain payload");
        use base64::Engine as _;
        for chunk in raw.split('"') {
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(chunk) {
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(family), "{id}: a name in a payload: {text}");
            }
        }
    }
    let metrics = app
        .http
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains(family));
    assert!(
        !app.worker_log(0).contains(family),
        "the worker logged a name"
    );
}

#[tokio::test]
async fn the_booking_and_its_refund_are_mailed_to_the_passengers_even_after_an_outage() {
    use flightctl::config::Secret;
    let mut sink = support::smtp::SmtpSink::start();
    let mut s = settings().await;
    s.mail.smtp_url = Some(Secret::new(sink.url()));
    let app = TestApp::with_worker(s).await;
    // The mail server is down when the booking is confirmed: the booking
    // does not wait for it, the mail comes once it is back.
    sink.stop();
    let order = create(&app, FL101, &["11A", "11B"]).await;
    let list = json!([
        {"seat": "11A", "givenName": "Ada", "familyName": "Lovelace", "email": "ada@example.com"},
        {"seat": "11B", "givenName": "Zoë", "familyName": "O'Brien <&>", "email": "ada@example.com"},
    ]);
    assert_eq!(name(&app, &order, list).await.0, 400, "'<&>' is not a name");
    let list = json!([
        {"seat": "11A", "givenName": "Ada", "familyName": "Lovelace", "email": "ada@example.com"},
        {"seat": "11B", "givenName": "Zoë", "familyName": "O'Brien", "email": "zoe@example.com"},
    ]);
    assert_eq!(name(&app, &order, list).await.0, 200);
    assert_eq!(pay(&app, &order).await.0, 202);
    let confirmed = wait_status(&app, &order, "CONFIRMED").await;
    let reference = confirmed["bookingReference"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(3)).await;
    sink.restart();
    let mails = sink.wait_for(2, LONG).await;
    let mut to: Vec<String> = mails
        .iter()
        .filter_map(|m| m.header("To").map(str::to_string))
        .collect();
    to.sort();
    assert_eq!(
        to,
        ["ada@example.com", "zoe@example.com"],
        "one mail per address"
    );
    for mail in &mails {
        assert!(mail.subject().contains(&reference), "{}", mail.subject());
        for part in ["text/plain", "text/html"] {
            let body = mail.body(part);
            for needle in [reference.as_str(), "FL101", "11A", "11B", "Lovelace", "Zoë"] {
                assert!(body.contains(needle), "{part} lacks {needle}: {body}");
            }
        }
        assert!(
            mail.body("text/html").contains("O&#39;Brien"),
            "escaped in HTML"
        );
    }

    assert_eq!(cancel(&app, &reference, "Lovelace", None).await.0, 202);
    wait_status(&app, &order, "REFUNDED").await;
    let mails = sink.wait_for(4, LONG).await;
    let refunds: Vec<_> = mails
        .iter()
        .filter(|m| m.subject().contains("refunded"))
        .collect();
    assert_eq!(refunds.len(), 2, "a refund mail per address");
    assert!(
        !app.worker_log(0).contains("ada@example.com"),
        "no address in the logs"
    );
}

/// A keyed payment refused for want of passengers did nothing: once they
/// are named, the same key pays (the refusal is not the key's answer).
#[tokio::test]
async fn a_keyed_payment_refused_for_missing_passengers_goes_through_once_they_are_named() {
    let app = TestApp::with_worker(settings().await).await;
    let order = create(&app, FL101, &["12C"]).await;
    let pay_keyed = || async {
        let resp = app
            .http
            .post(app.url(&format!("/api/orders/{order}/pay")))
            .header("Idempotency-Key", "pay-after-naming")
            .json(&json!({"paymentCode": "00000"}))
            .send()
            .await
            .unwrap();
        let code = resp.status().as_u16();
        (code, resp.json::<Value>().await.unwrap_or_default())
    };
    let (code, body) = pay_keyed().await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("PASSENGERS_REQUIRED"))
    );
    let list = json!([passenger("12C", "Grace", "Hopper")]);
    assert_eq!(name(&app, &order, list).await.0, 200);
    let (code, body) = pay_keyed().await;
    assert_eq!(code, 202, "{body}");
    wait_status(&app, &order, "CONFIRMED").await;
    let (code, again) = pay_keyed().await;
    assert_eq!((code, again), (202, body), "the same key: the same answer");
    assert_eq!(attempts(&app, &order).await, 1, "paid once");
}

/// A cancellation answered while Temporal is down is refunded once Temporal
/// is back, without waiting for the sweep (off here, as in the fault
/// suites): `serve` keeps starting the refund's workflow for a while.
#[tokio::test]
async fn a_refund_asked_while_temporal_is_down_is_paid_once_it_returns() {
    let mut temporal = support::servers::Temporal::start();
    let mut s = support::isolated_settings(false).await;
    s.temporal.host = temporal.host();
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_failure_rate = 0.0;
    s.booking.refund_failure_rate = 0.0;
    let app = TestApp::with_worker(s).await;
    let (order, reference) = book(&app, FL101, &["9D"], "Hopper").await;
    temporal.stop();
    let (code, body) = cancel(&app, &reference, "Hopper", None).await;
    assert_eq!(code, 202, "the request is recorded in Postgres: {body}");
    temporal.restart();
    wait_status(&app, &order, "REFUNDED").await;
}
