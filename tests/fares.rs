//! Cabins and fares against the real stack (issue 26): seats of two cabins
//! and an exit row are priced by the seat map, the order, the mail, the
//! ledger and the refund alike; a price fixed when a seat was taken stays
//! when fares change; a refundable fare refunds the price less its fee and
//! a non-refundable one cannot be cancelled.

mod support;

use std::time::Duration;

use flightctl::config::{Secret, Settings};
use flightctl::domain::OrderId;
use flightctl::money::Cents;
use serde_json::{Value, json};
use support::{FL101, FL102, TestApp};

const LONG: Duration = Duration::from_secs(120);

async fn settings() -> Settings {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_failure_rate = 0.0;
    s.booking.refund_failure_rate = 0.0;
    s
}

async fn status(app: &TestApp, order: &str) -> Value {
    let (code, body) = app.get(&format!("/api/orders/{order}/status")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_status(app: &TestApp, order: &str, wanted: &str) -> Value {
    support::eventually(&format!("order {order} {wanted}"), LONG, || async {
        let s = status(app, order).await;
        (s["status"] == wanted).then_some(s)
    })
    .await
}

/// Name a passenger (with a mail address) for every seat, pay, wait for the
/// sale: the booking reference.
async fn confirm(app: &TestApp, order: &str, seats: &[&str]) -> String {
    let passengers: Vec<Value> = seats
        .iter()
        .map(|s| json!({"seat": s, "givenName": "Ada", "familyName": "Lovelace", "email": "ada@example.com"}))
        .collect();
    let (code, body) = app
        .put(
            &format!("/api/orders/{order}/passengers"),
            json!({ "passengers": passengers }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    let confirmed = wait_status(app, order, "CONFIRMED").await;
    confirmed["bookingReference"].as_str().unwrap().to_string()
}

async fn sql(app: &TestApp, statement: &str) {
    let conn = app.pool.get().await.unwrap();
    conn.batch_execute(statement).await.unwrap();
}

fn seat<'a>(flight: &'a Value, id: &str) -> &'a Value {
    let seats = flight["seatMap"]["seats"].as_array().unwrap();
    seats.iter().find(|s| s["id"] == id).unwrap()
}

fn money(cents: i64) -> String {
    Cents::new(cents).to_string()
}

/// The seat map of FL102 (fees set by the caller): its cabins, each seat's
/// cabin, features and price, and the list's lowest price.
async fn assert_seat_map_prices(app: &TestApp) {
    let (code, flight) = app.get(&format!("/api/flights/{FL102}")).await;
    assert_eq!(code, 200, "{flight}");
    assert_eq!(
        flight["seatMap"]["cabins"],
        json!([
            {"code": "BUSINESS", "name": "Business", "firstRow": 1, "lastRow": 3,
             "priceCents": 96000, "refundable": true, "cancellationFeeCents": 5000},
            {"code": "ECONOMY", "name": "Economy", "firstRow": 4, "lastRow": 20,
             "priceCents": 32000, "refundable": true, "cancellationFeeCents": 2000},
        ])
    );
    let shown = |id: &str| {
        let s = seat(&flight, id);
        (
            s["cabin"].clone(),
            s["features"].clone(),
            s["priceCents"].as_i64().unwrap(),
        )
    };
    assert_eq!(shown("2A"), (json!("BUSINESS"), json!(["WINDOW"]), 96_000));
    assert_eq!(
        shown("14C"),
        (
            json!("ECONOMY"),
            json!(["AISLE", "EXIT_ROW", "EXTRA_LEGROOM"]),
            36_000
        )
    );
    assert_eq!(shown("5B"), (json!("ECONOMY"), json!(["MIDDLE"]), 32_000));
    assert_eq!(flight["priceCents"], 32_000, "the economy fare, as before");
    let (_, list) = app.get("/api/flights").await;
    let listed = list["flights"].as_array().unwrap();
    let fl102 = listed.iter().find(|f| f["id"] == FL102).unwrap();
    assert_eq!(fl102["fromPriceCents"], 32_000);
}

#[tokio::test]
async fn seat_map_order_mail_ledger_and_refund_agree_on_every_price() {
    let sink = support::smtp::SmtpSink::start();
    let mut s = settings().await;
    s.mail.smtp_url = Some(Secret::new(sink.url()));
    let app = TestApp::with_worker(s).await;
    // The seed's FL102: business rows 1–3 at three times the $320 economy
    // fare, exit row 14 with extra legroom ($25 + $15). Fees for this test.
    sql(
        &app,
        &format!(
            "UPDATE cabins SET cancellation_fee_cents = 5000 WHERE flight_id = '{FL102}' AND code = 'BUSINESS';
             UPDATE cabins SET cancellation_fee_cents = 2000 WHERE flight_id = '{FL102}' AND code = 'ECONOMY';"
        ),
    )
    .await;

    assert_seat_map_prices(&app).await;

    // The order: each seat at the seat map's price.
    let (code, created) = app
        .post(
            "/api/orders",
            json!({"flightId": FL102, "seats": ["2A", "14C", "5B"]}),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    let order = created["orderId"].as_str().unwrap().to_string();
    let held = status(&app, &order).await;
    assert_eq!(held["totalPriceCents"], 96_000 + 36_000 + 32_000);
    assert_eq!(
        held["seatPrices"],
        json!([
            {"seat": "2A", "cabin": "BUSINESS", "priceCents": 96000, "refundable": true, "cancellationFeeCents": 5000},
            {"seat": "5B", "cabin": "ECONOMY", "priceCents": 32000, "refundable": true, "cancellationFeeCents": 2000},
            {"seat": "14C", "cabin": "ECONOMY", "priceCents": 36000, "refundable": true, "cancellationFeeCents": 2000},
        ])
    );

    // Fares change while the order holds its seats: the held seats keep
    // their price, a seat taken now pays the new fare.
    sql(
        &app,
        &format!(
            "UPDATE cabins SET price_cents = 40000 WHERE flight_id = '{FL102}' AND code = 'ECONOMY'"
        ),
    )
    .await;
    let (code, body) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["2A", "14C", "6B"]}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let changed = status(&app, &order).await;
    let prices: Vec<(String, i64)> = changed["seatPrices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["seat"].as_str().unwrap().to_string(),
                p["priceCents"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        prices,
        [
            ("2A".to_string(), 96_000),
            ("6B".to_string(), 40_000),
            ("14C".to_string(), 36_000)
        ]
    );
    let total = 96_000 + 36_000 + 40_000;
    assert_eq!(changed["totalPriceCents"], total);
    let (_, flight) = app.get(&format!("/api/flights/{FL102}")).await;
    assert_eq!(
        seat(&flight, "7B")["priceCents"],
        40_000,
        "new holds pay the new fare"
    );

    let reference = confirm(&app, &order, &["2A", "14C", "6B"]).await;
    let id: OrderId = order.parse().unwrap();

    // The charge is the total; the mail itemises it.
    assert_eq!(
        support::ledger_rows(&app.pool, id).await,
        [("CHARGE".to_string(), total, format!("pay-{id}-1"))]
    );
    let mails = sink.wait_for(1, LONG).await;
    let text = mails[0].body("text/plain");
    for needle in [
        format!("2A BUSINESS {}", money(96_000)),
        format!("14C ECONOMY {}", money(36_000)),
        format!("6B ECONOMY {}", money(40_000)),
        money(total),
    ] {
        assert!(text.contains(&needle), "the mail lacks {needle}: {text}");
    }

    // Manage-my-booking shows what a cancellation gives back, then it does.
    let refund = total - 5_000 - 2_000 - 2_000;
    let who = json!({"reference": reference, "lastName": "Lovelace"});
    let (code, booking) = app.post("/api/bookings/lookup", who).await;
    assert_eq!(code, 200, "{booking}");
    assert_eq!(booking["totalPriceCents"], total);
    assert_eq!(booking["refundableCents"], refund);
    assert_eq!(booking["seatPrices"], changed["seatPrices"]);
    let (code, body) = app
        .post(
            &format!("/api/bookings/{reference}/cancel"),
            json!({"lastName": "Lovelace"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    let refunded = wait_status(&app, &order, "REFUNDED").await;
    assert_eq!(refunded["refund"]["amountCents"], refund);
    assert_eq!(refunded["totalPriceCents"], total, "what was paid stays");
    let rows = support::ledger_rows(&app.pool, id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[1].0.as_str(), rows[1].1), ("REFUND", refund));
    let mails = sink.wait_for(2, LONG).await;
    let text = mails[1].body("text/plain");
    assert!(
        text.contains(&format!("We refunded {}", money(refund))),
        "{text}"
    );
    // The fees kept balance the ledger.
    let money = flightctl::store::ledger::check(&app.pool).await.unwrap();
    assert!(money.discrepancies.is_empty(), "{:?}", money.discrepancies);
}

#[tokio::test]
async fn a_non_refundable_booking_cannot_be_cancelled() {
    let app = TestApp::with_worker(settings().await).await;
    sql(
        &app,
        &format!(
            "UPDATE cabins SET refundable = FALSE WHERE flight_id = '{FL101}' AND code = 'ECONOMY'"
        ),
    )
    .await;
    let (code, flight) = app.get(&format!("/api/flights/{FL101}")).await;
    assert_eq!(code, 200);
    assert_eq!(flight["seatMap"]["cabins"][1]["refundable"], false);
    let (code, created) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": ["9C"]}))
        .await;
    assert_eq!(code, 201, "{created}");
    let order = created["orderId"].as_str().unwrap().to_string();
    let reference = confirm(&app, &order, &["9C"]).await;
    // A later change of the rules does not alter the sold fare's.
    sql(
        &app,
        &format!("UPDATE cabins SET refundable = TRUE WHERE flight_id = '{FL101}'"),
    )
    .await;

    let who = json!({"reference": reference, "lastName": "Lovelace"});
    let (code, booking) = app.post("/api/bookings/lookup", who).await;
    assert_eq!(code, 200, "{booking}");
    assert_eq!(booking["refundableCents"], Value::Null);
    assert_eq!(booking["seatPrices"][0]["refundable"], false);
    let (code, body) = app
        .post(
            &format!("/api/bookings/{reference}/cancel"),
            json!({"lastName": "Lovelace"}),
        )
        .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("FARE_NOT_REFUNDABLE")),
        "{body}"
    );
    // Nothing changed.
    assert_eq!(status(&app, &order).await["status"], "CONFIRMED");
    let conn = app.pool.get().await.unwrap();
    let id: OrderId = order.parse().unwrap();
    let refunds: i64 = conn
        .query_one("SELECT count(*) FROM refunds WHERE order_id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(refunds, 0);
}

#[tokio::test]
async fn operators_set_cabins_and_change_fares_for_new_holds_audited() {
    use reqwest::Method as M;
    let app = TestApp::spawn(settings().await).await;
    let ops = support::signed_in_operator(&app, "grace").await;
    let send = |method: M, path: &str, body: Value| {
        let mut req = ops.request(method, app.url(path));
        if !body.is_null() {
            req = req.json(&body);
        }
        async move {
            let resp = req.send().await.unwrap();
            let code = resp.status().as_u16();
            (code, resp.json::<Value>().await.unwrap_or_default())
        }
    };
    let cabins = json!([
        {"code": "BUSINESS", "firstRow": 1, "lastRow": 2, "priceCents": 50000,
         "refundable": true, "cancellationFeeCents": 10000},
        {"code": "ECONOMY", "firstRow": 3, "lastRow": 10, "priceCents": 15000,
         "refundable": false},
    ]);
    let new = json!({"flightNumber": "FL777", "origin": "BER", "destination": "LIS",
        "departureTime": "2031-06-01T08:30:00Z", "arrivalTime": "2031-06-01T11:45:00Z",
        "rows": 10, "seatLetters": "ABCDEF", "priceCents": 15000,
        "cabins": cabins, "exitRows": [6], "surcharges": {"EXIT_ROW": 3000}});
    for (path, value, says) in [
        ("/1/firstRow", json!(2), "rows 1–1 are in no cabin"),
        ("/1/firstRow", json!(2), "overlap"),
        ("/1/lastRow", json!(9), "rows 10–10 are in no cabin"),
        ("/0/cancellationFeeCents", json!(-1), "cancellationFeeCents"),
        ("/0/priceCents", json!(-5), "priceCents"),
        ("/0/code", json!("COACH"), "code must be"),
    ] {
        let mut bad = new.clone();
        *bad["cabins"].pointer_mut(path).unwrap() = value;
        if says.starts_with("rows 1–1") {
            bad["cabins"][0]["firstRow"] = json!(2);
            bad["cabins"][1]["firstRow"] = json!(3);
        }
        let (code, body) = send(M::POST, "/api/ops/flights", bad).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["error"], "INVALID_CABINS", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
    let (_, public) = app.get("/api/flights").await;
    assert!(!public.to_string().contains("FL777"), "nothing was added");

    let (code, added) = send(M::POST, "/api/ops/flights", new).await;
    assert_eq!(code, 201, "{added}");
    let id = added["id"].as_str().unwrap().to_string();
    let (_, flight) = app.get(&format!("/api/flights/{id}")).await;
    assert_eq!(flight["seatMap"]["cabins"][1]["refundable"], false);
    assert_eq!(seat(&flight, "1A")["priceCents"], 50_000);
    assert_eq!(
        seat(&flight, "6C")["priceCents"],
        18_000,
        "exit row surcharge"
    );
    assert_eq!(
        seat(&flight, "6C")["features"],
        json!(["AISLE", "EXIT_ROW", "EXTRA_LEGROOM"])
    );
    assert_eq!(flight["fromPriceCents"], 15_000);

    let fares =
        json!({"fares": [{"code": "ECONOMY", "priceCents": 17000, "cancellationFeeCents": 500}]});
    let (code, body) = send(M::PUT, &format!("/api/ops/flights/{id}/fares"), fares).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["cabins"][1]["priceCents"], 17_000);
    assert_eq!(body["cabins"][1]["refundable"], false, "left as it was");
    let (_, flight) = app.get(&format!("/api/flights/{id}")).await;
    assert_eq!(seat(&flight, "5B")["priceCents"], 17_000);
    let first = json!({"fares": [{"code": "FIRST", "priceCents": 1}]});
    let (code, body) = send(M::PUT, &format!("/api/ops/flights/{id}/fares"), first).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("INVALID_CABINS")),
        "{body}"
    );

    let (_, audit) = send(M::GET, "/api/ops/audit", Value::Null).await;
    let set: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "set_fares")
        .collect();
    assert_eq!(set.len(), 2, "{audit}");
    assert!(set.iter().any(|e| e["outcome"] == "ok"));
    assert!(set.iter().any(|e| e["outcome"] == "INVALID_CABINS"));
}
