//! The booking workflow end to end: real Postgres, Redis, Temporal dev
//! server, a `flightctl worker` process and the API in-process, with short
//! timeouts (helpers in `tests/support/booking.rs`).
//!
//! Holding seats: a hold, its changes and its expiry, cancelling, the
//! edge's validation, and many buyers of the same seats.

#[path = "support/booking.rs"]
mod booking;
mod support;

use std::time::Duration;

use flightctl::domain::{FlightId, OrderId, OrderStatus};
use serde_json::{Value, json};
use support::{FL101, FL102, FL201, TestApp};
use temporalio_client::WorkflowCountOptions;
use uuid::Uuid;

use booking::*;

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
    // Rows 1–3 of the seed are business, at three times the $350 fare.
    assert_eq!(s["totalPriceCents"], 2 * 105_000);
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
    // Whole seconds from the change to the status read: a slow machine
    // spends some of the reset hold before the read, never more.
    let changed_at = std::time::Instant::now();
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
    let spent = changed_at.elapsed().as_secs() as i64;
    assert!(
        after + spent >= 7,
        "back near the full 8 s: {after} left, {spent} s after the change"
    );
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
    let me: OrderId = order.parse().unwrap();
    assert_eq!(
        holds.get(&support::seat("4A")),
        Some(&me),
        "the kept seat is still mine: {holds:?}"
    );
    assert_eq!(holds.get(&support::seat("4C")), Some(&me));
    assert!(!holds.contains_key(&support::seat("4B")));
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
    let (me, them): (OrderId, OrderId) = (mine.parse().unwrap(), theirs.parse().unwrap());
    assert_eq!(
        (
            holds.get(&support::seat("9A")),
            holds.get(&support::seat("9B")),
            holds.get(&support::seat("9C"))
        ),
        (Some(&me), Some(&me), Some(&them))
    );
    let (code, body) = create(&app, FL102, &["9B", "9D"]).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("SEATS_UNAVAILABLE"))
    );
    assert!(
        !held_by(&app, FL102)
            .await
            .contains_key(&support::seat("9D")),
        "nothing partly taken"
    );
}

/// Create as a well-behaved client, customer `n` of a crowd (each from its
/// own address): a 503 must carry `Retry-After`, and is retried after it
/// (beyond its in-flight limit the API turns calls away).
async fn create_as_a_client(app: &TestApp, n: usize, flight: &str, seats: &[&str]) -> (u16, Value) {
    let body = json!({"flightId": flight, "seats": seats});
    let http = support::customer_client(n);
    loop {
        let resp = http
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
    let attempts = (0..30).map(|n| create_as_a_client(&app, n, FL102, &["12F"]));
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

/// Lock, then check: a seat sold in Postgres whose Redis hold is gone is
/// never left held, seats the order held before stay held, and seats the
/// refused lock took are given back.
#[tokio::test]
async fn a_lock_never_keeps_a_seat_sold_meanwhile() {
    use flightctl::booking::BookingActivities;
    use flightctl::booking::messages::{LockSeats, Locked};
    let app = app(Duration::from_secs(60)).await;
    let flight: FlightId = FL201.parse().unwrap();
    // 3C is sold to another order; its hold is gone from Redis.
    let buyer = create_ok(&app, FL201, &["3C"]).await;
    pay(&app, &buyer, "00000").await;
    wait_for(&app, &buyer, "CONFIRMED", LONG).await;
    let acts = BookingActivities::new(app.pool.clone(), app.holds.clone(), 0.0);
    let me = OrderId::random();
    let seats = support::seat_ids;
    let lock = |wanted: &[&str], held: &[&str]| LockSeats {
        order_id: me,
        flight_id: flight,
        seats: seats(wanted),
        ttl_ms: 60_000,
        held: seats(held),
    };
    let mine = || async {
        let mut held: Vec<_> = app
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
        acts.lock(&lock(&["3A", "3D", "999F"], &["3A"]))
            .await
            .unwrap(),
        Locked::Unknown(seats(&["999F"]))
    );
    assert_eq!(mine().await, seats(&["3A"]), "3D and 999F given back");
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
