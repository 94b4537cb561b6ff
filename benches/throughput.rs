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
//!
//! `cargo bench --bench throughput -- --streams` runs only what a crowd of
//! idle streams costs (section `streams`): 10,000 streams on a `serve`
//! process of their own — order streams and seat-map streams of the
//! flight being booked, each from its own loopback address (the per-client
//! stream cap) — and bookings/s and status p99 with and without them, and
//! the serve process's memory per stream. It raises the open-files limit
//! (a socket at each end of every stream, both on this machine).

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
    /// The idle streams of the `streams` section, by kind.
    crowd: Vec<(StreamKind, usize)>,
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
    let statuses = app.seat_statuses(flight).await.into_iter();
    let free = statuses.filter(|(_, status)| status == "available");
    let mut seats: Vec<String> = free.map(|(seat, _)| seat).collect();
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

/// A kind of idle stream the `streams` section opens: what it is called
/// and where `n` of them are opened. Another kind is another variant.
#[derive(Clone, Copy, Debug)]
enum StreamKind {
    /// An order's page (`/api/orders/{id}/events`), a held order each.
    Orders,
    /// The seat map of the flight being booked: every booking is pushed
    /// to every one of them.
    SeatMaps,
}

impl StreamKind {
    fn name(self) -> &'static str {
        match self {
            StreamKind::Orders => "order",
            StreamKind::SeatMaps => "seat-map",
        }
    }

    /// `n` URLs to open (rows they need made first).
    async fn urls(self, app: &TestApp, n: usize) -> Vec<String> {
        match self {
            StreamKind::Orders => order_pages(app, n).await,
            StreamKind::SeatMaps => {
                let seat_map = app.url(&format!("/api/flights/{FL102}/events"));
                vec![seat_map; n]
            }
        }
    }
}

/// Each idle viewer's own address, far from the customers' that book.
const VIEWER_ADDRESSES: usize = 100_000;
/// Streams being opened at once.
const OPENING_AT_ONCE: usize = 64;

/// A crowd of idle streams: opened many at once, each from an address of
/// its own, read to its first event, then drained.
async fn open_crowd(urls: &[String]) -> Viewers {
    use futures::StreamExt;
    let received = Arc::new(AtomicUsize::new(0));
    let opened: Vec<EventStream> = futures::stream::iter(urls.iter().enumerate())
        .map(|(i, url)| async move {
            let client = sse::client_from(support::customer_address(VIEWER_ADDRESSES + i));
            let mut stream = EventStream::open(&client, url, None).await;
            stream
                .next(Duration::from_secs(60))
                .await
                .expect("a first event");
            stream
        })
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    let tasks = opened
        .into_iter()
        .map(|stream| {
            let received = received.clone();
            tokio::spawn(async move { stream.drain(&received).await })
        })
        .collect();
    Viewers { tasks, received }
}

/// Status reads of `orders` from 16 clients: the latencies.
async fn status_latencies(app: &TestApp, orders: Arc<Vec<String>>, n: usize) -> Vec<Duration> {
    let (http, base) = (app.http.clone(), app.address.clone());
    let (mut samples, _) = concurrently(n, 16, move |i| {
        let (http, base, orders) = (http.clone(), base.clone(), orders.clone());
        async move {
            let order = &orders[i % orders.len()];
            let resp = http
                .get(format!("{base}/api/orders/{order}/status"))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
            resp.bytes().await.unwrap();
        }
    })
    .await;
    samples.sort();
    samples
}

/// Let this process (and the `serve` it starts) hold a socket at each end
/// of every stream: the soft limit raised to `want` (or the hard limit).
fn raise_open_files(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a plain get/set of this process's own limit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        let raised = libc::rlimit {
            rlim_cur: want.max(limit.rlim_cur),
            rlim_max: want.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            // Not allowed above the hard limit: as high as that.
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    println!("open files: soft limit {}", limit.rlim_cur);
}

/// What a crowd of idle streams costs: bookings/s and status latency with
/// and without them (without, with, without, with, without: the dev
/// server drifts), on a `serve` process of their own, and its memory per
/// stream.
async fn streams_cost(app: &TestApp, scale: &Scale) {
    let total: usize = scale.crowd.iter().map(|(_, n)| n).sum();
    raise_open_files(4 * total as u64 + 4_096);
    let (serve, port, _log) = support::serve_process(&app.settings, &[]);
    let address = format!("http://127.0.0.1:{port}");
    let served = TestApp::served_at(app.settings.clone(), address, app.pool.clone()).await;
    let mut urls = Vec::with_capacity(total);
    let mut kinds = Vec::new();
    for (kind, n) in &scale.crowd {
        urls.extend(kind.urls(&served, *n).await);
        kinds.push(format!("{n} {}", kind.name()));
    }
    let crowd = kinds.join(" + ");
    println!(
        "streams: {crowd} streams on one serve process (pid {})",
        serve.pid()
    );
    let status_orders: Arc<Vec<String>> = Arc::new(
        hold_seats(&served, FL201, 16)
            .await
            .into_iter()
            .map(|(order, _, _)| order)
            .collect(),
    );
    let w = scale.window;
    let (mut bare, mut viewed) = (Vec::new(), Vec::new());
    let (mut bare_status, mut viewed_status) = (Vec::new(), Vec::new());
    let (mut pushed, mut server_kib, mut client_kib) = (0, 0.0f64, 0.0f64);
    for round in 0..3 {
        let rate = engine::booking_rate(&served, w).await;
        engine::print_rate("booking cycles/s, no streams", &rate);
        bare.push(rate.per_second);
        bare_status
            .extend(status_latencies(&served, status_orders.clone(), scale.status_reads).await);
        if round == 2 {
            break;
        }
        let (serve_before, bench_before) = (rss_kib(serve.pid()), rss_kib(std::process::id()));
        let opening = Instant::now();
        let viewers = open_crowd(&urls).await;
        let opened = opening.elapsed();
        let (serve_after, bench_after) = (rss_kib(serve.pid()), rss_kib(std::process::id()));
        let per = |before: Option<u64>, after: Option<u64>| {
            after.unwrap_or(0).saturating_sub(before.unwrap_or(0)) as f64 / total.max(1) as f64
        };
        // The first opening allocates; a later one may reuse freed memory.
        server_kib = server_kib.max(per(serve_before, serve_after));
        client_kib = client_kib.max(per(bench_before, bench_after));
        engine::line(
            "streams opened",
            format!(
                "{total} in {opened:.1?} ({:.0}/s)",
                total as f64 / opened.as_secs_f64()
            ),
        );
        let rate = engine::booking_rate(&served, w).await;
        engine::print_rate(&format!("booking cycles/s, {total} streams open"), &rate);
        viewed.push(rate.per_second);
        viewed_status
            .extend(status_latencies(&served, status_orders.clone(), scale.status_reads).await);
        pushed += viewers.close();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (bare, viewed) = (mean(&bare), mean(&viewed));
    bare_status.sort();
    viewed_status.sort();
    let p = |s: &[Duration], q| percentile(s, q);
    engine::line(
        "events pushed to the open streams",
        format!("{pushed} (while booking and reading)"),
    );
    engine::line(
        "bookings/s with the streams / without",
        format!(
            "{:.3}× ({viewed:.1}/s of {bare:.1}/s, means): cost {:.1} % (goal ≤ 5 %)",
            viewed / bare.max(f64::MIN_POSITIVE),
            (1.0 - viewed / bare.max(f64::MIN_POSITIVE)) * 100.0
        ),
    );
    let (p99_bare, p99_viewed) = (p(&bare_status, 0.99), p(&viewed_status, 0.99));
    engine::line(
        "status p50 / p99 without the streams",
        format!("{:.2?} / {p99_bare:.2?}", p(&bare_status, 0.50)),
    );
    engine::line(
        "status p50 / p99 with the streams",
        format!(
            "{:.2?} / {p99_viewed:.2?}: p99 {:.2}× (goal ≤ 2×)",
            p(&viewed_status, 0.50),
            p99_viewed.as_secs_f64() / p99_bare.as_secs_f64().max(f64::MIN_POSITIVE)
        ),
    );
    engine::line(
        "memory per open stream",
        format!("server {server_kib:.1} KiB, client {client_kib:.1} KiB ({total} streams)"),
    );
    drop(serve);
}

async fn run(scale: Scale) {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let mut app = TestApp::with_worker(settings).await;
    // `FLIGHTCTL_BENCH_ONLY=viewers,expiry` runs only those sections.
    let only = std::env::var("FLIGHTCTL_BENCH_ONLY").unwrap_or_default();
    let streams_only = std::env::args().any(|a| a == "--streams");
    let runs = |section: &str| match streams_only {
        true => section == "streams",
        false => only.is_empty() || only.split(',').any(|s| s == section),
    };
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
    if runs("streams") {
        streams_cost(&app, &scale).await;
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
            crowd: vec![(StreamKind::Orders, 8_000), (StreamKind::SeatMaps, 2_000)],
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
            crowd: vec![(StreamKind::Orders, 20), (StreamKind::SeatMaps, 4)],
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
