//! A hostile client gets its fair share and no more (SPEC section 13):
//! at most `MAX_LIVE_ORDERS_PER_CLIENT` live orders, its share of the
//! booking calls in flight, `MAX_STREAMS_PER_CLIENT` open event streams,
//! while another client books and watches as usual. The client is the
//! address a trusted proxy forwards (`TRUSTED_PROXIES=127.0.0.1/32` here,
//! each client naming itself in `X-Forwarded-For`), and the counts live in
//! Redis, so two `serve` instances count alike.

mod support;

use std::time::Duration;

use flightctl::config::{Settings, TrustedProxies};
use futures::StreamExt;
use serde_json::{Value, json};
use support::{FL101, FL102, FL201, TestApp};

/// The hostile client and a polite one, as the proxy forwards them.
const HOSTILE: &str = "198.51.100.66";
const POLITE: &str = "203.0.113.7";

/// Bounds on waits for the server; never a timing assertion.
const SOON: Duration = Duration::from_secs(20);
/// An event stream's keep-alive is 15 s: a stream the client closed is
/// noticed by its next write at the latest.
const STREAM_CLOSED_WITHIN: Duration = Duration::from_secs(45);

/// Settings of one test: the shipped caps (4 live orders, 16 streams, a
/// quarter of the in-flight slots), behind a trusted proxy on loopback.
async fn settings() -> Settings {
    let mut s = support::isolated_settings(true).await;
    s.server.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    s
}

/// A request as `client`, through the trusted proxy.
fn from(
    app: &TestApp,
    client: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    as_client(&app.http, app, client, method, path)
}

/// A request as `client` with the HTTP client `http`.
fn as_client(
    http: &reqwest::Client,
    app: &TestApp,
    client: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    http.request(method, app.url(path))
        .header("X-Forwarded-For", client)
}

struct Answer {
    code: u16,
    body: Value,
    retry_after: Option<u64>,
}

async fn answer(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("an answer");
    let code = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        code,
        body,
        retry_after,
    }
}

async fn create(app: &TestApp, client: &str, flight: &str, seats: &[&str]) -> Answer {
    let req = from(app, client, reqwest::Method::POST, "/api/orders");
    answer(req.json(&json!({"flightId": flight, "seats": seats}))).await
}

async fn create_ok(app: &TestApp, client: &str, flight: &str, seats: &[&str]) -> String {
    let a = create(app, client, flight, seats).await;
    assert_eq!(a.code, 201, "{}", a.body);
    a.body["orderId"].as_str().unwrap().to_string()
}

fn assert_too_many_live_orders(a: &Answer) {
    assert_eq!(a.code, 429, "{}", a.body);
    assert_eq!(a.body["error"], "TOO_MANY_LIVE_ORDERS", "{}", a.body);
    assert!(
        a.retry_after.is_some_and(|s| s >= 1),
        "a 429 says when to come back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fifth_live_order_of_one_client_is_refused_while_another_client_books() {
    let app = TestApp::with_worker(settings().await).await;
    let mut orders = Vec::new();
    for seat in ["1A", "1B", "1C", "1D"] {
        orders.push(create_ok(&app, HOSTILE, FL101, &[seat]).await);
    }
    let fifth = create(&app, HOSTILE, FL101, &["1E"]).await;
    assert_too_many_live_orders(&fifth);
    let seats = app.seat_statuses(FL101).await;
    assert_eq!(seats["1E"], "available", "a refused create holds nothing");

    // Another client is not held back by the first one's orders.
    create_ok(&app, POLITE, FL101, &["2A"]).await;

    // An order that ended frees its place at once, not at the bound.
    let cancel = from(
        &app,
        HOSTILE,
        reqwest::Method::DELETE,
        &format!("/api/orders/{}", orders[0]),
    );
    assert_eq!(answer(cancel).await.code, 200);
    create_ok(&app, HOSTILE, FL101, &["1E"]).await;
    assert_too_many_live_orders(&create(&app, HOSTILE, FL101, &["1F"]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_refused_after_taking_a_place_gives_it_back() {
    let app = TestApp::with_worker(settings().await).await;
    for seat in ["1A", "1B", "1C"] {
        create_ok(&app, HOSTILE, FL101, &[seat]).await;
    }
    // Sales of FL201 close: a create there is refused 409 after the live
    // order count took its place; the refusal must not keep it.
    let conn = app.pool.get().await.unwrap();
    let flight = uuid::Uuid::parse_str(FL201).unwrap();
    conn.execute(
        "UPDATE flights SET sales_open = false WHERE id = $1",
        &[&flight],
    )
    .await
    .unwrap();
    for seat in ["1A", "1B", "1C", "1D", "1E"] {
        let a = create(&app, HOSTILE, FL201, &[seat]).await;
        assert_eq!(a.code, 409, "{}", a.body);
        assert_eq!(a.body["error"], "SALES_CLOSED");
    }
    create_ok(&app, HOSTILE, FL101, &["1D"]).await;
    assert_too_many_live_orders(&create(&app, HOSTILE, FL101, &["1E"]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_client_flooding_booking_calls_gets_429_while_another_clients_call_proceeds() {
    let mut s = settings().await;
    // The worker is frozen while the flood comes in: every admitted create
    // waits for its workflow, so the flood's calls stay in flight.
    s.server.call_timeout = Duration::from_secs(60);
    s.server.max_in_flight = 16;
    let mut app = TestApp::with_worker(s).await;
    let frozen = support::procs::freeze_tree(app.worker().pid());
    // Calls that wait for the worker outlast the harness client's timeout.
    let http = support::sse::client();
    let post = || as_client(&http, &app, HOSTILE, reqwest::Method::POST, "/api/orders");
    let flood: Vec<_> = (1..=16)
        .map(|row| {
            let req = post().json(&json!({"flightId": FL102, "seats": [format!("{row}A")]}));
            tokio::spawn(answer(req))
        })
        .collect();
    let mut flood = futures::stream::iter(flood).buffer_unordered(16);
    // A quarter of the 16 slots is the client's share: 12 of its calls are
    // turned away at once, with a Retry-After.
    let mut refused = Vec::new();
    while refused.len() < 12 {
        let next = tokio::time::timeout(SOON, flood.next()).await;
        let Ok(Some(a)) = next else {
            panic!(
                "only {} of the flood's calls were refused while the rest waited: {:?}",
                refused.len(),
                refused
                    .iter()
                    .map(|a: &Answer| a.body.clone())
                    .collect::<Vec<_>>()
            );
        };
        let a = a.unwrap();
        assert_eq!(a.code, 429, "{}", a.body);
        assert_eq!(a.body["error"], "TOO_MANY_REQUESTS", "{}", a.body);
        assert!(a.retry_after.is_some_and(|s| s >= 1));
        refused.push(a);
    }
    // Another client's create is admitted while the flood's four wait;
    // the worker goes on once it has been sent.
    let polite = tokio::spawn(answer(
        as_client(&http, &app, POLITE, reqwest::Method::POST, "/api/orders")
            .json(&json!({"flightId": FL102, "seats": ["20F"]})),
    ));
    frozen.thaw();
    let polite = polite.await.unwrap();
    assert_eq!(polite.code, 201, "{}", polite.body);
    // The flood's admitted calls end as calls end, none of them a 429.
    let mut created = Vec::new();
    while let Some(a) = flood.next().await {
        let a = a.unwrap();
        assert_ne!(a.code, 429, "{}", a.body);
        created.extend(a.body["orderId"].as_str().map(str::to_string));
    }
    // Its share is free again: its next booking call is admitted.
    let order = created
        .first()
        .expect("an admitted create of the flood held its seat");
    let cancel = from(
        &app,
        HOSTILE,
        reqwest::Method::DELETE,
        &format!("/api/orders/{order}"),
    );
    let cancelled = answer(cancel).await;
    assert_eq!(cancelled.code, 200, "{}", cancelled.body);
}

/// Open `path` as `client`: the response (a stream while it is kept).
async fn open(
    app: &TestApp,
    http: &reqwest::Client,
    client: &str,
    path: &str,
) -> reqwest::Response {
    http.get(app.url(path))
        .header("X-Forwarded-For", client)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("an answer")
}

fn stream_paths(order: &str) -> Vec<String> {
    vec![
        "/api/flights/events".to_string(),
        format!("/api/flights/{FL101}/events"),
        format!("/api/events?flight={FL102}"),
        format!("/api/orders/{order}/events"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seventeenth_stream_of_one_client_is_refused_and_closing_one_frees_a_place() {
    let app = TestApp::with_worker(settings().await).await;
    let order = create_ok(&app, HOSTILE, FL101, &["5C"]).await;
    let http = support::sse::client();
    let paths = stream_paths(&order);
    let mut streams = Vec::new();
    for i in 0..16 {
        let resp = open(&app, &http, HOSTILE, &paths[i % paths.len()]).await;
        assert_eq!(resp.status(), 200, "stream {}", i + 1);
        streams.push(resp);
    }
    for path in &paths {
        let resp = open(&app, &http, HOSTILE, path).await;
        assert_eq!(resp.status(), 429, "the 17th stream ({path})");
        let retry_after = resp.headers().get("retry-after").cloned();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "TOO_MANY_STREAMS", "{body}");
        assert!(retry_after.is_some(), "a 429 says when to come back");
    }
    let polite = open(&app, &http, POLITE, &paths[1]).await;
    assert_eq!(polite.status(), 200, "another client's stream opens");

    drop(streams.pop());
    support::eventually(
        "a closed stream frees its place",
        STREAM_CLOSED_WITHIN,
        || async {
            let resp = open(&app, &http, HOSTILE, &paths[0]).await;
            (resp.status() == 200).then_some(resp)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_redis_count_one_client_once() {
    let s = settings().await;
    let one = TestApp::with_worker(s.clone()).await;
    let two = TestApp::spawn(s).await;
    create_ok(&one, HOSTILE, FL101, &["7A"]).await;
    create_ok(&two, HOSTILE, FL101, &["7B"]).await;
    create_ok(&one, HOSTILE, FL101, &["7C"]).await;
    create_ok(&two, HOSTILE, FL101, &["7D"]).await;
    assert_too_many_live_orders(&create(&one, HOSTILE, FL101, &["7E"]).await);
    assert_too_many_live_orders(&create(&two, HOSTILE, FL101, &["7E"]).await);
    create_ok(&two, POLITE, FL101, &["8A"]).await;

    let http = support::sse::client();
    let path = format!("/api/flights/{FL101}/events");
    let mut streams = Vec::new();
    for i in 0..16 {
        let app = if i % 2 == 0 { &one } else { &two };
        let resp = open(app, &http, HOSTILE, &path).await;
        assert_eq!(resp.status(), 200, "stream {}", i + 1);
        streams.push(resp);
    }
    assert_eq!(open(&one, &http, HOSTILE, &path).await.status(), 429);
    assert_eq!(open(&two, &http, HOSTILE, &path).await.status(), 429);
    assert_eq!(open(&two, &http, POLITE, &path).await.status(), 200);
}

/// The leases of a client's streams (member → score, the time they lapse).
async fn stream_leases(app: &TestApp, client: &str) -> Vec<(String, f64)> {
    use fred::prelude::SortedSetsInterface;
    let key = format!(
        "{}:share:{{client:{client}}}:streams",
        app.settings.redis.key_prefix
    );
    app.holds
        .client()
        .zrange(&key, 0, -1, None, false, None, true)
        .await
        .unwrap()
}

/// An open stream stays counted past its first lease: the instance renews
/// the leases of all its open streams together, and gives a stream's back
/// when it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_streams_are_renewed_together_and_given_back_when_closed() {
    let app = TestApp::spawn(settings().await).await;
    let http = support::sse::client();
    let path = format!("/api/flights/{FL101}/events");
    let mut streams = Vec::new();
    for _ in 0..3 {
        let resp = open(&app, &http, HOSTILE, &path).await;
        assert_eq!(resp.status(), 200);
        streams.push(resp);
    }
    let first = stream_leases(&app, HOSTILE).await;
    assert_eq!(first.len(), 3, "{first:?}");
    let renewal = flightctl::store::fairshare::RENEW_EVERY * 3;
    support::eventually("every open stream's lease is renewed", renewal, || async {
        let now = stream_leases(&app, HOSTILE).await;
        let renewed = first
            .iter()
            .all(|(member, lapses)| now.iter().any(|(m, later)| m == member && later > lapses));
        renewed.then_some(())
    })
    .await;
    drop(streams.pop());
    support::eventually(
        "a closed stream's lease is given back",
        STREAM_CLOSED_WITHIN,
        || async { (stream_leases(&app, HOSTILE).await.len() == 2).then_some(()) },
    )
    .await;
}
