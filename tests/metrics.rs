//! Metrics after real bookings: `serve`'s `GET /metrics` (in-process) and a
//! `flightctl worker` process's metrics port, scraped over HTTP.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{FL101, TestApp};

/// A sample's value: the line of `name` whose labels include all of
/// `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest),
                None => (series, ""),
            };
            let matches = metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse().ok()).flatten()
        })
}

fn at_least(text: &str, name: &str, labels: &[(&str, &str)], min: f64) {
    let value =
        sample(text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{text}"));
    assert!(
        value >= min,
        "{name}{labels:?} is {value}, expected at least {min}"
    );
}

async fn scrape(http: &reqwest::Client, url: &str) -> String {
    let resp = http.get(url).send().await.expect("scrape");
    assert_eq!(resp.status(), 200, "{url}");
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain"), "{url}: {kind}");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn metrics_show_the_named_series_after_a_booking() {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_validation_timeout = Duration::from_secs(1);
    settings.booking.payment_failure_rate = 0.0;
    let mut app = TestApp::spawn(settings).await;
    let worker_port = support::procs::free_port();
    app.start_worker_with(&[("WORKER_METRICS_PORT", worker_port.to_string())])
        .await;
    let worker_metrics = format!("http://127.0.0.1:{worker_port}/metrics");
    // serve's metrics are on its admin listener.
    let serve_metrics = app.admin_url("/metrics");

    // A seat map stream stays open while the booking happens.
    let stream = app.open_seat_map_stream(FL101).await;
    let order = hold_two_seats_refuse_a_taken_one_and_miss_a_route(&app).await;
    let text = scrape(&app.http, &serve_metrics).await;
    assert_eq!(sample(&text, "flightctl_live_holds", &[]), Some(2.0));
    at_least(
        &text,
        "flightctl_open_event_streams",
        &[("route", "/api/flights/{id}/events")],
        1.0,
    );
    pay_the_order_and_cancel_another(&app, &order).await;

    // serve: HTTP by route pattern, method and status; holds; streams.
    let text = scrape(&app.http, &serve_metrics).await;
    assert_http_series(&text, &order);
    assert_hold_series(&text);
    // The stream, closed, is no longer counted open.
    drop(stream);
    wait_until_the_stream_is_counted_closed(&app, &serve_metrics).await;

    // worker: endings and payment attempts, and the Temporal SDK's own.
    let text = support::eventually("the worker's counts", Duration::from_secs(20), || async {
        let text = scrape(&app.http, &worker_metrics).await;
        let done = sample(
            &text,
            "flightctl_orders_ended_total",
            &[("status", "cancelled")],
        )
        .is_some_and(|n| n >= 1.0);
        done.then_some(text)
    })
    .await;
    assert_ending_and_payment_series(&text);
    assert_sdk_series(&text);
}

/// A 201 holding 1A and 1B (returned), a 409 for 1B again, a 404.
async fn hold_two_seats_refuse_a_taken_one_and_miss_a_route(app: &TestApp) -> String {
    let (code, body) = app
        .post(
            "/api/orders",
            json!({"flightId": FL101, "seats": ["1A", "1B"]}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    let (code, body) = app
        .post(
            "/api/orders",
            json!({"flightId": FL101, "seats": ["1B", "1C"]}),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    let (code, _) = app.get("/no/such/route").await;
    assert_eq!(code, 404);

    order
}

/// `order` paid and confirmed; another order created and cancelled.
async fn pay_the_order_and_cancel_another(app: &TestApp, order: &str) {
    app.name_passengers(order).await;
    let (code, body) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    support::eventually("the order confirmed", Duration::from_secs(30), || async {
        let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
        (s["status"] == "CONFIRMED").then_some(())
    })
    .await;
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": ["2A"]}))
        .await;
    assert_eq!(code, 201, "{body}");
    let cancelled = body["orderId"].as_str().unwrap().to_string();
    let (code, body) = app.delete(&format!("/api/orders/{cancelled}")).await;
    assert_eq!(code, 200, "{body}");
}

/// `serve`'s HTTP series: by route pattern, method and status, never a raw
/// path; event streams counted, not timed.
fn assert_http_series(text: &str, order: &str) {
    let create = [("method", "POST"), ("route", "/api/orders")];
    let created = [create[0], create[1], ("status", "201")];
    at_least(text, "flightctl_http_requests_total", &created, 2.0);
    at_least(
        text,
        "flightctl_http_requests_total",
        &[create[0], create[1], ("status", "409")],
        1.0,
    );
    at_least(
        text,
        "flightctl_http_request_duration_seconds_count",
        &created,
        2.0,
    );
    at_least(
        text,
        "flightctl_http_request_duration_seconds_bucket",
        &[created[0], created[1], created[2], ("le", "+Inf")],
        2.0,
    );
    at_least(
        text,
        "flightctl_http_requests_total",
        &[
            ("method", "POST"),
            ("route", "/api/orders/{id}/pay"),
            ("status", "202"),
        ],
        1.0,
    );
    at_least(
        text,
        "flightctl_http_requests_total",
        &[("route", "unmatched"), ("status", "404")],
        1.0,
    );
    assert!(
        !text.contains(order) && !text.contains("/no/such/route"),
        "raw paths are never labels:\n{text}"
    );
    // The open stream is counted, not timed.
    at_least(
        text,
        "flightctl_http_requests_total",
        &[("route", "/api/flights/{id}/events"), ("status", "200")],
        1.0,
    );
    assert_eq!(
        sample(
            text,
            "flightctl_http_request_duration_seconds_count",
            &[("route", "/api/flights/{id}/events")]
        ),
        None,
        "event streams stay out of the latency histogram"
    );
}

/// `serve`'s hold series: taken and refused by request, none live at the end.
fn assert_hold_series(text: &str) {
    at_least(
        text,
        "flightctl_holds_taken_total",
        &[("request", "create")],
        2.0,
    );
    at_least(
        text,
        "flightctl_holds_refused_total",
        &[("request", "create")],
        1.0,
    );
    assert!(
        sample(
            text,
            "flightctl_holds_taken_total",
            &[("request", "change")]
        )
        .is_some()
    );
    assert_eq!(
        sample(text, "flightctl_admission_rejections_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(text, "flightctl_live_holds", &[]),
        Some(0.0),
        "sold and cancelled seats are held no more"
    );
}

/// The server notices a closed stream when it next writes to it: a change
/// of the seat map.
async fn wait_until_the_stream_is_counted_closed(app: &TestApp, serve_metrics: &str) {
    support::eventually(
        "the stream counted closed",
        Duration::from_secs(20),
        || async {
            let (code, body) = app
                .post("/api/orders", json!({"flightId": FL101, "seats": ["3A"]}))
                .await;
            assert_eq!(code, 201, "{body}");
            let id = body["orderId"].as_str().unwrap().to_string();
            app.delete(&format!("/api/orders/{id}")).await;
            let text = scrape(&app.http, serve_metrics).await;
            let open = sample(
                &text,
                "flightctl_open_event_streams",
                &[("route", "/api/flights/{id}/events")],
            );
            (open == Some(0.0)).then_some(())
        },
    )
    .await;
}

/// The worker's endings and payment attempts, every outcome from the start.
fn assert_ending_and_payment_series(text: &str) {
    at_least(
        text,
        "flightctl_orders_ended_total",
        &[("status", "confirmed")],
        1.0,
    );
    for status in ["expired", "failed"] {
        assert!(
            sample(text, "flightctl_orders_ended_total", &[("status", status)]).is_some(),
            "{status} from the start"
        );
    }
    at_least(
        text,
        "flightctl_payment_attempts_total",
        &[("outcome", "succeeded")],
        1.0,
    );
    for outcome in ["declined", "timed_out", "error"] {
        assert!(
            sample(
                text,
                "flightctl_payment_attempts_total",
                &[("outcome", outcome)]
            )
            .is_some(),
            "{outcome} from the start"
        );
    }
}

/// The Temporal SDK's series, with its `temporal_` prefix.
fn assert_sdk_series(text: &str) {
    at_least(
        text,
        "temporal_workflow_completed",
        &[("workflow_type", "Booking")],
        2.0,
    );
    at_least(text, "temporal_worker_start", &[], 1.0);
    at_least(
        text,
        "temporal_workflow_task_execution_latency_count",
        &[("workflow_type", "Booking")],
        1.0,
    );
    at_least(
        text,
        "temporal_workflow_task_schedule_to_start_latency_count",
        &[],
        1.0,
    );
    assert!(
        sample(
            text,
            "temporal_worker_task_slots_used",
            &[("worker_type", "WorkflowWorker")]
        )
        .is_some()
    );
    at_least(
        text,
        "temporal_num_pollers",
        &[("poller_type", "workflow_task")],
        1.0,
    );
}
