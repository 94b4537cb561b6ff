//! Many instances behind a real load balancer: 2 `flightctl serve` and 3
//! `flightctl worker` processes, HAProxy in front with the repository's
//! `deploy/haproxy/haproxy.cfg` (real Postgres, Redis and Temporal dev
//! server). A change made through one instance reaches a stream on the
//! other; a keyed create retried through the other instance is the same
//! order; a crowd buying through the balancer loses neither a `serve` nor a
//! `worker` killed under it, and leaves nothing stuck.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use support::burst::{self, BurstReport, Limits};
use support::shape::Shape;
use support::sse::{self, EventStream};
use tokio::time::Instant;

const SERVES: usize = 2;
const WORKERS: usize = 3;
/// A change must reach a stream on another instance within this.
const CROSS_PUSH: Duration = Duration::from_millis(500);
const SOON: Duration = Duration::from_secs(10);
/// The crowd of the kill tests: twice as many buyers as seats.
const BUYERS: usize = 36;
const ROWS: i32 = 3;
/// Bounded even when a kill leaves something stuck: every buyer stops, and
/// the audit reports what is left.
const LIMITS: Limits = Limits {
    buyer_for: Duration::from_secs(45),
    sell_out_within: Duration::from_secs(50),
    settle_within: Duration::from_secs(20),
};
/// Seats booked before a process is killed: the crowd is mid-sale.
const BOOKED_BEFORE_KILL: i64 = 4;

/// One shape at a time: each is seven processes on a 2-core machine, and
/// the cross-instance latency is measured, not just checked.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn shape() -> Shape {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_max_attempts = 3;
    s.booking.payment_failure_rate = 0.0;
    Shape::start(s, SERVES, WORKERS).await
}

/// POST `body` with an `Idempotency-Key` to `url`: status and body.
async fn post_keyed(url: &str, key: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("POST");
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

/// Read events until one satisfies `wanted`; when it arrived, by the
/// wall clock (the database's, on this one machine).
async fn arrival(
    stream: &mut EventStream,
    within: Duration,
    wanted: impl Fn(&sse::Event) -> bool,
) -> DateTime<Utc> {
    stream.wait_for(within, wanted).await;
    Utc::now()
}

/// Which event a stream waits for.
type Wanted<'a> = &'a dyn Fn(&sse::Event) -> bool;

/// Send `change` and read `streams` meanwhile: when the change was sent,
/// how long it took to answer, and when the wanted event arrived on each
/// stream.
async fn pushed<F: std::future::Future<Output = u16>>(
    change: F,
    streams: Vec<(&mut EventStream, Wanted<'_>)>,
) -> (DateTime<Utc>, Duration, Vec<DateTime<Utc>>) {
    let (sent, started) = (Utc::now(), Instant::now());
    let answered = async {
        let code = change.await;
        assert!((200..300).contains(&code), "the change was answered {code}");
        started.elapsed()
    };
    let arrivals = futures::future::join_all(
        streams
            .into_iter()
            .map(|(stream, wanted)| arrival(stream, SOON, wanted)),
    );
    let (answered, arrivals) = tokio::join!(answered, arrivals);
    (sent, answered, arrivals)
}

/// When the database recorded the first of the order's `statuses`: within
/// the transaction that made the change (`clock_timestamp()`), so the
/// change committed, and could be announced, only after it.
async fn recorded(shape: &Shape, order: &str, statuses: &[&str]) -> DateTime<Utc> {
    let order = uuid::Uuid::parse_str(order).unwrap();
    let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
    let client = shape.app.pool.get().await.unwrap();
    client
        .query_one(
            "SELECT min(at) FROM order_status_history WHERE order_id = $1 AND status = ANY($2)",
            &[&order, &statuses],
        )
        .await
        .unwrap()
        .get(0)
}

/// When the order row was last written (`NOW()`: its transaction's start,
/// before the commit).
async fn written(shape: &Shape, order: &str) -> DateTime<Utc> {
    let order = uuid::Uuid::parse_str(order).unwrap();
    let client = shape.app.pool.get().await.unwrap();
    client
        .query_one("SELECT updated_at FROM orders WHERE id = $1", &[&order])
        .await
        .unwrap()
        .get(0)
}

/// From `from` to `to` (zero if `to` came first).
fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

fn seat_is(seat: &str, status: &str) -> impl Fn(&sse::Event) -> bool {
    let (seat, status) = (seat.to_string(), status.to_string());
    move |e| e.kind == "seat" && e.data["seat"] == seat && e.data["status"] == status
}

async fn open(url: &str, first: &str) -> EventStream {
    let mut stream = EventStream::open(&sse::client(), url, None).await;
    let event = stream.next(SOON).await.expect("a first event");
    assert_eq!(event.kind, first, "{event:?}");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_through_one_instance_reach_streams_on_the_other_and_a_key_is_one_order() {
    let _one = SERIAL.lock().await;
    let shape = shape().await;
    let (a, b) = (&shape.serves[0], &shape.serves[1]);
    let flight = support::FL102;
    let map = format!("/api/flights/{flight}/events");
    let mut on_a = open(&a.url(&map), "seats").await;
    let mut via_lb = open(&shape.url(&map), "seats").await;

    let http = reqwest::Client::new();
    // Each push is timed from the change's record in the database (an
    // upper bound: it committed later), and, for comparison, from the
    // moment the request was sent (which adds the engine's work).
    let mut pushes = Vec::new();
    let mut orders = Vec::new();
    for seat in ["9C", "9D", "9E"] {
        let key = uuid::Uuid::new_v4().to_string();
        let body = json!({"flightId": flight, "seats": [seat]});
        let created = std::cell::OnceCell::new();
        let create = async {
            let (code, body) = post_keyed(&b.url("/api/orders"), &key, &body).await;
            assert_eq!(code, 201, "{body}");
            created.set(body).unwrap();
            code
        };
        let held = seat_is(seat, "reserved");
        let (sent, answered, arrived) =
            pushed(create, vec![(&mut on_a, &held), (&mut via_lb, &held)]).await;
        let created = created.into_inner().unwrap();
        let order = created["orderId"].as_str().unwrap().to_string();
        let at = recorded(&shape, &order, &["CREATED", "SEATS_RESERVED"]).await;
        println!(
            "hold on {seat} through B (answered in {answered:?}): on A's stream {:?} after the \
             order's first save ({:?} after the request), through the LB {:?}",
            between(at, arrived[0]),
            between(sent, arrived[0]),
            between(at, arrived[1]),
        );
        pushes.extend(arrived.iter().map(|t| between(at, *t)));

        // The same key through the other instance, and through the
        // balancer: the same order, not a second one.
        for url in [a.url("/api/orders"), shape.url("/api/orders")] {
            let (code, again) = post_keyed(&url, &key, &body).await;
            assert_eq!(code, 201, "{again}");
            assert_eq!(again["orderId"], created["orderId"], "{url}");
        }
        orders.push(order);
    }
    let client = shape.app.pool.get().await.unwrap();
    let flight_id = uuid::Uuid::parse_str(flight).unwrap();
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM orders WHERE flight_id = $1",
            &[&flight_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3, "three keys, three orders");

    // An order's stream on A sees a seat change and the cancellation made
    // through B.
    let order = &orders[0];
    let mut status = open(&a.url(&format!("/api/orders/{order}/events")), "message").await;
    let change = async {
        let url = b.url(&format!("/api/orders/{order}/seats"));
        let seats = json!({"seats": ["9C", "9F"]});
        let resp = http.put(url).json(&seats).send().await.unwrap();
        resp.status().as_u16()
    };
    let changed = |e: &sse::Event| e.data["seats"] == json!(["9C", "9F"]);
    let (sent, answered, arrived) = pushed(change, vec![(&mut status, &changed)]).await;
    let at = written(&shape, order).await;
    println!(
        "seat change through B (answered in {answered:?}): on A's order stream {:?} after the \
         row's write ({:?} after the request)",
        between(at, arrived[0]),
        between(sent, arrived[0]),
    );
    pushes.push(between(at, arrived[0]));
    let cancel = async {
        let url = b.url(&format!("/api/orders/{order}"));
        http.delete(url).send().await.unwrap().status().as_u16()
    };
    let cancelled = |e: &sse::Event| e.data["status"] == "CANCELLED";
    let (sent, answered, arrived) = pushed(cancel, vec![(&mut status, &cancelled)]).await;
    let at = recorded(&shape, order, &["CANCELLED"]).await;
    println!(
        "cancellation through B (answered in {answered:?}): on A's order stream {:?} after it \
         was recorded ({:?} after the request)",
        between(at, arrived[0]),
        between(sent, arrived[0]),
    );
    pushes.push(between(at, arrived[0]));

    let slowest = *pushes.iter().max().unwrap();
    println!("slowest cross-instance push, from the change's record: {slowest:?}");
    assert!(
        slowest <= CROSS_PUSH,
        "every change reaches the other instance's streams within {CROSS_PUSH:?}: {pushes:?}"
    );
}

async fn booked(shape: &Shape, flight: &str) -> i64 {
    let flight = uuid::Uuid::parse_str(flight).unwrap();
    let client = shape.app.pool.get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM seats WHERE flight_id = $1 AND status = 'booked'",
            &[&flight],
        )
        .await
        .unwrap()
        .get(0)
}

/// Wait until the crowd has booked some seats, then `kill`; how many seats
/// were booked when it struck.
async fn kill_mid_sale(shape: &Shape, flight: &str, kill: impl FnOnce()) -> i64 {
    let what = format!("{BOOKED_BEFORE_KILL} seats booked");
    let at = support::eventually(&what, LIMITS.sell_out_within, || async {
        let n = booked(shape, flight).await;
        (n >= BOOKED_BEFORE_KILL).then_some(n)
    })
    .await;
    kill();
    at
}

/// Everything a crowd must leave behind, whatever was killed under it.
fn assert_nothing_stuck(report: &BurstReport, booked_at_kill: i64, shape: &Shape) {
    report.print();
    let logs = || shape.logs();
    assert_eq!(
        report.violations,
        0,
        "every answer through the balancer is one a client can act on: {:?}\n{}",
        report.violation_examples,
        logs()
    );
    assert!(
        (booked_at_kill as usize) < report.seats,
        "the kill struck mid-sale ({booked_at_kill} of {} seats booked)",
        report.seats
    );
    assert!(
        report.sold_out_after.is_some(),
        "the sale went on after the kill: every one of the {} seats sold\n{}",
        report.seats,
        logs()
    );
    assert_eq!(report.unsettled, 0, "no order left live\n{}", logs());
    assert_eq!(report.ghosts(), 0, "no order or hold outlives the sale");
    assert_eq!(report.double_sales, 0, "every booked seat has one owner");
    assert_eq!(report.multi_listed, 0, "no seat is in two confirmed orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_serve_mid_sale_loses_no_request_and_leaves_nothing_stuck() {
    let _one = SERIAL.lock().await;
    let mut shape = shape().await;
    let flight = burst::insert_flight(&shape.app.pool, ROWS).await;
    let victim = shape.serves[0].proc.pid();
    let (report, at) = tokio::join!(
        burst::burst_with(&shape.app, &flight, BUYERS, LIMITS),
        kill_mid_sale(&shape, &flight, || unsafe {
            libc::kill(victim as i32, libc::SIGKILL);
        }),
    );
    println!("serve 1 (pid {victim}) killed with {at} seats booked");
    println!(
        "the balancer counted {} retries and {} redispatches to the other instance",
        shape.backend_counter("wretr").await,
        shape.backend_counter("wredis").await
    );
    assert_nothing_stuck(&report, at, &shape);
    // Three failed checks a second apart take the dead instance out; the
    // sale may well have ended sooner (requests meanwhile were redispatched).
    let shape_ref = &shape;
    let rotation = support::eventually("the dead instance out of rotation", SOON, || async move {
        let rotation = shape_ref.rotation().await;
        (rotation.first().map(String::as_str) == Some("DOWN")).then_some(rotation)
    })
    .await;
    assert_eq!(
        rotation.get(1).map(String::as_str),
        Some("UP"),
        "{rotation:?}"
    );

    // Restarted on its port, it is back in rotation by itself.
    shape.kill_serve(0);
    shape.restart_serve(0);
    shape.wait_in_rotation(SERVES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_worker_mid_sale_leaves_its_bookings_to_the_others() {
    let _one = SERIAL.lock().await;
    let mut shape = shape().await;
    let flight = burst::insert_flight(&shape.app.pool, ROWS).await;
    let victim = shape.workers[0].pid();
    let (report, at) = tokio::join!(
        burst::burst_with(&shape.app, &flight, BUYERS, LIMITS),
        kill_mid_sale(&shape, &flight, || unsafe {
            libc::kill(victim as i32, libc::SIGKILL);
        }),
    );
    println!("worker 1 (pid {victim}) killed with {at} seats booked");
    assert!(!shape.workers[0].is_running(), "the worker was killed");
    assert_nothing_stuck(&report, at, &shape);
}

/// A booking look-up through the balancer from the loopback address
/// `from` (the whole of 127.0.0.0/8 is this machine), sending an
/// `X-Forwarded-For` of its own that the balancer must replace.
async fn look_up_from(shape: &Shape, from: [u8; 4], body: &serde_json::Value) -> u16 {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .build()
        .unwrap();
    let resp = client
        .post(shape.url("/api/bookings/lookup"))
        .json(body)
        .header("X-Forwarded-For", "198.51.100.7")
        .send()
        .await
        .expect("POST through the balancer");
    resp.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_the_balancer_each_client_has_its_own_look_up_limit() {
    let _one = SERIAL.lock().await;
    let mut s = support::isolated_settings(true).await;
    s.booking.lookup_max_failures = 2;
    let shape = Shape::start(s, SERVES, 1).await;
    let guess = json!({"reference": "ZZZZZZ", "lastName": "Smith"});
    let (guesser, neighbour) = ([127, 0, 0, 2], [127, 0, 0, 3]);
    // Spread over both instances: the count is kept in Redis, per client.
    assert_eq!(look_up_from(&shape, guesser, &guess).await, 404);
    assert_eq!(look_up_from(&shape, guesser, &guess).await, 404);
    assert_eq!(
        look_up_from(&shape, guesser, &guess).await,
        429,
        "the guesser used up its failures"
    );
    // Another client behind the same balancer is not locked out, though it
    // claims (in a header the balancer replaces) the same address as the
    // guesser did.
    assert_eq!(look_up_from(&shape, neighbour, &guess).await, 404);
}
