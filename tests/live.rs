//! Live updates: order and seat-map streams pushed from Postgres
//! announcements (real Postgres, Redis, Temporal dev server and a worker).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::sse::{self, EventStream};
use support::{FL101, FL102, TestApp};
use tokio::time::Instant;

const SOON: Duration = Duration::from_secs(10);
/// A change must reach an open order stream within this.
const ORDER_PUSH: Duration = Duration::from_millis(250);
/// A seat change must reach an open seat-map stream within this.
const SEAT_PUSH: Duration = Duration::from_millis(500);

async fn app() -> TestApp {
    let mut s = support::isolated_settings(true).await;
    s.booking.seat_reservation_timeout = Duration::from_secs(60);
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_failure_rate = 0.0;
    TestApp::with_worker(s).await
}

async fn create_ok(app: &TestApp, flight: &str, seats: &[&str]) -> String {
    let (code, body) = app
        .post("/api/orders", json!({"flightId": flight, "seats": seats}))
        .await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().to_string()
}

fn version(event: &sse::Event) -> u64 {
    event.id.as_deref().unwrap().parse().unwrap()
}

#[tokio::test]
async fn order_events_are_pushed_with_versions_and_resume_after_last_event_id() {
    let app = app().await;
    let order = create_ok(&app, FL101, &["3A"]).await;
    let url = app.url(&format!("/api/orders/{order}/events"));
    let client = sse::client();
    let mut stream = EventStream::open(&client, &url, None).await;
    let first = stream.next(SOON).await.unwrap();
    assert_eq!(first.data["status"], "SEATS_RESERVED");
    assert!(first.data["timerRemaining"].as_u64().unwrap() > 50);
    let v1 = version(&first);

    let (code, body) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["3A", "3B"]}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (changed, took) = stream
        .wait_for(ORDER_PUSH, |e| e.data["seats"] == json!(["3A", "3B"]))
        .await;
    assert!(version(&changed) > v1, "{changed:?}");
    println!("order change pushed {took:?} after the answer");

    // A reconnect that saw v1 gets the current row at once; one that saw
    // the current row gets nothing until the next change.
    let missed = EventStream::open(&client, &url, Some(&v1.to_string()))
        .await
        .next(SOON)
        .await
        .unwrap();
    assert_eq!(missed.id, changed.id);
    let mut caught_up = EventStream::open(&client, &url, changed.id.as_deref()).await;
    assert!(
        caught_up
            .try_next(Duration::from_millis(500))
            .await
            .is_err(),
        "nothing new to send"
    );

    let (code, _) = app.delete(&format!("/api/orders/{order}")).await;
    assert_eq!(code, 200);
    for s in [&mut stream, &mut caught_up] {
        let (ended, _) = s
            .wait_for(ORDER_PUSH, |e| e.data["status"] == "CANCELLED")
            .await;
        assert!(version(&ended) > version(&changed));
        assert!(
            s.next(SOON).await.is_none(),
            "closed after a terminal status"
        );
    }
}

#[tokio::test]
async fn status_is_answered_from_the_row_without_a_worker() {
    let mut app = app().await;
    let order = create_ok(&app, FL101, &["4A"]).await;
    app.worker().stop();
    let start = Instant::now();
    let (code, body) = app.get(&format!("/api/orders/{order}/status")).await;
    assert_eq!(code, 200, "{body}");
    assert!(start.elapsed() < Duration::from_secs(1), "no engine call");
    assert_eq!(body["status"], "SEATS_RESERVED");
    let left = body["timerRemaining"].as_u64().unwrap();
    assert!((55..=60).contains(&left), "{body}");
}

fn seat_status(event: &sse::Event, seat: &str) -> bool {
    event.kind == "seat" && event.data["seat"] == seat
}

#[tokio::test]
async fn seat_map_and_flight_list_streams_push_holds_releases_and_sales() {
    let app = app().await;
    let client = sse::client();
    let url = app.url(&format!("/api/flights/{FL102}/events"));
    let mut seats = EventStream::open(&client, &url, None).await;
    let snapshot = seats.next(SOON).await.unwrap();
    assert_eq!(snapshot.kind, "seats");
    let all = snapshot.data["seats"].as_array().unwrap();
    assert_eq!(all.len(), app.seat_statuses(FL102).await.len());
    assert!(all.contains(&json!({"seat": "9C", "status": "available"})));
    let mut list = EventStream::open(&client, &app.url("/api/flights/events"), None).await;
    let flights = list.next(SOON).await.unwrap();
    assert_eq!(flights.kind, "flights");
    let before = available(&flights.data["flights"], FL102);

    let order = create_ok(&app, FL102, &["9C"]).await;
    let (held, took) = seats.wait_for(SEAT_PUSH, |e| seat_status(e, "9C")).await;
    assert_eq!(held.data["status"], "reserved");
    println!("hold pushed {took:?} after the answer");
    let (change, _) = list
        .wait_for(SEAT_PUSH, |e| {
            e.kind == "flight" && e.data["flightId"] == FL102
        })
        .await;
    assert_eq!(change.data["availableSeats"], before - 1);

    let (code, _) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["9D"]}),
        )
        .await;
    assert_eq!(code, 200);
    let (released, _) = seats.wait_for(SEAT_PUSH, |e| seat_status(e, "9C")).await;
    assert_eq!(released.data["status"], "available");

    app.name_passengers(&order).await;
    let (code, _) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202);
    seats
        .wait_for(SOON, |e| {
            seat_status(e, "9D") && e.data["status"] == "booked"
        })
        .await;

    let (code, body) = app.get("/api/flights/nope/events").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("INVALID_FLIGHT_ID"))
    );
    let unknown = format!("/api/flights/{}/events", uuid::Uuid::new_v4());
    assert_eq!(app.get(&unknown).await.0, 404);
}

fn available(flights: &Value, id: &str) -> i64 {
    let flight = flights
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["flightId"] == id);
    flight.unwrap()["availableSeats"].as_i64().unwrap()
}

#[tokio::test]
async fn streams_recover_after_the_listening_connection_is_killed() {
    let app = app().await;
    let order = create_ok(&app, FL101, &["5A"]).await;
    let client = sse::client();
    let url = app.url(&format!("/api/orders/{order}/events"));
    let mut stream = EventStream::open(&client, &url, None).await;
    stream.next(SOON).await.unwrap();
    let conn = app.pool.get().await.unwrap();
    let killed = conn
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'flightctl-live' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(killed, 1, "one listening connection per serve");
    // Changed while nobody listens: the re-listen re-reads and sends it.
    let (code, _) = app.delete(&format!("/api/orders/{order}")).await;
    assert_eq!(code, 200);
    let (ended, _) = stream
        .wait_for(SOON, |e| e.data["status"] == "CANCELLED")
        .await;
    assert!(ended.id.is_some());
}

#[tokio::test]
async fn one_page_stream_carries_the_flight_list_the_seat_map_and_the_order() {
    let app = app().await;
    let order = create_ok(&app, FL101, &["6A"]).await;
    let client = sse::client();
    let url = app.url(&format!("/api/events?flight={FL102}&order={order}"));
    let mut page = EventStream::open(&client, &url, None).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(page.next(SOON).await.unwrap().kind);
    }
    kinds.sort();
    assert_eq!(kinds, ["flights", "order", "seats"]);

    // The seat map and the flight list are parts of the stream that may
    // arrive in either order.
    let other = create_ok(&app, FL102, &["6B"]).await;
    let (mut seat_held, mut list_changed) = (false, false);
    while !(seat_held && list_changed) {
        let (e, _) = page
            .wait_for(SEAT_PUSH, |e| e.kind == "seat" || e.kind == "flight")
            .await;
        seat_held |= seat_status(&e, "6B") && e.data["status"] == "reserved";
        list_changed |= e.kind == "flight" && e.data["flightId"] == FL102;
    }
    let (code, _) = app.delete(&format!("/api/orders/{order}")).await;
    assert_eq!(code, 200);
    let (ended, _) = page.wait_for(ORDER_PUSH, |e| e.kind == "order").await;
    assert_eq!(ended.data["status"], "CANCELLED");
    assert!(ended.id.is_some());
    // The order part has ended; the page's stream goes on.
    app.delete(&format!("/api/orders/{other}")).await;
    page.wait_for(SEAT_PUSH, |e| {
        seat_status(e, "6B") && e.data["status"] == "available"
    })
    .await;

    for (query, code) in [
        ("flight=nope".to_string(), 400),
        (format!("order={}", uuid::Uuid::new_v4()), 404),
        (format!("flight={}", uuid::Uuid::new_v4()), 404),
    ] {
        let (got, body) = app.get(&format!("/api/events?{query}")).await;
        assert_eq!(got, code, "{query}: {body}");
    }
}

#[tokio::test]
async fn sigterm_ends_the_streams_and_serve_stops_at_once() {
    let settings = support::isolated_settings(false).await;
    support::prepare_database(&settings).await;
    let (mut serve, port, _log) = support::serve_process(&settings, &[]);
    let client = sse::client();
    let url = format!("http://127.0.0.1:{port}/api/events?flight={FL101}");
    let mut page = EventStream::open(&client, &url, None).await;
    for _ in ["flights", "seats"] {
        page.next(SOON).await.unwrap();
    }
    let start = Instant::now();
    unsafe { libc::kill(serve.pid() as i32, libc::SIGTERM) };
    let ended = page.try_next(Duration::from_secs(5)).await;
    let ended = ended.map(|e| e.map(|e| e.kind));
    assert_eq!(ended, Ok(None), "the stream ends on shutdown");
    let status = serve
        .wait_exit(Duration::from_secs(5))
        .expect("serve exits");
    assert!(status.success(), "{status:?}");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "stopped in {took:?}, not after a timeout"
    );
}

/// Many streams of one seat map share each change: every stream gets each
/// seat's hold and release exactly once, in order, whichever endpoint it
/// follows the map through.
#[tokio::test]
async fn every_seat_map_stream_gets_each_change_exactly_once() {
    let app = app().await;
    let client = sse::client();
    let urls = [
        app.url(&format!("/api/flights/{FL102}/events")),
        app.url(&format!("/api/flights/{FL102}/events")),
        app.url(&format!("/api/events?flight={FL102}")),
    ];
    let mut streams = Vec::new();
    for url in &urls {
        let mut stream = EventStream::open(&client, url, None).await;
        stream.wait_for(SOON, |e| e.kind == "seats").await;
        streams.push(stream);
    }
    let mut orders = Vec::new();
    for seat in ["12A", "12B", "12C"] {
        orders.push(create_ok(&app, FL102, &[seat]).await);
    }
    let mut seen: Vec<Vec<(String, String)>> = vec![Vec::new(); streams.len()];
    // Every hold reaches every stream before the releases start, so no
    // hold and release fall into one batch.
    for status in ["reserved", "available"] {
        if status == "available" {
            for order in &orders {
                let (code, body) = app.delete(&format!("/api/orders/{order}")).await;
                assert_eq!(code, 200, "{body}");
            }
        }
        for (i, stream) in streams.iter_mut().enumerate() {
            while seen[i].iter().filter(|(_, s)| s == status).count() < 3 {
                let event = stream.next(SOON).await.expect("the stream stays open");
                assert_ne!(event.kind, "seats", "stream {i} was resynchronised");
                if event.kind != "seat" {
                    continue;
                }
                let seat = event.data["seat"].as_str().unwrap().to_string();
                let now = event.data["status"].as_str().unwrap().to_string();
                seen[i].push((seat, now));
            }
        }
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let seen = &seen[i];
        for seat in ["12A", "12B", "12C"] {
            let of_seat: Vec<&str> = seen
                .iter()
                .filter(|(s, _)| s == seat)
                .map(|(_, status)| status.as_str())
                .collect();
            assert_eq!(
                of_seat,
                ["reserved", "available"],
                "stream {i}, seat {seat}"
            );
        }
        // Nothing more after the last release: no change sent twice.
        while let Ok(Some(event)) = stream.try_next(Duration::from_secs(1)).await {
            assert!(
                event.kind != "seat",
                "stream {i}: a change again: {event:?}"
            );
        }
    }
}
