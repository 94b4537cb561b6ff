//! The waiting room of a flash sale (issue 25; SPEC section 14): scheduled
//! sales, the queue per flight in Redis, admissions paced by the engine,
//! and creates that need an admission while a room is active. Clients are
//! told apart by the address a trusted proxy forwards
//! (`TRUSTED_PROXIES=127.0.0.1/32`, each client naming itself in
//! `X-Forwarded-For`), as the abuse rules count them.

mod support;

use std::time::Duration;

use flightctl::config::{Settings, TrustedProxies};
use serde_json::Value;
use support::sse::EventStream;
use support::{FL102, TestApp};

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
