//! The flight read API, errors, `/health` and the worker process, against
//! real Postgres, Redis and Temporal.

mod support;

use std::time::Duration;

use flightctl::domain::{FlightId, OrderId, SeatId};
use serde_json::{Value, json};
use support::{FL101, FL201, TestApp, servers};
use uuid::Uuid;

#[tokio::test]
async fn flights_are_listed_with_their_fields_in_departure_order() {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    let (code, body) = app.get("/api/flights").await;
    assert_eq!(code, 200);
    let flights = body["flights"].as_array().unwrap();
    let numbers: Vec<&str> = flights
        .iter()
        .map(|f| f["flightNumber"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["FL201", "FL101", "FL102", "FL202"],
        "earliest departure first"
    );
    let fl101 = &flights[1];
    for field in [
        "id",
        "flightNumber",
        "origin",
        "destination",
        "departureTime",
        "arrivalTime",
        "totalSeats",
        "availableSeats",
        "priceCents",
    ] {
        assert!(!fl101[field].is_null(), "missing {field}: {fl101}");
    }
    assert_eq!(fl101["id"], FL101);
    assert_eq!(
        (fl101["origin"].as_str(), fl101["destination"].as_str()),
        (Some("NYC"), Some("LAX"))
    );
    assert_eq!(
        (fl101["totalSeats"].as_i64(), fl101["priceCents"].as_i64()),
        (Some(120), Some(35000))
    );
    assert_eq!(flights[0]["totalSeats"], 90);
}

#[tokio::test]
async fn the_seat_map_has_rows_of_a_to_f() {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    for (flight, rows, business) in [(FL101, 20, 105_000), (FL201, 15, 84_000)] {
        let (code, body) = app.get(&format!("/api/flights/{flight}")).await;
        assert_eq!(code, 200);
        let map = &body["seatMap"];
        assert_eq!(
            (map["rows"].as_i64(), map["seatsPerRow"].as_i64()),
            (Some(rows), Some(6))
        );
        let seats = map["seats"].as_array().unwrap();
        assert_eq!(seats.len() as i64, rows * 6);
        assert_eq!(
            seats[0],
            json!({"id": "1A", "row": 1, "column": "A", "status": "available",
                   "cabin": "BUSINESS", "features": ["WINDOW"], "priceCents": business})
        );
        assert_eq!(seats[5]["id"], "1F");
        assert_eq!(seats.last().unwrap()["id"], format!("{rows}F"));
        assert_eq!(body["availableSeats"], rows * 6);
    }
}

#[tokio::test]
async fn held_seats_show_reserved_and_are_not_available() {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    let flight: FlightId = FL101.parse().unwrap();
    let held = ["2A", "2B"].map(|s| SeatId::parse(s).unwrap());
    app.holds
        .lock(flight, OrderId::random(), &held, Duration::from_secs(60))
        .await
        .unwrap();
    let conn = app.pool.get().await.unwrap();
    let buyer = Uuid::new_v4();
    conn.execute(
        "INSERT INTO orders (id, flight_id, workflow_id, status, seats, confirmed_at, reference)
         VALUES ($1, $2, $3, 'CONFIRMED', '{3C}', NOW(), 'APXTST')",
        &[&buyer, &flight, &format!("booking-{buyer}")],
    )
    .await
    .unwrap();
    conn.execute(
        "UPDATE seats SET status = 'booked', order_id = $2 WHERE flight_id = $1 AND id = '3C'",
        &[&flight, &buyer],
    )
    .await
    .unwrap();
    conn.execute(
        "UPDATE flights SET available_seats = available_seats - 1 WHERE id = $1",
        &[&flight],
    )
    .await
    .unwrap();

    let statuses = app.seat_statuses(FL101).await;
    assert_eq!(statuses["2A"], "reserved");
    assert_eq!(statuses["2B"], "reserved");
    assert_eq!(statuses["3C"], "booked");
    assert_eq!(statuses["2C"], "available");
    let (_, detail) = app.get(&format!("/api/flights/{FL101}")).await;
    assert_eq!(detail["availableSeats"], 117);
    let (_, list) = app.get("/api/flights").await;
    let fl101 = list["flights"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == FL101)
        .unwrap()
        .clone();
    assert_eq!(fl101["availableSeats"], 117);
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only error and message: {body}"
    );
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    let (code, body) = app.get("/api/flights/not-a-uuid").await;
    assert_eq!(code, 400);
    assert_error(&body, "INVALID_FLIGHT_ID");
    let (code, body) = app.get(&format!("/api/flights/{}", Uuid::new_v4())).await;
    assert_eq!(code, 404);
    assert_error(&body, "FLIGHT_NOT_FOUND");
    let (code, body) = app.get("/api/nothing-here").await;
    assert_eq!(code, 404);
    assert_error(&body, "NOT_FOUND");
    let (code, body) = app.delete("/api/flights").await;
    assert_eq!(code, 405);
    assert_error(&body, "METHOD_NOT_ALLOWED");

    let raw = |body: &'static str| {
        app.http
            .post(app.url("/api/orders"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = raw("{not json").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_error(&resp.json().await.unwrap(), "INVALID_JSON");
    let resp = raw(r#"{"flightId": 7, "seats": "1A"}"#).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_error(&resp.json().await.unwrap(), "INVALID_REQUEST");
    let big = format!(
        r#"{{"flightId": "{}", "seats": []}}"#,
        "x".repeat(64 * 1024)
    );
    let resp = app
        .http
        .post(app.url("/api/orders"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_error(&resp.json().await.unwrap(), "PAYLOAD_TOO_LARGE");
    let (code, body) = app
        .post(
            "/api/orders",
            json!({"flightId": FL101, "seats": ["1A", "1A"]}),
        )
        .await;
    assert_eq!(code, 400);
    assert_error(&body, "INVALID_SEATS");
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL201, "seats": ["16A"]}))
        .await;
    assert_eq!(code, 400, "FL201 has 15 rows");
    assert_error(&body, "INVALID_SEATS");
    for seat in ["1é", " 1A", "+1A"] {
        let (code, body) = app
            .post("/api/orders", json!({"flightId": FL101, "seats": [seat]}))
            .await;
        assert_eq!(code, 400, "{seat:?}: {body}");
        assert_error(&body, "INVALID_SEATS");
    }
}

#[tokio::test]
async fn health_names_redis_while_it_is_down_and_recovers() {
    let mut redis = servers::Redis::start();
    let mut settings = support::isolated_settings(true).await;
    settings.redis.target = support::redis_target(&redis.addr());
    let app = TestApp::with_worker(settings).await;
    let body = support::eventually("a worker polling", Duration::from_secs(30), || async {
        let (code, body) = app.get("/health").await;
        (code == 200).then_some(body)
    })
    .await;
    assert_eq!(
        body,
        json!({"status": "ok", "checks": {
            "postgres": "ok", "redis": "ok", "temporal": "ok", "worker": "ok"
        }})
    );

    redis.stop();
    let (code, body) = app.get("/health").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert!(
        body["checks"]["redis"].as_str().unwrap().contains("redis"),
        "{body}"
    );
    let (code, body) = app.get(&format!("/api/flights/{FL101}")).await;
    assert_eq!(code, 503, "{body}");
    assert_error(&body, "SERVICE_UNAVAILABLE");
    let (code, _) = app.get("/api/nothing").await;
    assert_eq!(code, 404, "the server keeps serving");

    redis.restart();
    support::eventually("health to recover", Duration::from_secs(20), || async {
        let (code, body) = app.get("/health").await;
        (code == 200).then_some(body)
    })
    .await;
    let (code, _) = app.get(&format!("/api/flights/{FL101}")).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn health_names_the_worker_while_none_polls_the_task_queue() {
    let mut app = TestApp::spawn(support::isolated_settings(true).await).await;
    // Why, on the admin listener; on the public one, which check only.
    let (code, body) = app.admin_get("/health").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["checks"]["temporal"], "ok", "{body}");
    let worker = body["checks"]["worker"].as_str().unwrap();
    assert!(worker.contains("no worker has polled"), "{body}");
    assert!(worker.contains(&app.settings.temporal.task_queue), "{body}");
    let (code, body) = app.get("/health").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["checks"]["worker"], "worker unavailable", "{body}");
    app.start_worker().await;
    support::eventually("health with a worker", Duration::from_secs(30), || async {
        let (code, body) = app.get("/health").await;
        (code == 200 && body["checks"]["worker"] == "ok").then_some(())
    })
    .await;
}

#[tokio::test]
async fn health_reports_temporal_when_it_is_unreachable() {
    let mut settings = support::isolated_settings(false).await;
    settings.temporal.host = format!("127.0.0.1:{}", support::procs::free_port());
    let app = TestApp::spawn(settings).await;
    let (code, body) = app.get("/health").await;
    assert_eq!(code, 503);
    assert!(
        body["checks"]["temporal"]
            .as_str()
            .unwrap()
            .contains("temporal"),
        "{body}"
    );
    assert_eq!(body["checks"]["redis"], "ok");
    let (code, _) = app.get("/api/flights").await;
    assert_eq!(code, 200, "flights do not need Temporal");
}

/// Liveness checks only the process: with Temporal unreachable, readiness
/// (and `/health`, its older name) is 503 while `/livez` answers 200 at once.
#[tokio::test]
async fn livez_answers_while_readiness_fails_on_an_unreachable_temporal() {
    let mut settings = support::isolated_settings(false).await;
    settings.temporal.host = format!("127.0.0.1:{}", support::procs::free_port());
    let app = TestApp::spawn(settings).await;
    for path in ["/readyz", "/health"] {
        let (code, body) = app.get(path).await;
        assert_eq!(code, 503, "{path}: {body}");
        assert_eq!(body["status"], "unavailable", "{path}: {body}");
        assert!(
            body["checks"]["temporal"]
                .as_str()
                .unwrap()
                .contains("temporal"),
            "{path}: {body}"
        );
    }
    let started = std::time::Instant::now();
    let (code, body) = app.get("/livez").await;
    assert_eq!((code, body), (200, json!({"status": "ok"})));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "/livez waited on something: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn orders_get_503_while_temporal_is_down_and_work_when_it_returns() {
    let mut temporal = servers::Temporal::start();
    let mut settings = support::isolated_settings(false).await;
    settings.temporal.host = temporal.host();
    let app = TestApp::with_worker(settings).await;
    let order = json!({"flightId": FL101, "seats": ["1A"]});
    let (code, body) = app.post("/api/orders", order.clone()).await;
    assert_eq!(code, 201, "{body}");
    let id = body["orderId"].as_str().unwrap().to_string();

    temporal.stop();
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": ["2A"]}))
        .await;
    assert_eq!(code, 503, "{body}");
    assert_error(&body, "SERVICE_UNAVAILABLE");
    let (code, body) = app.get(&format!("/api/orders/{id}/status")).await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("SEATS_RESERVED")),
        "answered from the row: {body}"
    );
    let (code, _) = app.get("/health").await;
    assert_eq!(code, 503);

    temporal.restart();
    let (code, body) =
        support::eventually("orders to work again", Duration::from_secs(60), || async {
            let (code, body) = app
                .post("/api/orders", json!({"flightId": FL101, "seats": ["2A"]}))
                .await;
            (code != 503).then_some((code, body))
        })
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = app.delete(&format!("/api/orders/{id}")).await;
    assert_eq!(
        code, 200,
        "the first order's workflow survived the restart: {body}"
    );
}

#[tokio::test]
async fn the_worker_exits_with_a_clear_message_when_temporal_is_unreachable() {
    let mut settings = support::isolated_settings(false).await;
    support::prepare_database(&settings).await;
    settings.temporal.host = format!("127.0.0.1:{}", support::procs::free_port());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flightctl"))
        .arg("worker")
        .env_clear()
        .envs(support::worker_env(&settings))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("temporal at 127.0.0.1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The worker drains on SIGTERM (what Kubernetes sends before a pod goes):
/// it stops polling, finishes the payment attempt it holds and exits 0
/// within the grace period; a new worker settles the order, nothing stuck.
#[tokio::test]
async fn the_worker_drains_on_sigterm_and_a_new_one_settles_the_order() {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_validation_timeout = Duration::from_secs(2);
    settings.booking.payment_max_attempts = 2;
    settings.booking.payment_failure_rate = 0.0;
    let mut app = TestApp::spawn(settings).await;
    app.start_worker().await;
    support::eventually("the worker to poll", Duration::from_secs(30), || async {
        app.worker_log(0).contains("worker polling").then_some(())
    })
    .await;
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": ["4C"]}))
        .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    let status = format!("/api/orders/{order}/status");
    app.name_passengers(&order).await;
    // `88888` hangs each attempt until the validation timeout.
    let (code, body) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "88888"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    support::eventually(
        "a payment attempt in flight",
        Duration::from_secs(20),
        || async {
            let (_, s) = app.get(&status).await;
            (s["status"] == "PAYMENT_PROCESSING").then_some(())
        },
    )
    .await;

    let grace = Duration::from_secs(30);
    let pid = app.worker().pid();
    let signalled = std::time::Instant::now();
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let exit = app.worker().wait_exit(grace);
    let log = app.worker_log(0);
    let exit = exit.unwrap_or_else(|| panic!("worker still running after {grace:?}: {log}"));
    assert!(exit.success(), "{exit:?}: {log}");
    let drained = log
        .find("stopped polling")
        .zip(log.find("worker stopped"))
        .is_some_and(|(stopping, stopped)| stopping < stopped);
    assert!(drained, "stopped polling, then finished: {log}");
    assert!(
        !log.contains('\x1b'),
        "a log written to a file carries no terminal colour codes: {log}"
    );
    eprintln!("worker drained in {:?}", signalled.elapsed());

    app.start_worker().await;
    let settled = support::eventually("the order to settle", Duration::from_secs(40), || async {
        let (_, s) = app.get(&status).await;
        (s["status"] == "FAILED").then_some(s)
    })
    .await;
    assert_eq!(settled["paymentAttempts"], 2, "{settled}");
    let seats = app.seat_statuses(FL101).await;
    assert_eq!(seats["4C"], "available", "the hold is released");
}

#[tokio::test]
async fn an_unexpected_database_error_is_500_without_its_text_and_an_outage_503() {
    let settings = support::isolated_settings(false).await;
    let app = TestApp::spawn(settings).await;
    let conn = app.pool.get().await.unwrap();
    // A schema the code does not expect: every seat-map read now fails.
    conn.batch_execute("ALTER TABLE seats RENAME COLUMN row_num TO row_number")
        .await
        .unwrap();
    let (code, body) = app.get(&format!("/api/flights/{FL101}")).await;
    assert_eq!(code, 500, "{body}");
    assert_error(&body, "INTERNAL");
    let text = body.to_string();
    for internal in ["row_num", "column", "42703", "postgres"] {
        assert!(!text.contains(internal), "{internal} leaked: {body}");
    }
    conn.batch_execute("ALTER TABLE seats RENAME COLUMN row_number TO row_num")
        .await
        .unwrap();
    assert_eq!(app.get(&format!("/api/flights/{FL101}")).await.0, 200);

    // Postgres refusing connections is an outage: 503, also without its text.
    let mut admin = app.settings.database.pg_config().unwrap();
    let db = admin.get_dbname().unwrap().to_string();
    admin.dbname("postgres");
    let (admin, connection) = admin.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let allow = |yes: bool| format!("ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS {yes}");
    admin.batch_execute(&allow(false)).await.unwrap();
    let fresh = flightctl::store::pg_pool(&app.settings.database).unwrap();
    let err = flightctl::store::flights::find(&fresh, FL101.parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, flightctl::store::StoreError::Postgres(_)),
        "{err:?}"
    );
    let api = flightctl::api::ApiError::from(err);
    assert_eq!(api.status().as_u16(), 503);
    assert!(!api.message.contains("55000") && !api.message.contains("connection"));
    admin.batch_execute(&allow(true)).await.unwrap();
}

#[tokio::test]
async fn every_request_has_an_id_echoed_back_and_in_json_logs() {
    let settings = support::isolated_settings(false).await;
    support::prepare_database(&settings).await;
    let env = [("LOG_FORMAT", "json"), ("RUST_LOG", "info")];
    let (_serve, port, log) = support::serve_process(&settings, &env);
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/flights/{FL101}");

    let resp = http
        .get(&url)
        .header("X-Request-Id", "checkout-42.a_b")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "checkout-42.a_b");
    for sent in [None, Some("has spaces"), Some(&*"x".repeat(129))] {
        let mut req = http.get(&url);
        if let Some(id) = sent {
            req = req.header("X-Request-Id", id);
        }
        let resp = req.send().await.unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
    let order = OrderId::random();
    let status = format!("http://127.0.0.1:{port}/api/orders/{order}/status");
    let resp = http
        .get(&status)
        .header("X-Request-Id", "order-req")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let lines = support::eventually("the request logged", Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("order-req").then_some(text)
    })
    .await;
    let entries: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let logged = |id: &str| {
        entries
            .iter()
            .find(|e| e["span"]["request_id"] == id)
            .cloned()
    };
    let first = logged("checkout-42.a_b")
        .unwrap_or_else(|| panic!("no line with the caller's request id in:\n{lines}"));
    assert!(
        first["message"].as_str().unwrap().contains("200"),
        "{first}"
    );
    let about_order = logged("order-req")
        .unwrap_or_else(|| panic!("no line with the order's request id in:\n{lines}"));
    assert_eq!(
        about_order["span"]["order_id"],
        order.to_string(),
        "{about_order}"
    );
}

/// One order, followed across processes: the request ids of its creation
/// and payment are in `serve`'s log and in the worker's activity log, with
/// the order and workflow ids.
#[tokio::test]
async fn request_ids_reach_the_worker_logs_of_the_same_order() {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let app = TestApp::with_worker(settings).await;
    let env = [("LOG_FORMAT", "json"), ("RUST_LOG", "info")];
    let (_serve, port, log) = support::serve_process(&app.settings, &env);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let resp = http
        .post(format!("{base}/api/orders"))
        .header("X-Request-Id", "trace-create-1")
        .json(&json!({"flightId": FL201, "seats": ["9A"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let order = resp.json::<Value>().await.unwrap()["orderId"]
        .as_str()
        .unwrap()
        .to_string();
    app.name_passengers(&order).await;
    let resp = http
        .post(format!("{base}/api/orders/{order}/pay"))
        .header("X-Request-Id", "trace-pay-2")
        .json(&json!({"paymentCode": "00000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let worker = support::eventually(
        "the sale in the worker's log",
        Duration::from_secs(60),
        || async {
            let log = app.worker_log(0);
            log.contains("sale").then_some(log)
        },
    )
    .await;
    let workflow = format!("booking-{order}");
    let line_with = |text: &str, id: &str| {
        text.lines()
            .find(|l| l.contains(id) && l.contains(&order) && l.contains(&workflow))
            .map(str::to_string)
    };
    for id in ["trace-create-1", "trace-pay-2"] {
        let line = line_with(&worker, id)
            .unwrap_or_else(|| panic!("no worker line with {id}, {order}, {workflow}:\n{worker}"));
        assert!(line.contains("activity"), "{line}");
        let served = std::fs::read_to_string(&log).unwrap();
        let line = line_with(&served, id)
            .unwrap_or_else(|| panic!("no serve line with {id}, {order}, {workflow}:\n{served}"));
        let entry: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(entry["span"]["request_id"], id, "{entry}");
        assert_eq!(entry["span"]["workflow_id"], workflow, "{entry}");
    }
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, `serve` exports its request
/// spans over OTLP/HTTP: a stand-in collector on a free port receives
/// `POST /v1/traces` (protobuf) naming the service and the request id.
#[tokio::test]
async fn traces_are_exported_over_otlp_when_an_endpoint_is_set() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let settings = support::isolated_settings(false).await;
    support::prepare_database(&settings).await;
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let (got, mut received) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = collector.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    let Some(head_end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= head_end + 4 + length {
                        let _ = got.send(buf.clone());
                        let _ = conn
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        buf.clear();
                    }
                }
            });
        }
    });
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("RUST_LOG", "info"),
    ];
    let (mut serve, port, _log) = support::serve_process(&settings, &env);
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/flights"))
        .header("X-Request-Id", "otel-trace-7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Stopping flushes the batch at once.
    serve.stop();
    let request = tokio::time::timeout(Duration::from_secs(15), received.recv())
        .await
        .expect("the collector received traces")
        .unwrap();
    let text = String::from_utf8_lossy(&request);
    assert!(text.starts_with("POST /v1/traces "), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/x-protobuf"),
        "{text}"
    );
    for expected in ["flightctl-serve", "otel-trace-7", "request"] {
        assert!(text.contains(expected), "{expected} missing in {text}");
    }
}
