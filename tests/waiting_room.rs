//! The waiting room of a flash sale (issue 25; SPEC section 14): scheduled
//! sales, the queue per flight in Redis, admissions paced by the engine,
//! and creates that need an admission while a room is active. Clients are
//! told apart by the address a trusted proxy forwards
//! (`TRUSTED_PROXIES=127.0.0.1/32`, each client naming itself in
//! `X-Forwarded-For`), as the abuse rules count them.

mod support;

use std::time::Duration;

use flightctl::config::{Settings, TrustedProxies};
use serde_json::{Value, json};
use support::sse::EventStream;
use support::{ADMISSION_SECRET, FL101, FL102, TestApp};

/// Bounds on waits for the server; never a timing assertion.
const SOON: Duration = Duration::from_secs(20);

async fn settings(temporal: bool) -> Settings {
    let mut s = support::isolated_settings(temporal).await;
    s.server.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    s
}

/// Client `n`'s address, as the proxy forwards it.
fn client(n: usize) -> String {
    format!("198.51.{}.{}", 100 + n / 250, n % 250 + 1)
}

async fn send(
    app: &TestApp,
    who: usize,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .header("X-Forwarded-For", client(who));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn join(app: &TestApp, who: usize, flight: &str) -> (u16, Value) {
    let path = format!("/api/flights/{flight}/queue");
    send(app, who, reqwest::Method::POST, &path, None, &[]).await
}

async fn poll(app: &TestApp, who: usize, flight: &str, ticket: &str) -> (u16, Value) {
    let path = format!("/api/flights/{flight}/queue/{ticket}");
    send(app, who, reqwest::Method::GET, &path, None, &[]).await
}

#[tokio::test]
async fn a_client_joins_once_and_reads_its_ticket_by_poll_and_by_stream() {
    let app = TestApp::spawn(settings(false).await).await;
    let (code, first) = join(&app, 1, FL102).await;
    assert_eq!(code, 201, "{first}");
    let ticket = first["ticket"].as_str().expect("a ticket").to_string();
    // Nothing scheduled and nobody ahead: admitted at once, with a token.
    assert_eq!(first["state"], "ADMITTED", "{first}");
    assert!(first["admission"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(first["admittedUntil"].is_string(), "{first}");
    assert!(first["position"].is_null() && first["opensAt"].is_null());

    let (code, again) = join(&app, 1, FL102).await;
    assert_eq!((code, &again["ticket"]), (200, &first["ticket"]), "{again}");
    let (code, other) = join(&app, 2, FL102).await;
    assert_eq!(code, 201);
    assert_ne!(other["ticket"], first["ticket"]);

    let (code, polled) = poll(&app, 1, FL102, &ticket).await;
    assert_eq!((code, &polled), (200, &first));

    let url = app.url(&format!("/api/flights/{FL102}/queue/{ticket}/events"));
    let mut events = EventStream::open(&support::sse::client(), &url, None).await;
    let event = events.next(SOON).await.expect("the ticket at once");
    assert_eq!(event.data, first);

    let (code, missing) = poll(&app, 1, FL102, "no-such-ticket").await;
    assert_eq!(
        (code, missing["error"].as_str()),
        (404, Some("TICKET_NOT_FOUND"))
    );
    let (code, bad) = join(&app, 1, "not-a-flight").await;
    assert_eq!(
        (code, bad["error"].as_str()),
        (400, Some("INVALID_FLIGHT_ID"))
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (code, none) = join(&app, 1, unknown).await;
    assert_eq!(
        (code, none["error"].as_str()),
        (404, Some("FLIGHT_NOT_FOUND"))
    );
}

/// An operator adds a flight of `rows` × `letters` seats, its sale
/// scheduled at `opens_at` if given; its id.
async fn add_flight(
    app: &TestApp,
    number: &str,
    letters: &str,
    opens_at: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let ops = support::signed_in_operator(app, "ada").await;
    let mut body = json!({"flightNumber": number, "origin": "BER", "destination": "LIS",
        "departureTime": "2031-06-01T08:30:00Z", "arrivalTime": "2031-06-01T11:45:00Z",
        "rows": 1, "seatLetters": letters, "priceCents": 12900});
    if let Some(at) = opens_at {
        body["salesOpenAt"] = json!(at.to_rfc3339());
    }
    let resp = ops
        .post(app.url("/api/ops/flights"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let flight: Value = resp.json().await.unwrap();
    assert_eq!(code, 201, "{flight}");
    flight["id"].as_str().expect("an id").to_string()
}

async fn create(
    app: &TestApp,
    who: usize,
    flight: &str,
    seat: &str,
    admission: Option<&str>,
) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = admission.map(|a| ("Admission", a)).into_iter().collect();
    let body = json!({"flightId": flight, "seats": [seat]});
    send(
        app,
        who,
        reqwest::Method::POST,
        "/api/orders",
        Some(body),
        &headers,
    )
    .await
}

/// Poll `who`'s ticket until `state`.
async fn until_state(app: &TestApp, who: usize, flight: &str, ticket: &str, state: &str) -> Value {
    support::eventually(&format!("ticket {ticket} {state}"), SOON, || async {
        let (code, t) = poll(app, who, flight, ticket).await;
        (code == 200 && t["state"] == state).then_some(t)
    })
    .await
}

/// Creates need the admission: missing, forged, another flight's and
/// garbage tokens are refused, and nothing is held.
async fn refuses_creates_without_a_good_admission(
    app: &TestApp,
    flight: &str,
    first: usize,
    ticket: &str,
) {
    // Creates need the admission: missing, forged, other flight refused.
    let (code, body) = create(app, first + 1, flight, "1A", None).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("QUEUE_REQUIRED")),
        "{body}"
    );
    assert_eq!(
        body["queueUrl"],
        json!(format!("/api/flights/{flight}/queue"))
    );
    let until = 4_102_444_800_000; // 2100
    let forged =
        flightctl::waiting::token::sign("not-the-secret", flight.parse().unwrap(), ticket, until);
    let other =
        flightctl::waiting::token::sign(ADMISSION_SECRET, FL101.parse().unwrap(), ticket, until);
    for bad in [forged.as_str(), other.as_str(), "garbage"] {
        let (code, body) = create(app, first + 1, flight, "1A", Some(bad)).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (403, Some("ADMISSION_INVALID")),
            "{body}"
        );
    }
    assert!(
        app.seat_statuses(flight)
            .await
            .values()
            .all(|s| s == "available")
    );
}

#[tokio::test]
async fn a_scheduled_sale_refuses_early_shuffles_its_prequeue_admits_and_sells_out_once() {
    let app = TestApp::with_worker(settings(true).await).await;
    let opens_at = chrono::Utc::now() + chrono::Duration::seconds(6);
    let flight = add_flight(&app, "FL777", "ABC", Some(opens_at)).await;

    let (_, list) = app.get("/api/flights").await;
    let listed = list["flights"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == flight.as_str())
        .cloned()
        .expect("listed");
    let opens: chrono::DateTime<chrono::Utc> = listed["salesOpenAt"]
        .as_str()
        .expect("salesOpenAt")
        .parse()
        .unwrap();
    let (_, detail) = app.get(&format!("/api/flights/{flight}")).await;
    assert_eq!(detail["salesOpenAt"], listed["salesOpenAt"]);

    // Before the opening: refused, nothing held.
    let (code, early) = create(&app, 0, &flight, "1A", None).await;
    assert_eq!(
        (code, early["error"].as_str()),
        (409, Some("SALES_NOT_OPEN")),
        "{early}"
    );
    assert_eq!(
        early["opensAt"]
            .as_str()
            .map(|a| a.parse::<chrono::DateTime<chrono::Utc>>().unwrap()),
        Some(opens)
    );
    let statuses = app.seat_statuses(&flight).await;
    assert!(statuses.values().all(|s| s == "available"), "{statuses:?}");

    // The pre-queue: twelve buyers, in join order.
    let buyers = 12;
    let mut tickets = Vec::new();
    for who in 1..=buyers {
        let (code, t) = join(&app, who, &flight).await;
        assert_eq!(code, 201, "{t}");
        assert_eq!(t["state"], "PREQUEUE", "{t}");
        assert!(t["position"].is_null() && t["ahead"].is_null(), "{t}");
        assert_eq!(t["opensAt"], listed["salesOpenAt"]);
        tickets.push(t["ticket"].as_str().unwrap().to_string());
    }

    // The opening: shuffled once, as the recorded seed says.
    let seed =
        flightctl::store::queue::shuffle_seed(flight.parse().unwrap(), opens.timestamp_millis());
    println!("pre-queue shuffle seed {seed}");
    let order = flightctl::store::queue::shuffled(buyers, seed);
    assert_ne!(order, (0..buyers).collect::<Vec<_>>(), "shuffled");
    // The last of the line follows its ticket on a stream.
    let last = order[buyers - 1];
    let url = app.url(&format!(
        "/api/flights/{flight}/queue/{}/events",
        tickets[last]
    ));
    let mut last_stream = EventStream::open(&support::sse::client(), &url, None).await;
    tokio::time::sleep_until(
        tokio::time::Instant::now() + (opens - chrono::Utc::now()).to_std().unwrap_or_default(),
    )
    .await;
    let mut views = Vec::new();
    for (i, ticket) in tickets.iter().enumerate() {
        let t = support::eventually("opened", SOON, || async {
            let (_, t) = poll(&app, i + 1, &flight, ticket).await;
            (t["state"] != "PREQUEUE").then_some(t)
        })
        .await;
        views.push(t);
    }
    // Three seats: the first three of the shuffled line are admitted, the
    // rest wait in its order, each told its place and an estimate.
    for (place, &buyer) in order.iter().enumerate() {
        let t = &views[buyer];
        if place < 3 {
            assert_eq!(t["state"], "ADMITTED", "place {place}: {t}");
        } else {
            assert_eq!(t["state"], "WAITING", "place {place}: {t}");
            assert_eq!(t["position"], json!(place - 2), "{t}");
            assert_eq!(t["ahead"], json!(place - 3), "{t}");
            assert!(t["estimatedWaitSeconds"].is_u64(), "{t}");
        }
    }
    let admitted: Vec<usize> = order[..3].to_vec();
    let token = |b: usize| views[b]["admission"].as_str().unwrap().to_string();
    let first = admitted[0];

    refuses_creates_without_a_good_admission(&app, &flight, first, &tickets[first]).await;

    // The admitted buyers buy the three seats; a token serves one order.
    let mut orders = Vec::new();
    for (b, seat) in admitted.iter().zip(["1A", "1B", "1C"]) {
        let (code, order) = create(&app, b + 1, &flight, seat, Some(&token(*b))).await;
        assert_eq!(code, 201, "{order}");
        orders.push(order["orderId"].as_str().unwrap().to_string());
    }
    let (code, body) = create(&app, first + 1, &flight, "1A", Some(&token(first))).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (403, Some("ADMISSION_INVALID")),
        "reused: {body}"
    );
    for order in &orders {
        assert_eq!(app.name_passengers(order).await.0, 200);
        let (code, paid) = app
            .post(
                &format!("/api/orders/{order}/pay"),
                json!({"paymentCode": "00000"}),
            )
            .await;
        assert_eq!(code, 202, "{paid}");
    }
    for order in &orders {
        support::eventually("confirmed", SOON, || async {
            let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
            (s["status"] == "CONFIRMED").then_some(())
        })
        .await;
    }
    // Sold out: every waiting buyer is told, the stream pushes it.
    for (place, &buyer) in order.iter().enumerate().skip(3) {
        let t = until_state(&app, buyer + 1, &flight, &tickets[buyer], "SOLD_OUT").await;
        assert!(t["position"].is_null(), "place {place}: {t}");
    }
    loop {
        let event = last_stream.next(SOON).await.expect("the stream goes on");
        if event.data["state"] == "SOLD_OUT" {
            break;
        }
    }
    let (_, sold) = app.get(&format!("/api/flights/{flight}")).await;
    let booked = sold["seatMap"]["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "booked")
        .count();
    assert_eq!(booked, 3, "sold exactly once");
}

#[tokio::test]
async fn a_place_lapses_after_its_grace_and_an_admission_after_its_ttl() {
    let mut s = settings(false).await;
    s.server.queue_grace = Duration::from_secs(2);
    s.server.admission_ttl = Duration::from_secs(3);
    let app = TestApp::spawn(s).await;
    let flight = add_flight(&app, "FL778", "A", None).await;
    // One seat: the first joiner is admitted, the next two wait.
    let (_, a) = join(&app, 1, &flight).await;
    assert_eq!(a["state"], "ADMITTED", "{a}");
    let (_, b) = join(&app, 2, &flight).await;
    let (_, c) = join(&app, 3, &flight).await;
    assert_eq!(
        (b["state"].as_str(), b["position"].as_u64()),
        (Some("WAITING"), Some(1)),
        "{b}"
    );
    assert_eq!(
        (c["state"].as_str(), c["position"].as_u64()),
        (Some("WAITING"), Some(2)),
        "{c}"
    );
    let (code, body) = create(&app, 9, &flight, "1A", None).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("QUEUE_REQUIRED")),
        "a live queue: {body}"
    );

    // Buyer 2 keeps polling, buyer 3 has gone, buyer 1 never uses its
    // admission: 3's place lapses, 1's admission lapses, 2 is admitted.
    let (b_ticket, c_ticket) = (b["ticket"].as_str().unwrap(), c["ticket"].as_str().unwrap());
    let admitted = support::eventually("buyer 2 admitted", SOON, || async {
        let (_, t) = poll(&app, 2, &flight, b_ticket).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        (t["state"] == "ADMITTED").then_some(t)
    })
    .await;
    assert!(admitted["admission"].is_string(), "{admitted}");
    let (_, c_now) = poll(&app, 3, &flight, c_ticket).await;
    assert_eq!(c_now["state"], "EXPIRED", "{c_now}");
    let (_, a_now) = poll(&app, 1, &flight, a["ticket"].as_str().unwrap()).await;
    assert_eq!(a_now["state"], "EXPIRED", "{a_now}");
    assert!(a_now.get("admission").is_none(), "{a_now}");
    // A lapsed client joins again: a new ticket, at the back.
    let (code, again) = join(&app, 3, &flight).await;
    assert_eq!(code, 201, "{again}");
    assert_ne!(again["ticket"], c["ticket"]);
}

/// Two `serve` processes on one Redis: a ticket joined on one is read,
/// with its place, on the other, and survives a restart of either.
#[tokio::test]
async fn the_queue_is_shared_by_two_serves_and_survives_a_restart() {
    let s = settings(false).await;
    let pool = support::prepare_database(&s).await;
    let (_one, port_one, _) = support::serve_process(&s, &[]);
    let (mut two, port_two, log_two) = support::serve_process(&s, &[]);
    let one = TestApp::served_at(
        s.clone(),
        format!("http://127.0.0.1:{port_one}"),
        pool.clone(),
    )
    .await;
    let other = TestApp::served_at(
        s.clone(),
        format!("http://127.0.0.1:{port_two}"),
        pool.clone(),
    )
    .await;
    let flight = add_flight(&one, "FL779", "A", None).await;
    let (_, first) = join(&one, 1, &flight).await;
    assert_eq!(first["state"], "ADMITTED");
    let mut tickets = Vec::new();
    for who in 2..=6 {
        let app = if who % 2 == 0 { &one } else { &other };
        let (code, t) = join(app, who, &flight).await;
        assert_eq!(
            (code, t["position"].as_u64()),
            (201, Some(who as u64 - 1)),
            "{t}"
        );
        tickets.push(t["ticket"].as_str().unwrap().to_string());
    }
    // Each serve sees the other's joiners, at their places.
    for (i, ticket) in tickets.iter().enumerate() {
        let (_, a) = poll(&one, i + 2, &flight, ticket).await;
        let (_, b) = poll(&other, i + 2, &flight, ticket).await;
        assert_eq!(a["position"], json!(i + 1));
        assert_eq!(a, b);
    }
    // Joining again through the other serve is the same ticket.
    let (code, same) = join(&other, 2, &flight).await;
    assert_eq!((code, &same["ticket"]), (200, &json!(tickets[0])));

    // A serve restarts mid-queue: the queue is where it was.
    two.stop();
    let _two = support::serve_process_at(&s, &[], port_two, &log_two);
    // A client of its own: the old process's connections are gone.
    let other = TestApp::served_at(s.clone(), format!("http://127.0.0.1:{port_two}"), pool).await;
    for (i, ticket) in tickets.iter().enumerate() {
        let (code, t) = poll(&other, i + 2, &flight, ticket).await;
        assert_eq!(
            (code, t["position"].as_u64()),
            (200, Some(i as u64 + 1)),
            "{t}"
        );
    }
    let (code, t) = join(&other, 7, &flight).await;
    assert_eq!(
        (code, t["position"].as_u64()),
        (201, Some(6)),
        "behind the others: {t}"
    );
}
