//! The operator console's API against the real stack: sign-in and sessions,
//! nothing of it without one (every ops route, walked from the route
//! table), what operators see and what they do, each action audited.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use flightctl::ops::{Password, hash_password};
use flightctl::store::ops::put_operator;
use serde_json::{Value, json};
use support::{FL101, FL201, TestApp};
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);
const PASSWORD: &str = "correct horse battery staple";

async fn app() -> TestApp {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_failure_rate = 0.0;
    s.booking.refund_failure_rate = 0.0;
    TestApp::with_worker(s).await
}

async fn add_operator(app: &TestApp, name: &str) {
    let hash = hash_password(&Password::new(PASSWORD)).unwrap();
    put_operator(&app.pool, name, &hash).await.unwrap();
}

/// A client with its own cookie jar.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn send(
    http: &reqwest::Client,
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, app.url(path));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or_default())
}

/// A client signed in as `name`.
async fn signed_in(app: &TestApp, name: &str) -> reqwest::Client {
    add_operator(app, name).await;
    let http = client();
    let (code, body) = send(
        &http,
        app,
        reqwest::Method::POST,
        "/api/ops/session",
        Some(json!({"name": name, "password": PASSWORD})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    http
}

/// A concrete path for a route: ids random, references well-formed.
fn concrete(path: &str) -> String {
    path.replace("{id}", &Uuid::new_v4().to_string())
        .replace("{reference}", "ABCDEF")
}

fn method(name: &str) -> reqwest::Method {
    reqwest::Method::from_bytes(name.to_uppercase().as_bytes()).unwrap()
}

fn ops_routes() -> Vec<&'static flightctl::api::Route> {
    let routes: Vec<_> = flightctl::api::ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/api/ops/"))
        .filter(|r| !(r.path == "/api/ops/session" && r.method == "post"))
        .collect();
    assert!(
        routes.len() >= 12,
        "the ops routes are in the table: {routes:?}"
    );
    routes
}

#[tokio::test]
async fn every_ops_route_refuses_without_a_live_session_and_state_changes_from_another_site() {
    let app = app().await;
    let http = client();
    // No cookie, a made-up one: 401 on every route of the table.
    for route in ops_routes() {
        let path = concrete(route.path);
        for cookie in [
            None,
            Some("flightctl_ops=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ] {
            let mut req = http
                .request(method(route.method), app.url(&path))
                .json(&json!({}));
            if let Some(cookie) = cookie {
                req = req.header("cookie", cookie);
            }
            let resp = req.send().await.unwrap();
            let code = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or_default();
            assert_eq!(code, 401, "{} {path} with {cookie:?}: {body}", route.method);
            assert_eq!(body["error"], "UNAUTHENTICATED");
        }
    }
    // Signed in: a state change from another site is 403, whatever route.
    let ops = signed_in(&app, "ada").await;
    for route in ops_routes().into_iter().filter(|r| r.method != "get") {
        let path = concrete(route.path);
        let resp = ops
            .request(method(route.method), app.url(&path))
            .header("origin", "https://evil.example")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{} {path}", route.method);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "CROSS_ORIGIN");
    }
}

#[tokio::test]
async fn operators_are_added_by_the_cli_sign_in_and_sessions_end_when_revoked_or_expired() {
    let app = app().await;
    // The password comes on stdin; it is stored as an argon2id hash only.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flightctl"));
    let mut child = cmd
        .args(["operator", "add", "grace"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(support::worker_env(&app.settings))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert!(!printed.contains(PASSWORD));
    let conn = app.pool.get().await.unwrap();
    let hash: String = conn
        .query_one(
            "SELECT password_hash FROM operators WHERE name = 'grace'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(hash.starts_with("$argon2id$") && !hash.contains(PASSWORD));

    let http = client();
    let sign_in = |password: &'static str| {
        let http = http.clone();
        let url = app.url("/api/ops/session");
        async move {
            http.post(url)
                .json(&json!({"name": "grace", "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    let resp = sign_in(PASSWORD).await;
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["flightctl_ops=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not over plain HTTP: {cookie}");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("flightctl_ops=")
        .to_string();
    let stored: i64 = conn
        .query_one(
            "SELECT count(*) FROM ops_sessions WHERE id_hash = $1",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "the token itself is never stored");
    let (code, me) = send(&http, &app, reqwest::Method::GET, "/api/ops/session", None).await;
    assert_eq!((code, me["name"].as_str()), (200, Some("grace")));

    // Signing out ends the session at once.
    let (code, _) = send(
        &http,
        &app,
        reqwest::Method::DELETE,
        "/api/ops/session",
        None,
    )
    .await;
    assert_eq!(code, 204);
    let reuse = reqwest::Client::new()
        .get(app.url("/api/ops/flights"))
        .header("cookie", format!("flightctl_ops={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status().as_u16(), 401, "a revoked session");

    // An expired one too.
    assert_eq!(sign_in(PASSWORD).await.status().as_u16(), 200);
    let (code, _) = send(&http, &app, reqwest::Method::GET, "/api/ops/flights", None).await;
    assert_eq!(code, 200);
    conn.execute(
        "UPDATE ops_sessions SET expires_at = NOW() - interval '1 second' WHERE operator = 'grace'",
        &[],
    )
    .await
    .unwrap();
    let (code, _) = send(&http, &app, reqwest::Method::GET, "/api/ops/flights", None).await;
    assert_eq!(code, 401, "an expired session");

    // Five wrong passwords: the name is refused for a while, even the right one.
    for _ in 0..5 {
        let resp = sign_in("wrong password, not this").await;
        assert_eq!(resp.status().as_u16(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "INVALID_CREDENTIALS");
    }
    let refused = sign_in(PASSWORD).await;
    assert_eq!(refused.status().as_u16(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");

    // Removing the operator ends their sessions.
    let other = signed_in(&app, "linus").await;
    let out = Command::new(env!("CARGO_BIN_EXE_flightctl"))
        .args(["operator", "remove", "linus"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(support::worker_env(&app.settings))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, _) = send(&other, &app, reqwest::Method::GET, "/api/ops/session", None).await;
    assert_eq!(code, 401);
}

async fn create(app: &TestApp, flight: &str, seats: &[&str]) -> (u16, Value) {
    app.post("/api/orders", json!({"flightId": flight, "seats": seats}))
        .await
}

async fn audit(http: &reqwest::Client, app: &TestApp) -> Vec<Value> {
    let (code, body) = send(http, app, reqwest::Method::GET, "/api/ops/audit", None).await;
    assert_eq!(code, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn operators_see_sales_and_orders_and_every_action_is_audited() {
    let app = app().await;
    let ops = signed_in(&app, "ada").await;
    let order = a_customers_hold_shows_on_the_flights_counts(&ops, &app).await;
    the_operator_finds_and_cancels_the_order(&ops, &app, &order).await;
    the_cancel_shows_in_the_history_and_the_audit(&ops, &app, &order).await;
    closed_sales_refuse_customers_until_reopened(&ops, &app).await;
    a_new_flight_is_checked_and_listed_at_once(&ops, &app).await;

    let actions: Vec<String> = audit(&ops, &app)
        .await
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    for wanted in [
        "close_sales ok",
        "open_sales ok",
        "add_flight ok",
        "add_flight INVALID_FLIGHT",
        "add_flight FLIGHT_EXISTS",
        "sign_in ok",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} in {actions:?}"
        );
    }
}

/// A customer's hold shows on the flight's counts; returns the order.
async fn a_customers_hold_shows_on_the_flights_counts(
    ops: &reqwest::Client,
    app: &TestApp,
) -> String {
    use reqwest::Method as M;

    let (_, before) = send(ops, app, M::GET, "/api/ops/flights", None).await;
    let fl101 = |body: &Value| {
        body["flights"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == FL101)
            .cloned()
            .unwrap()
    };
    assert_eq!(fl101(&before)["held"], 0);
    assert_eq!(fl101(&before)["salesOpen"], true);
    let (code, held) = create(app, FL101, &["4A", "4B"]).await;
    assert_eq!(code, 201, "{held}");
    let order = held["orderId"].as_str().unwrap().to_string();
    let (_, after) = send(ops, app, M::GET, "/api/ops/flights", None).await;
    assert_eq!(fl101(&after)["held"], 2);
    assert_eq!(
        fl101(&after)["available"].as_i64().unwrap(),
        fl101(&before)["available"].as_i64().unwrap() - 2
    );
    assert_eq!(
        fl101(&after)["bookingsPerMinute"].as_array().unwrap().len(),
        30
    );

    order
}

/// Found by order id; cancelled by the operator, its holds released; a
/// second cancel refused.
async fn the_operator_finds_and_cancels_the_order(
    ops: &reqwest::Client,
    app: &TestApp,
    order: &str,
) {
    use reqwest::Method as M;

    let (code, list) = send(
        ops,
        app,
        M::GET,
        &format!("/api/ops/orders?q={order}"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["total"], 1);
    assert_eq!(list["orders"][0]["flightNumber"], "FL101");
    let (code, body) = send(
        ops,
        app,
        M::POST,
        &format!("/api/ops/orders/{order}/cancel"),
        None,
    )
    .await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("CANCELLED")),
        "{body}"
    );
    assert!(
        app.holds
            .list(FL101.parse().unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    let (code, again) = send(
        ops,
        app,
        M::POST,
        &format!("/api/ops/orders/{order}/cancel"),
        None,
    )
    .await;
    assert_eq!(code, 409, "{again}");
}

/// The order's history ends CANCELLED; the audit has both cancels, the
/// refused one first.
async fn the_cancel_shows_in_the_history_and_the_audit(
    ops: &reqwest::Client,
    app: &TestApp,
    order: &str,
) {
    use reqwest::Method as M;

    let (code, detail) = send(ops, app, M::GET, &format!("/api/ops/orders/{order}"), None).await;
    assert_eq!(code, 200, "{detail}");
    let statuses: Vec<&str> = (detail["history"].as_array().unwrap().iter())
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["SEATS_RESERVED", "CANCELLED"]);
    assert!(
        detail["workflowUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/workflows/booking-{order}"))
    );
    let trail = audit(ops, app).await;
    let cancels: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "cancel_order")
        .collect();
    assert_eq!(cancels.len(), 2, "{trail:?}");
    assert_eq!(
        (
            cancels[0]["outcome"].as_str(),
            cancels[0]["operator"].as_str()
        ),
        (Some("ORDER_NOT_MODIFIABLE"), Some("ada"))
    );
    assert_eq!(cancels[1]["outcome"], "ok");
    assert_eq!(cancels[1]["target"], order);
}

/// Sales closed: a customer is refused; reopened: sold again.
async fn closed_sales_refuse_customers_until_reopened(ops: &reqwest::Client, app: &TestApp) {
    use reqwest::Method as M;

    let sales = format!("/api/ops/flights/{FL101}/sales");
    let (code, flight) = send(ops, app, M::POST, &sales, Some(json!({"open": false}))).await;
    assert_eq!(
        (code, flight["salesOpen"].as_bool()),
        (200, Some(false)),
        "{flight}"
    );
    let (code, body) = create(app, FL101, &["5A"]).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("SALES_CLOSED")),
        "{body}"
    );
    let (code, _) = send(ops, app, M::POST, &sales, Some(json!({"open": true}))).await;
    assert_eq!(code, 200);
    assert_eq!(create(app, FL101, &["5A"]).await.0, 201);
}

/// A new flight: checked field by field, its seats made with it, on the
/// public list at once.
async fn a_new_flight_is_checked_and_listed_at_once(ops: &reqwest::Client, app: &TestApp) {
    use reqwest::Method as M;

    let new = json!({"flightNumber": "FL901", "origin": "BER", "destination": "LIS",
        "departureTime": "2031-06-01T08:30:00Z", "arrivalTime": "2031-06-01T11:45:00Z",
        "rows": 3, "seatLetters": "ACDF", "priceCents": 12900});
    for (field, value) in [
        ("origin", json!("Berlin")),
        ("arrivalTime", json!("2031-06-01T07:00:00Z")),
        ("seatLetters", json!("ABG")),
        ("rows", json!(0)),
        // Numbers a boarding pass cannot carry (1-3 letters, 1-4 digits, a
        // letter at most): refused here, not at check-in.
        ("flightNumber", json!("FL12345")),
        ("flightNumber", json!("1234")),
    ] {
        let mut bad = new.clone();
        bad[field] = value;
        let (code, body) = send(ops, app, M::POST, "/api/ops/flights", Some(bad)).await;
        assert_eq!((code, body["field"].as_str()), (400, Some(field)), "{body}");
    }
    let (code, added) = send(ops, app, M::POST, "/api/ops/flights", Some(new.clone())).await;
    assert_eq!(code, 201, "{added}");
    assert_eq!(
        (
            added["totalSeats"].as_i64(),
            added["availableSeats"].as_i64()
        ),
        (Some(12), Some(12))
    );
    let (code, _) = send(ops, app, M::POST, "/api/ops/flights", Some(new)).await;
    assert_eq!(code, 409, "the number is taken");
    let (_, public) = app.get("/api/flights").await;
    assert!(public.to_string().contains("FL901"), "{public}");
    let id = added["id"].as_str().unwrap();
    let seats = app.seat_statuses(id).await;
    assert_eq!(seats.len(), 12);
    assert!(seats.contains_key("3F") && !seats.contains_key("1B"));
}

#[tokio::test]
async fn an_operator_refunds_a_booking_even_inside_the_customer_cutoff() {
    let app = app().await;
    let ops = signed_in(&app, "ada").await;
    let (code, held) = create(&app, FL201, &["6C"]).await;
    assert_eq!(code, 201);
    let order = held["orderId"].as_str().unwrap().to_string();
    app.name_passengers(&order).await;
    let (code, _) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202);
    let reference = support::eventually("the sale", LONG, || async {
        let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
        s["bookingReference"].as_str().map(str::to_string)
    })
    .await;
    let (code, by_name) = send(
        &ops,
        &app,
        reqwest::Method::GET,
        "/api/ops/orders?q=passenger&status=CONFIRMED",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        by_name["orders"].to_string().contains(&order),
        "found by family name: {by_name}"
    );
    let path = refunded_by_an_operator(&ops, &app, &order, &reference).await;
    let (code, _) = send(&ops, &app, reqwest::Method::POST, &path, None).await;
    assert_eq!(code, 409, "refunded already");
    let (_, detail) = send(
        &ops,
        &app,
        reqwest::Method::GET,
        &format!("/api/ops/orders/{order}"),
        None,
    )
    .await;
    assert_eq!(detail["refund"]["status"], "REFUNDED");
    assert_eq!(detail["attempts"][0]["outcome"], "SUCCEEDED");
}

/// The operator refunds the booking; returns once it is REFUNDED, with
/// the path of the refund route.
async fn refunded_by_an_operator(
    ops: &reqwest::Client,
    app: &TestApp,
    order: &str,
    reference: &str,
) -> String {
    let path = format!("/api/ops/bookings/{reference}/refund");
    let (code, body) = send(ops, app, reqwest::Method::POST, &path, None).await;
    assert_eq!(code, 202, "{body}");
    support::eventually("the refund", LONG, || async {
        let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
        (s["status"] == "REFUNDED").then_some(())
    })
    .await;
    path
}

#[tokio::test]
async fn the_sweeps_runs_and_the_sales_stream_are_there_for_operators() {
    let mut s = support::isolated_settings(true).await;
    s.booking.reconcile_interval = Duration::from_secs(1);
    let app = TestApp::with_worker(s).await;
    let ops = signed_in(&app, "ada").await;
    let runs = support::eventually("a recorded sweep run", LONG, || async {
        let (code, body) = send(
            &ops,
            &app,
            reqwest::Method::GET,
            "/api/ops/reconciliation",
            None,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        (!body["runs"].as_array().unwrap().is_empty()).then_some(body)
    })
    .await;
    assert!(
        runs["runs"][0]["report"]["ordersChecked"].is_number(),
        "{runs}"
    );

    let resp = ops
        .get(app.url("/api/ops/flights/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut stream = resp.bytes_stream();
    use futures::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with("event: flights\ndata: "), "{text}");
    assert!(text.contains("FL101"));
    // A hold shows in the next event.
    assert_eq!(create(&app, FL101, &["7D"]).await.0, 201);
    let next = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let chunk = stream.next().await.unwrap().unwrap();
            let text = String::from_utf8_lossy(&chunk).to_string();
            if text.starts_with("event: flights") {
                return text;
            }
        }
    })
    .await
    .expect("a change within seconds");
    assert!(next.contains("\"held\":1"), "{next}");
}

/// The money ledger checked now, as the reconciliation route shows it.
async fn money(ops: &reqwest::Client, app: &TestApp) -> Value {
    let path = "/api/ops/reconciliation";
    let (code, body) = send(ops, app, reqwest::Method::GET, path, None).await;
    assert_eq!(code, 200, "{body}");
    body["money"].clone()
}

/// Charged, refunded, sold.
fn totals(money: &Value) -> (i64, i64, i64) {
    let cents = |name: &str| {
        money[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{name}: {money}"))
    };
    (
        cents("chargedCents"),
        cents("refundedCents"),
        cents("soldCents"),
    )
}

/// A booking of `seats` on FL201, named and paid: its order, reference
/// and price.
async fn a_paid_booking(app: &TestApp, seats: &[&str]) -> (String, String, i64) {
    let (code, held) = create(app, FL201, seats).await;
    assert_eq!(code, 201, "{held}");
    let order = held["orderId"].as_str().unwrap().to_string();
    app.name_passengers(&order).await;
    let pay = format!("/api/orders/{order}/pay");
    let (code, body) = app.post(&pay, json!({"paymentCode": "00000"})).await;
    assert_eq!(code, 202, "{body}");
    let sold = support::eventually("the sale", LONG, || async {
        let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
        s["bookingReference"].is_string().then_some(s)
    })
    .await;
    let reference = sold["bookingReference"].as_str().unwrap().to_string();
    (order, reference, sold["totalPriceCents"].as_i64().unwrap())
}

#[tokio::test]
async fn every_charge_and_refund_is_on_the_ledger_and_the_money_balances() {
    let app = app().await;
    let anonymous = client().get(app.url("/api/ops/reconciliation")).send();
    assert_eq!(anonymous.await.unwrap().status().as_u16(), 401);
    let ops = signed_in(&app, "ada").await;
    assert_eq!(totals(&money(&ops, &app).await), (0, 0, 0));

    // Sold and paid: one charge, balanced, on its flight's line.
    let (order, reference, price) = a_paid_booking(&app, &["9D", "9E"]).await;
    let charge = ("CHARGE".to_string(), price, format!("pay-{order}-1"));
    assert_eq!(
        support::ledger_rows(&app.pool, order.parse().unwrap()).await,
        std::slice::from_ref(&charge)
    );
    let paid = money(&ops, &app).await;
    assert_eq!(totals(&paid), (price, 0, price), "{paid}");
    assert_eq!(paid["discrepancies"], json!([]), "{paid}");
    assert_eq!(
        paid["flights"],
        json!([{"flightId": FL201, "flightNumber": "FL201",
            "chargedCents": price, "refundedCents": 0, "soldCents": price}])
    );

    // Refunded: a refund row with the provider's reference; still balanced.
    refunded_by_an_operator(&ops, &app, &order, &reference).await;
    let rows = support::ledger_rows(&app.pool, order.parse().unwrap()).await;
    assert_eq!((rows.len(), &rows[0]), (2, &charge), "{rows:?}");
    assert_eq!((rows[1].0.as_str(), rows[1].1), ("REFUND", price));
    assert!(rows[1].2.starts_with("rf_"), "{rows:?}");
    let refunded = money(&ops, &app).await;
    assert_eq!(totals(&refunded), (price, price, 0), "{refunded}");
    assert_eq!(refunded["discrepancies"], json!([]), "{refunded}");

    // A payment approved for an order that sold nothing: listed.
    let (code, held) = create(&app, FL201, &["9F"]).await;
    assert_eq!(code, 201, "{held}");
    let unsold = held["orderId"].as_str().unwrap();
    let (code, cancelled) = app.delete(&format!("/api/orders/{unsold}")).await;
    assert_eq!(code, 200, "{cancelled}");
    let (_, status) = app.get(&format!("/api/orders/{unsold}/status")).await;
    let cents = status["totalPriceCents"].as_i64().unwrap();
    let conn = app.pool.get().await.unwrap();
    conn.execute(
        "INSERT INTO payment_attempts (order_id, attempt, outcome) VALUES ($1, 1, 'SUCCEEDED')",
        &[&Uuid::parse_str(unsold).unwrap()],
    )
    .await
    .unwrap();
    let off = money(&ops, &app).await;
    assert_eq!(totals(&off), (price + cents, price, 0), "{off}");
    assert_eq!(
        off["discrepancies"],
        json!([{"orderId": unsold, "flightId": FL201, "status": "CANCELLED",
            "chargedCents": cents, "refundedCents": 0, "soldCents": 0,
            "problem": "charged without a sale"}])
    );
}
