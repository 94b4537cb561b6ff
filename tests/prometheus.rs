//! Prometheus for real: Debian's `prometheus`, configured from the shipped
//! `monitoring/prometheus.yml` (only the targets and the interval swapped
//! for the test's, see `support::prometheus`), scrapes a running `serve` and
//! two `flightctl worker` processes while bookings happen; then every PromQL
//! expression of the Grafana dashboard is evaluated through Prometheus's
//! HTTP API, as Grafana would ask for it, and each returns data.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::prometheus::{self, Prometheus};
use support::{FL101, TestApp};

/// The test's scrape interval: rates need two samples in their window.
const SCRAPE_INTERVAL_S: u64 = 1;

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn dashboard() -> Value {
    let path = support::repo_root().join("monitoring/grafana/dashboards/flightctl.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("the dashboard is JSON")
}

/// Every panel, those nested in rows included: `(title, [expr])`.
fn panel_exprs(panels: &Value, out: &mut Vec<(String, Vec<String>)>) {
    for panel in panels.as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        if panel["type"] != "row" {
            let exprs = panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["expr"].as_str().map(str::to_string))
                .collect();
            out.push((title, exprs));
        }
        panel_exprs(&panel["panels"], out);
    }
}

/// Grafana's variables, as Grafana would set them for this test: a step of
/// one scrape interval (its minimum), `$__rate_interval` by Grafana's rule
/// (max of step + scrape interval and four scrape intervals), `$__range` the
/// span Prometheus has data for; and the dashboard's own variables at their
/// current values.
fn variables(dashboard: &Value, range_s: u64) -> Vec<(String, String)> {
    let step = SCRAPE_INTERVAL_S;
    let rate = (step + SCRAPE_INTERVAL_S).max(4 * SCRAPE_INTERVAL_S);
    let mut vars = vec![
        ("__interval_ms".to_string(), (step * 1000).to_string()),
        ("__interval".to_string(), format!("{step}s")),
        ("__rate_interval".to_string(), format!("{rate}s")),
        ("__range_ms".to_string(), (range_s * 1000).to_string()),
        ("__range_s".to_string(), range_s.to_string()),
        ("__range".to_string(), format!("{range_s}s")),
    ];
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = var["name"].as_str().expect("a variable's name");
        let value = match &var["current"]["value"] {
            Value::String(v) => v.clone(),
            Value::Array(vs) => vs
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("|"),
            other => panic!("variable {name}: no current value to test with ({other})"),
        };
        vars.push((name.to_string(), value));
    }
    // Longest first: `$__interval_ms` is not `$__interval` followed by `_ms`.
    vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    vars
}

fn substitute(expr: &str, vars: &[(String, String)]) -> String {
    let mut out = expr.to_string();
    for (name, value) in vars {
        for form in [
            format!("${{{name}}}"),
            format!("[[{name}]]"),
            format!("${name}"),
        ] {
            out = out.replace(&form, value);
        }
    }
    let unresolved = out.match_indices('$').any(|(i, _)| {
        out[i + 1..]
            .chars()
            .next()
            .is_some_and(|c| c == '{' || c == '_' || c.is_ascii_alphabetic())
    });
    assert!(!unresolved, "a Grafana variable left in {expr:?}: {out:?}");
    out
}

/// The labels an expression groups its result by (`sum by (status)`),
/// but `le`, which `histogram_quantile` consumes: a panel's legend names
/// its series by them, so a label no series carries is a defect.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("by") {
        let after = rest[at + 2..].trim_start();
        let word_start =
            at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if word_start && after.starts_with('(') {
            let inside = &after[1..after.find(')').expect("a closing parenthesis")];
            labels.extend(
                inside
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && *l != "le")
                    .map(str::to_string),
            );
        }
        rest = &rest[at + 2..];
    }
    labels.sort();
    labels.dedup();
    labels
}

/// The grouping labels of `expr` that no series of `instant` carries.
fn missing_labels(expr: &str, instant: &Value) -> Vec<String> {
    let series = instant["result"].as_array().cloned().unwrap_or_default();
    grouping_labels(expr)
        .into_iter()
        .filter(|label| !series.iter().any(|s| s["metric"].get(label).is_some()))
        .collect()
}

/// One expression's evaluation: instant at now, and over the test's span
/// as a time series panel draws it.
struct Evaluated {
    series_now: usize,
    finite_points: usize,
    instant: Value,
}

async fn evaluate(prom: &Prometheus, expr: &str, start: f64) -> Evaluated {
    let instant = prom.query(expr).await;
    let range = prom
        .query_range(expr, start, &format!("{SCRAPE_INTERVAL_S}s"))
        .await;
    Evaluated {
        series_now: prometheus::series(&instant),
        finite_points: prometheus::values(&range)
            .into_iter()
            .filter(|v| v.is_finite())
            .count(),
        instant,
    }
}

/// Check every item until each has passed once (a failing one is checked
/// again every half second); after `within`, what the failing ones last
/// reported.
async fn until_each<T, F, Fut>(items: Vec<T>, within: Duration, mut check: F) -> Result<(), String>
where
    T: Clone,
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut pending = items;
    loop {
        let mut failing = Vec::new();
        let mut reports = Vec::new();
        for item in pending {
            if let Err(report) = check(item.clone()).await {
                failing.push(item);
                reports.push(report);
            }
        }
        if failing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(reports.join("\n"));
        }
        pending = failing;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[test]
fn grouping_labels_are_read_from_by_clauses() {
    assert_eq!(
        grouping_labels("histogram_quantile(0.99, sum by (le, route) (rate(x_bucket[4s])))"),
        ["route"]
    );
    assert_eq!(
        grouping_labels("sum by(status)(rate(x[1m])) / sum(rate(bytes[1m]))"),
        ["status"]
    );
    assert!(grouping_labels("max(flightctl_live_holds)").is_empty());
}

#[tokio::test]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let shipped_path = support::repo_root().join("monitoring/prometheus.yml");
    prometheus::check_config(&shipped_path);
    let (dashboard, exprs) = dashboard_queries();
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_validation_timeout = Duration::from_secs(1);
    settings.booking.payment_failure_rate = 0.0;
    // The waiting room's buyers speak from their own addresses.
    settings.server.trusted_proxies =
        flightctl::config::TrustedProxies::parse("127.0.0.1/32").unwrap();
    let mut app = TestApp::spawn(settings).await;
    let (prom, started) = prometheus_scraping_two_workers(&mut app, &shipped_path).await;
    // What the dashboard shows: a seat map stream open throughout.
    let stream = app.open_seat_map_stream(FL101).await;
    let confirmed = make_what_the_dashboard_shows(&app).await;
    let viewer = keep_reading_the_status(&app, &confirmed);
    wait_in_a_scheduled_sale(&app).await;
    assert_prometheus_saw_the_bookings(&prom).await;
    assert_every_query_draws(&prom, &dashboard, exprs, started).await;
    viewer.abort();
    drop(stream);
}

/// A scheduled sale's waiting room, as the dashboard shows it: two buyers
/// pre-queued and admitted at the opening, then, scrapes later, a third
/// who joins after it, so the wait histogram grows between scrapes.
async fn wait_in_a_scheduled_sale(app: &TestApp) {
    let ops = support::signed_in_operator(app, "prom-ops").await;
    let opens = chrono::Utc::now() + chrono::Duration::seconds(2);
    let body = json!({"flightNumber": "Q1", "origin": "BER", "destination": "LIS",
        "departureTime": "2031-06-01T08:30:00Z", "arrivalTime": "2031-06-01T11:45:00Z",
        "rows": 1, "seatLetters": "ABC", "priceCents": 12900, "salesOpenAt": opens.to_rfc3339()});
    let resp = ops
        .post(app.url("/api/ops/flights"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let flight: Value = resp.json().await.unwrap();
    let flight = flight["id"].as_str().unwrap().to_string();
    let queue = |who: u8, ticket: Option<String>| {
        let path = match ticket {
            None => format!("/api/flights/{flight}/queue"),
            Some(t) => format!("/api/flights/{flight}/queue/{t}"),
        };
        let method = if path.ends_with("/queue") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let req = app
            .http
            .request(method, app.url(&path))
            .header("X-Forwarded-For", format!("198.51.100.{who}"));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let admitted = |who: u8, ticket: String| {
        let queue = &queue;
        async move {
            support::eventually("admitted", Duration::from_secs(20), || {
                let ticket = ticket.clone();
                async move {
                    let t = queue(who, Some(ticket)).await;
                    (t["state"] == "ADMITTED").then_some(())
                }
            })
            .await
        }
    };
    let first = queue(1, None).await["ticket"].as_str().unwrap().to_string();
    let second = queue(2, None).await["ticket"].as_str().unwrap().to_string();
    admitted(1, first).await;
    admitted(2, second).await;
    tokio::time::sleep(Duration::from_secs(3 * SCRAPE_INTERVAL_S)).await;
    let third = queue(3, None).await["ticket"].as_str().unwrap().to_string();
    admitted(3, third).await;
    tokio::time::sleep(Duration::from_secs(3 * SCRAPE_INTERVAL_S)).await;
}

/// The dashboard and its `(panel title, expression)` pairs, every panel
/// querying something.
fn dashboard_queries() -> (Value, Vec<(String, String)>) {
    let dashboard = dashboard();
    let mut panels = Vec::new();
    panel_exprs(&dashboard["panels"], &mut panels);
    for (title, exprs) in &panels {
        assert!(!exprs.is_empty(), "panel {title:?} queries nothing");
    }
    let exprs: Vec<(String, String)> = panels
        .iter()
        .flat_map(|(title, exprs)| exprs.iter().map(move |e| (title.clone(), e.clone())))
        .collect();
    // Today's dashboard has 12 panels and 15 queries: an extraction that
    // finds far fewer is broken, not a pass.
    assert!(
        panels.len() >= 10 && exprs.len() >= 12,
        "{} panels, {} expressions found",
        panels.len(),
        exprs.len()
    );

    (dashboard, exprs)
}

/// Two workers with metrics ports, and a Prometheus running the shipped
/// configuration against them and the API, every target up; returns it and
/// when it started.
async fn prometheus_scraping_two_workers(
    app: &mut TestApp,
    shipped_path: &std::path::Path,
) -> (Prometheus, f64) {
    let worker_ports = [support::procs::free_port(), support::procs::free_port()];
    for port in worker_ports {
        app.start_worker_with(&[("WORKER_METRICS_PORT", port.to_string())])
            .await;
    }
    // serve's metrics are on its admin listener.
    let api_target = app.admin_address.trim_start_matches("http://").to_string();
    let worker_targets: Vec<String> = worker_ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let config = prometheus::config_for(
        &std::fs::read_to_string(shipped_path).unwrap(),
        &format!("{SCRAPE_INTERVAL_S}s"),
        &[
            ("flightctl-api", vec![api_target]),
            ("flightctl-worker", worker_targets),
        ],
    );
    let prom = Prometheus::start(&config).await;
    let started = now_s();
    prom.wait_targets_up(
        &[
            ("flightctl-api", 1),
            ("flightctl-worker", worker_ports.len()),
        ],
        Duration::from_secs(20),
    )
    .await;

    (prom, started)
}

/// A confirmed order (returned), a seat conflict, a cancellation, declined
/// payment attempts, and a hold left live.
async fn make_what_the_dashboard_shows(app: &TestApp) -> String {
    let create = |seats: &'static [&'static str]| async move {
        app.post("/api/orders", json!({"flightId": FL101, "seats": seats}))
            .await
    };
    let order_id = |body: &Value| body["orderId"].as_str().unwrap().to_string();
    let (code, body) = create(&["1A", "1B"]).await;
    assert_eq!(code, 201, "{body}");
    let confirmed = order_id(&body);
    let (code, body) = create(&["1B", "1C"]).await;
    assert_eq!(code, 409, "{body}");
    app.name_passengers(&confirmed).await;
    let pay = |order: String, code: &'static str| async move {
        app.post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": code}),
        )
        .await
    };
    let (code, body) = pay(confirmed.clone(), "00000").await;
    assert_eq!(code, 202, "{body}");
    let (code, body) = create(&["2A"]).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = app
        .delete(&format!("/api/orders/{}", order_id(&body)))
        .await;
    assert_eq!(code, 200, "{body}");
    // Declined on every attempt: its attempts are counted as they happen.
    let (code, body) = create(&["3A"]).await;
    assert_eq!(code, 201, "{body}");
    let declined = order_id(&body);
    app.name_passengers(&declined).await;
    let (code, body) = pay(declined, "99999").await;
    assert_eq!(code, 202, "{body}");
    let (code, body) = create(&["4A", "4B"]).await;
    assert_eq!(code, 201, "{body}");
    support::eventually("the order confirmed", Duration::from_secs(30), || async {
        let (_, s) = app.get(&format!("/api/orders/{confirmed}/status")).await;
        (s["status"] == "CONFIRMED").then_some(())
    })
    .await;
    confirmed
}

/// A customer keeps the confirmed order's page open, its status read
/// every half second: requests go on while Prometheus scrapes, so the
/// latency histogram grows between samples (one request a route, all made
/// between two scrapes, leaves every rate 0 and each p99 NaN).
fn keep_reading_the_status(app: &TestApp, confirmed: &str) -> tokio::task::JoinHandle<()> {
    let (http, url) = (
        app.http.clone(),
        app.url(&format!("/api/orders/{confirmed}/status")),
    );
    tokio::spawn(async move {
        loop {
            let _ = http.get(&url).send().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// The bookings reached Prometheus, summed across the workers.
async fn assert_prometheus_saw_the_bookings(prom: &Prometheus) {
    let facts: [(&str, f64); 7] = [
        ("count(up{job=\"flightctl-worker\"} == 1)", 2.0),
        ("count(up{job=\"flightctl-api\"} == 1)", 1.0),
        (
            "sum(flightctl_orders_ended_total{status=\"confirmed\"})",
            1.0,
        ),
        (
            "sum(flightctl_orders_ended_total{status=\"cancelled\"})",
            1.0,
        ),
        (
            "sum(flightctl_payment_attempts_total{outcome=\"declined\"})",
            1.0,
        ),
        ("sum(flightctl_holds_refused_total)", 1.0),
        ("max(flightctl_live_holds)", 2.0),
    ];
    let seen = until_each(
        facts.to_vec(),
        Duration::from_secs(30),
        |(expr, min)| async move {
            let data = prom.query(expr).await;
            match prometheus::values(&data).iter().any(|v| *v >= min) {
                true => Ok(()),
                false => Err(format!("{expr} >= {min}: {data}")),
            }
        },
    )
    .await;
    if let Err(report) = seen {
        panic!("Prometheus never saw:\n{report}");
    }
}

/// Every dashboard expression: a series now, carrying the labels it is
/// grouped by, and a value a panel can draw (not NaN: a quantile of no
/// requests) over the test's span.
async fn assert_every_query_draws(
    prom: &Prometheus,
    dashboard: &Value,
    exprs: Vec<(String, String)>,
    started: f64,
) {
    let answered = until_each(exprs, Duration::from_secs(30), |(title, expr)| async move {
        let range_s = (now_s() - started).ceil() as u64;
        let query = substitute(&expr, &variables(dashboard, range_s.max(1)));
        let got = evaluate(prom, &query, started).await;
        let missing = missing_labels(&query, &got.instant);
        if got.series_now > 0 && got.finite_points > 0 && missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{title}: {query}\n  now: {} series {}; over the test: {} finite points; \
                 grouped by labels no series has: {missing:?}",
            got.series_now, got.instant, got.finite_points
        ))
    })
    .await;
    if let Err(report) = answered {
        panic!(
            "dashboard queries without usable data:\n{report}\nPrometheus's log:\n{}",
            prom.log()
        );
    }
}
