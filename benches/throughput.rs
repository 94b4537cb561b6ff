//! Figures, not pass/fail, on the same real servers the tests use:
//! seat-hold throughput in Redis, seat-map reads and status reads through the
//! API, booking latency through Temporal; then what viewers cost — booking
//! throughput with and without idle order and seat-map streams open, memory
//! per stream — the engine share against a same-shape no-op workflow,
//! confirmed bookings/s against it with the workflow tasks and history
//! events each confirmed booking costs (`sale`), and
//! the expiry lag (deadline → seat shown free on a seat-map stream) of
//! simultaneous expiries. `cargo bench --bench throughput` prints them;
//! `cargo test` runs a tiny version so this stays working.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flightctl::domain::{FlightId, OrderId};
use serde_json::json;
use support::burst::percentile;
use support::engine::{self, Window};
use support::sse::{self, EventStream};
use support::{FL101, FL102, FL201, TestApp};

struct Scale {
    holds: usize,
    reads: usize,
    bookings: usize,
    status_reads: usize,
    order_streams: usize,
    seat_streams: usize,
    expiries: usize,
    window: Window,
}

fn report(what: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    println!(
        "{what:<44} {:>7} ops {:>9.0} ops/s   p50 {:>8.2?}   p99 {:>8.2?}",
        samples.len(),
        samples.len() as f64 / wall.as_secs_f64(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
    );
}

/// Run `n` operations over `concurrency` tasks; each returns its latency.
async fn concurrently<F, Fut>(n: usize, concurrency: usize, op: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                for i in (t..n).step_by(concurrency) {
                    let began = Instant::now();
                    op(i).await;
                    samples.push(began.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, start.elapsed())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn holds(app: &TestApp, scale: &Scale) {
    let holds = Arc::new(app.holds.clone());
    let flight = FlightId::random();
    let (samples, wall) = concurrently(scale.holds, 16, move |i| {
        let holds = holds.clone();
        async move {
            let order = OrderId::random();
            let row = i % 500 + 1;
            let seats = [format!("{row}A"), format!("{row}B")].map(|s| support::seat(&s));
            holds
                .lock(flight, order, &seats, Duration::from_secs(60))
                .await
                .unwrap();
            holds.release(flight, order, &seats).await.unwrap();
        }
    })
    .await;
    report("redis: lock 2 seats + release (16 tasks)", samples, wall);
}

async fn seat_map(app: &TestApp, scale: &Scale) {
    let (http, url) = (app.http.clone(), app.url(&format!("/api/flights/{FL101}")));
    let (samples, wall) = concurrently(scale.reads, 8, move |_| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let resp = http.get(&url).send().await.unwrap();
            assert!(resp.status().is_success());
            resp.bytes().await.unwrap();
        }
    })
    .await;
    report("http: GET seat map, 120 seats (8 clients)", samples, wall);
}

/// Orders created through Temporal; they are cancelled afterwards, so the
/// flight is free for what follows.
async fn bookings(app: &TestApp, scale: &Scale) {
    // Each order a customer of its own (the server counts live orders per
    // client address), its client made before the clock runs.
    let customers: Arc<Vec<reqwest::Client>> =
        Arc::new((0..scale.bookings).map(support::customer_client).collect());
    let base = app.address.clone();
    let created = Arc::new(std::sync::Mutex::new(Vec::new()));
    let orders = created.clone();
    let (samples, wall) = concurrently(scale.bookings, 4, move |i| {
        let (http, base, orders) = (customers[i].clone(), base.clone(), orders.clone());
        async move {
            let seat = format!("{}{}", i / 6 + 1, ['A', 'B', 'C', 'D', 'E', 'F'][i % 6]);
            let resp = http
                .post(format!("{base}/api/orders"))
                .json(&json!({"flightId": FL102, "seats": [seat]}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
            let body: serde_json::Value = resp.json().await.unwrap();
            let order = body["orderId"].as_str().unwrap().to_string();
            orders.lock().unwrap().push(order);
        }
    })
    .await;
    let orders = std::mem::take(&mut *created.lock().unwrap());
    for order in orders {
        let (code, _) = app.delete(&format!("/api/orders/{order}")).await;
        assert_eq!(code, 200);
    }
    report(
        "temporal: POST /api/orders, hold taken (4 clients)",
        samples,
        wall,
    );
}

/// `n` orders holding one seat each of `flight`, created through the API
/// (retrying a busy answer); returns `(orderId, seat, expiresAt ms)`.
async fn hold_seats(app: &TestApp, flight: &str, n: usize) -> Vec<(String, String, i64)> {
    let mut seats: Vec<String> = app.seat_statuses(flight).await.into_keys().collect();
    seats.sort();
    seats.truncate(n);
    let (base, flight) = (app.address.clone(), flight.to_string());
    // Each order a customer of its own, as for `bookings`.
    let tasks = seats.into_iter().enumerate().map(|(i, seat)| {
        let (http, base, flight) = (support::customer_client(i), base.clone(), flight.clone());
        tokio::spawn(async move {
            loop {
                let resp = http
                    .post(format!("{base}/api/orders"))
                    .json(&json!({"flightId": flight, "seats": [seat]}))
                    .send()
                    .await
                    .unwrap();
                if resp.status() == 503 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                assert_eq!(resp.status(), 201);
                let body: serde_json::Value = resp.json().await.unwrap();
                let expires = body["expiresAt"].as_str().unwrap();
                let expires = chrono::DateTime::parse_from_rfc3339(expires).unwrap();
                let order = body["orderId"].as_str().unwrap().to_string();
                return (order, seat, expires.timestamp_millis());
            }
        })
    });
    let mut held = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        held.push(t.await.unwrap());
    }
    held
}

/// `GET /api/orders/{id}/status` of live orders from 16 clients: answered
/// from the order row, no Temporal query.
async fn status_reads(app: &TestApp, scale: &Scale) {
    let orders: Arc<Vec<String>> = Arc::new(
        hold_seats(app, FL201, 16)
            .await
            .into_iter()
            .map(|(order, _, _)| order)
            .collect(),
    );
    let (http, base) = (app.http.clone(), app.address.clone());
    let (samples, wall) = concurrently(scale.status_reads, 16, move |i| {
        let (http, base, orders) = (http.clone(), base.clone(), orders.clone());
        async move {
            let order = &orders[i % orders.len()];
            let url = format!("{base}/api/orders/{order}/status");
            let resp = http.get(url).send().await.unwrap();
            assert!(resp.status().is_success());
            resp.bytes().await.unwrap();
        }
    })
    .await;
    report("http: GET order status (16 clients)", samples, wall);
}

/// The pages of `n` held orders: rows saved directly, as many as no flight
/// has seats for (a stream reads only the row).
async fn order_pages(app: &TestApp, n: usize) -> Vec<String> {
    let flight: FlightId = FL101.parse().unwrap();
    let mut urls = Vec::new();
    for i in 0..n {
        let id = OrderId::random();
        let seat = format!("{}A", i % 20 + 1);
        let order = flightctl::store::orders::Order {
            expires_at: Some(chrono::Utc::now() + chrono::Duration::minutes(15)),
            ..support::order_row(id, flight, &[&seat])
        };
        let saved = flightctl::store::orders::save(&app.pool, &order, None).await;
        saved.unwrap();
        urls.push(app.url(&format!("/api/orders/{id}/events")));
    }
    urls
}

/// Open streams on `urls`, each read to its first event, then drained by a
/// task that counts what arrives (without parsing it: the client's cost is
/// not the server's).
struct Viewers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    received: Arc<AtomicUsize>,
}

impl Viewers {
    async fn open(urls: &[String]) -> Viewers {
        let received = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        // Each viewer a customer of its own: the server counts open streams
        // per client address.
        for (i, url) in urls.iter().enumerate() {
            let client = sse::client_from(support::customer_address(i));
            let mut stream = EventStream::open(&client, url, None).await;
            let first = stream.next(Duration::from_secs(10)).await;
            first.expect("a first event");
            let received = received.clone();
            tasks.push(tokio::spawn(async move { stream.drain(&received).await }));
        }
        Viewers { tasks, received }
    }

    /// Close every stream; returns how many events they received.
    fn close(self) -> usize {
        for task in self.tasks {
            task.abort();
        }
        self.received.load(Ordering::Relaxed)
    }
}

fn print_rss(what: &str, kib: u64) {
    println!("{what:<44} {:>7.1} MiB", kib as f64 / 1024.0);
}

/// Booking throughput without viewers and with them, alternated (without,
/// with, without, with, without: the dev server's rate drifts), and the
/// engine share from no-op runs before and after it all.
async fn viewers_and_engine_share(app: &TestApp, scale: &Scale) {
    let w = scale.window;
    println!(
        "engine: {} clients, {:.1?} measured after {:.1?} warm-up per rate",
        engine::CLIENTS,
        w.measure,
        w.warmup
    );
    let mut urls = order_pages(app, scale.order_streams).await;
    let seat_map = app.url(&format!("/api/flights/{FL102}/events"));
    urls.extend(std::iter::repeat_n(seat_map, scale.seat_streams));
    let with = format!(
        "booking cycles/s, {} + {} streams open",
        scale.order_streams, scale.seat_streams
    );

    let noop_before = engine::noop_rate(app, w).await;
    engine::print_rate("no-op workflow cycles/s (before)", &noop_before);
    let (mut bare, mut viewed, mut pushed, mut per_stream) = (Vec::new(), Vec::new(), 0, 0.0);
    for round in 0..3 {
        let rate = engine::booking_rate(app, w).await;
        engine::print_rate("booking cycles/s, no viewers", &rate);
        bare.push(rate.per_second);
        if round == 2 {
            break;
        }
        let rss_before = rss_kib(std::process::id()).unwrap_or(0);
        let viewers = Viewers::open(&urls).await;
        let rss_after = rss_kib(std::process::id()).unwrap_or(0);
        // The first opening allocates; a later one may reuse freed memory.
        let grown = rss_after.saturating_sub(rss_before) as f64 / urls.len().max(1) as f64;
        per_stream = f64::max(per_stream, grown);
        let rate = engine::booking_rate(app, w).await;
        engine::print_rate(&with, &rate);
        viewed.push(rate.per_second);
        pushed += viewers.close();
    }
    let noop_after = engine::noop_rate(app, w).await;
    engine::print_rate("no-op workflow cycles/s (after)", &noop_after);

    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (bare, viewed) = (mean(&bare), mean(&viewed));
    let noop = mean(&[noop_before.per_second, noop_after.per_second]);
    engine::line(
        "events pushed to the open streams",
        format!("{pushed} (while booking)"),
    );
    engine::line(
        "memory per open stream (server + client)",
        format!("{per_stream:.1} KiB ({} streams)", urls.len()),
    );
    engine::line(
        "throughput with viewers / without",
        format!(
            "{:.3}× ({viewed:.1}/s of {bare:.1}/s, means)",
            viewed / bare.max(f64::MIN_POSITIVE)
        ),
    );
    engine::line(
        "engine share the booking code keeps",
        format!(
            "{:.1} % (booking {bare:.1}/s of the no-op {noop:.1}/s)",
            bare / noop.max(f64::MIN_POSITIVE) * 100.0
        ),
    );
}

/// `expiries` holds made at once expire together: how long after each
/// deadline a seat-map stream shows the seat free.
async fn expiry_lag(scale: &Scale) {
    let hold = Duration::from_secs(8);
    let mut settings = support::isolated_settings(true).await;
    settings.booking.seat_reservation_timeout = hold;
    let app = TestApp::with_worker(settings).await;
    let client = sse::client();
    let url = app.url(&format!("/api/flights/{FL101}/events"));
    let mut stream = EventStream::open(&client, &url, None).await;
    stream
        .next(Duration::from_secs(10))
        .await
        .expect("a snapshot");
    let held = hold_seats(&app, FL101, scale.expiries).await;
    let mut deadline: std::collections::HashMap<String, i64> =
        held.into_iter().map(|(_, seat, at)| (seat, at)).collect();
    let first = deadline.values().min().copied().unwrap_or(0);
    let last = deadline.values().max().copied().unwrap_or(0);
    let mut lags = Vec::new();
    while !deadline.is_empty() {
        let event = stream.next(hold * 3).await.expect("the stream stays open");
        if event.data["status"] != "available" {
            continue;
        }
        let seat = event.data["seat"].as_str().unwrap_or_default();
        if let Some(at) = deadline.remove(seat) {
            let now = chrono::Utc::now().timestamp_millis();
            lags.push(Duration::from_millis((now - at).max(0) as u64));
        }
    }
    lags.sort();
    println!(
        "{:<44} {:>7} seats  deadlines within {:>5} ms   p50 {:>8.2?}   p99 {:>8.2?}",
        "expiry lag: deadline → seat free on a stream",
        lags.len(),
        last - first,
        percentile(&lags, 0.50),
        percentile(&lags, 0.99),
    );
}

async fn run(scale: Scale) {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let mut app = TestApp::with_worker(settings).await;
    // `FLIGHTCTL_BENCH_ONLY=viewers,expiry` runs only those sections.
    let only = std::env::var("FLIGHTCTL_BENCH_ONLY").unwrap_or_default();
    let runs = |section: &str| only.is_empty() || only.split(',').any(|s| s == section);
    if runs("holds") {
        holds(&app, &scale).await;
    }
    if runs("reads") {
        seat_map(&app, &scale).await;
    }
    if runs("bookings") {
        bookings(&app, &scale).await;
    }
    if runs("status") {
        status_reads(&app, &scale).await;
    }
    if runs("viewers") {
        viewers_and_engine_share(&app, &scale).await;
    }
    if runs("sale") {
        // Confirmed bookings (create, pay naming the passenger, CONFIRMED)
        // against the no-op workflow, and what each costs the engine.
        engine::sale_share(&app, scale.window, engine::SALE_CLIENTS, 1).await;
    }
    if runs("expiry") {
        expiry_lag(&scale).await;
    }
    let worker = app.worker().pid();
    if let Some(kib) = rss_kib(worker) {
        print_rss("memory: worker process RSS after the run", kib);
    }
    if let Some(kib) = rss_kib(std::process::id()) {
        print_rss("memory: API + bench process RSS", kib);
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full {
        Scale {
            holds: 20_000,
            reads: 5_000,
            bookings: 120,
            status_reads: 5_000,
            order_streams: 1_000,
            seat_streams: 100,
            expiries: 40,
            window: Window {
                warmup: Duration::from_secs(3),
                measure: Duration::from_secs(15),
            },
        }
    } else {
        Scale {
            holds: 50,
            reads: 20,
            bookings: 4,
            status_reads: 32,
            order_streams: 20,
            seat_streams: 4,
            expiries: 4,
            window: Window {
                warmup: Duration::from_millis(300),
                measure: Duration::from_secs(1),
            },
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(scale));
}
