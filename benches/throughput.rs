//! Figures, not pass/fail: seat-hold throughput in Redis, seat-map reads
//! through the API, and booking latency through Temporal, on the same real
//! servers the tests use. `cargo bench` prints them; `cargo test` runs a tiny
//! version so this stays working.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::burst::percentile;
use support::{FL101, FL102, TestApp};
use uuid::Uuid;

struct Scale {
    holds: usize,
    reads: usize,
    bookings: usize,
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
    let flight = Uuid::new_v4();
    let (samples, wall) = concurrently(scale.holds, 16, move |i| {
        let holds = holds.clone();
        async move {
            let order = Uuid::new_v4();
            let seats = vec![format!("{}A", i % 500 + 1), format!("{}B", i % 500 + 1)];
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

async fn bookings(app: &TestApp, scale: &Scale) {
    let (http, base) = (app.http.clone(), app.address.clone());
    let (samples, wall) = concurrently(scale.bookings, 4, move |i| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let seat = format!("{}{}", i / 6 + 1, ['A', 'B', 'C', 'D', 'E', 'F'][i % 6]);
            let resp = http
                .post(format!("{base}/api/orders"))
                .json(&json!({"flightId": FL102, "seats": [seat]}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
        }
    })
    .await;
    report(
        "temporal: POST /api/orders, hold taken (4 clients)",
        samples,
        wall,
    );
}

async fn run(scale: Scale) {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let mut app = TestApp::with_worker(settings).await;
    holds(&app, &scale).await;
    seat_map(&app, &scale).await;
    bookings(&app, &scale).await;
    let worker = app.worker().pid();
    if let Some(kib) = rss_kib(worker) {
        println!(
            "{:<44} {:>7.1} MiB",
            "memory: worker process RSS after the run",
            kib as f64 / 1024.0
        );
    }
    if let Some(kib) = rss_kib(std::process::id()) {
        println!(
            "{:<44} {:>7.1} MiB",
            "memory: API + bench process RSS",
            kib as f64 / 1024.0
        );
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full {
        Scale {
            holds: 20_000,
            reads: 5_000,
            bookings: 120,
        }
    } else {
        Scale {
            holds: 50,
            reads: 20,
            bookings: 4,
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(scale));
}
