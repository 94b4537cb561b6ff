//! A sign-in flood against a `serve` process, figures printed: what a
//! hostile crowd signing in with random names costs the customers.
//!
//! A `serve` process (the release build under `cargo bench`) on the real
//! Postgres and Redis; one order in the store. First a quiet spell: a few
//! customers read their order's status in a loop (p95 printed). Then the
//! flood: `FLOODERS` clients at once, each from its own loopback address
//! (a crowd, not one client the per-address limit stops after 20
//! failures), each signing in with a random name and a wrong password as
//! fast as it is answered, for the flood's length, while the customers go
//! on. Printed: `serve`'s resident memory before and at its peak during the
//! flood (targets: growth under 128 MiB), the customers' status p95 quiet
//! and under the flood (target: within 5×), and how the sign-ins were
//! answered (401 checked, 429 limited, 503 busy).
//!
//! `cargo bench --bench signin_flood` runs the full size (60 clients for
//! 6 s); `cargo test` runs a smoke size so this stays working. The random
//! names come from a printed seed (`FLOOD_SEED=<seed>` repeats them).

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flightctl::domain::FlightId;
use flightctl::ops::{Password, hash_password};
use flightctl::store::{ops, orders};
use rand::{Rng, SeedableRng};
use serde_json::json;
use support::burst::percentile;
use support::{FL101, isolated_settings};
use uuid::Uuid;

struct Scale {
    flooders: usize,
    flood: Duration,
    quiet: Duration,
    customers: usize,
}

const FULL: Scale = Scale {
    flooders: 60,
    flood: Duration::from_secs(6),
    quiet: Duration::from_secs(4),
    customers: 4,
};

const SMOKE: Scale = Scale {
    flooders: 8,
    flood: Duration::from_secs(1),
    quiet: Duration::from_millis(500),
    customers: 2,
};

/// The process's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn client_from(address: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Customers reading `url` in a loop until `stop`; their latencies.
fn customers(
    n: usize,
    url: String,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Duration>>> {
    (0..n)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            let http = client_from(IpAddr::V4(Ipv4Addr::LOCALHOST));
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let resp = http.get(&url).send().await;
                    let ok = match resp {
                        Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    assert!(ok, "a customer's status read failed");
                    samples.push(began.elapsed());
                }
                samples
            })
        })
        .collect()
}

async fn latencies(tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>) -> Vec<Duration> {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    all
}

/// How the flood's sign-ins were answered.
#[derive(Default, Debug)]
struct Answers {
    checked: usize,
    limited: usize,
    busy: usize,
    other: usize,
}

async fn run(scale: Scale) {
    let seed: u64 = std::env::var("FLOOD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("sign-in flood: seed {seed} (FLOOD_SEED={seed} repeats the names)");
    let settings = isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let order = Uuid::new_v4();
    let flight: FlightId = FL101.parse().unwrap();
    let row = support::order_row(order.into(), flight, &["3C"]);
    orders::save(&pool, &row, None).await.unwrap();
    let hash = hash_password(&Password::new("correct horse battery staple")).unwrap();
    ops::put_operator(&pool, "ada", &hash).await.unwrap();

    let env = [("RUST_LOG", "warn")];
    let (serve, port, _log) = support::serve_process(&settings, &env);
    let base = format!("http://127.0.0.1:{port}");
    let status_url = format!("{base}/api/orders/{order}/status");
    // Warm up: connections, the pool, the first allocations.
    let warm = client_from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    for _ in 0..20 {
        assert_eq!(warm.get(&status_url).send().await.unwrap().status(), 200);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let quiet = customers(scale.customers, status_url.clone(), stop.clone());
    tokio::time::sleep(scale.quiet).await;
    stop.store(true, Ordering::Relaxed);
    let quiet = latencies(quiet).await;
    let before = rss_kib(serve.pid());

    let stop = Arc::new(AtomicBool::new(false));
    let loud = customers(scale.customers, status_url.clone(), stop.clone());
    let session_url = format!("{base}/api/ops/session");
    let flooders: Vec<_> = (0..scale.flooders)
        .map(|i| {
            let address = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + i as u8));
            let http = client_from(address);
            let (url, stop) = (session_url.clone(), stop.clone());
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(i as u64));
            tokio::spawn(async move {
                let mut answers = Answers::default();
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("op-{:012x}", rng.random::<u64>() >> 16);
                    let body = json!({"name": name, "password": "not the password, not at all"});
                    let code = match http.post(&url).json(&body).send().await {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    match code {
                        401 => answers.checked += 1,
                        429 => answers.limited += 1,
                        503 => answers.busy += 1,
                        _ => answers.other += 1,
                    }
                }
                answers
            })
        })
        .collect();
    let began = Instant::now();
    let mut peak = before;
    while began.elapsed() < scale.flood {
        peak = peak.max(rss_kib(serve.pid()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut answers = Answers::default();
    for f in flooders {
        let a = f.await.unwrap();
        answers.checked += a.checked;
        answers.limited += a.limited;
        answers.busy += a.busy;
        answers.other += a.other;
    }
    peak = peak.max(rss_kib(serve.pid()));
    let loud = latencies(loud).await;

    let (p95_quiet, p95_loud) = (percentile(&quiet, 0.95), percentile(&loud, 0.95));
    let growth_mib = peak.saturating_sub(before) as f64 / 1024.0;
    let ratio = p95_loud.as_secs_f64() / p95_quiet.as_secs_f64().max(1e-6);
    let total = answers.checked + answers.limited + answers.busy + answers.other;
    println!(
        "  {} clients signing in with random names for {:.1?}: {total} sign-ins, \
         401 checked {}, 429 limited {}, 503 busy {}, other {}",
        scale.flooders, scale.flood, answers.checked, answers.limited, answers.busy, answers.other
    );
    println!(
        "  serve's resident memory: {:.1} MiB before, {:.1} MiB at the peak: growth {growth_mib:.1} MiB (target < 128 MiB)",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
    println!(
        "  customers' status p95: quiet {p95_quiet:.2?} ({} reads), under the flood {p95_loud:.2?} ({} reads): {ratio:.1}× (target within 5×)",
        quiet.len(),
        loud.len(),
    );
    println!(
        "summary sign-in flood: growth {growth_mib:.1} MiB, status p95 {p95_quiet:.2?} -> {p95_loud:.2?} ({ratio:.1}x), refusals {} (429 {} + 503 {}), checked {}",
        answers.limited + answers.busy,
        answers.limited,
        answers.busy,
        answers.checked,
    );
    assert_eq!(answers.other, 0, "every sign-in answered 401, 429 or 503");
    drop(serve);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(if full { FULL } else { SMOKE }));
}
