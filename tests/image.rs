//! The container image, for real: the Dockerfile built with podman (its
//! `runtime-prebuilt` target: what the `runtime` stage ships, with the
//! binary this test run built, on a Debian base made with debootstrap;
//! README "Container image"), then `migrate up`, `seed`, `worker`,
//! `deployment set-current` and `serve` run as containers of it against the
//! harness's Postgres, Redis and Temporal (`--network host`, read-only root
//! file system, the image's non-root user), and a booking made through the
//! containerised `serve`.
//!
//! Needs podman, runc and debootstrap (scripts/install-prereqs.sh) and root
//! for debootstrap the first time; a missing tool fails the test.

#[path = "image/podman.rs"]
mod podman;
mod support;

use std::time::Duration;

use flightctl::domain::OrderStatus;
use podman::{Containers, MachineLock, Podman};
use serde_json::{Value, json};
use support::{FL101, procs};

/// The image's user (Dockerfile: `USER 10001:10001`).
const APP_UID: u32 = 10001;

#[tokio::test(flavor = "multi_thread")]
async fn the_image_migrates_seeds_and_takes_a_booking_as_containers() {
    let podman = std::sync::Arc::new(Podman::find());
    // The base image and the build (minutes when cold) on a blocking
    // thread, while the harness's servers start.
    let p = podman.clone();
    let built = tokio::task::spawn_blocking(move || {
        let lock = MachineLock::acquire(Duration::from_secs(300));
        p.remove_stale_containers();
        p.ensure_base_image();
        (lock, p.build_image())
    });
    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_failure_rate = 0.0;
    let (_lock, image) = built.await.unwrap();

    let user = podman.ok(
        "podman image inspect",
        &["image", "inspect", "--format", "{{.Config.User}}", &image],
        Duration::from_secs(30),
    );
    assert_eq!(user, format!("{APP_UID}:{APP_UID}"), "the image's user");

    let env = support::worker_env(&settings);
    let mut containers = Containers::new(&podman, &image);

    run_the_one_shot_jobs(&mut containers, &env);
    let worker = start_a_current_worker(&mut containers, &env, &settings.worker.build_id);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (serve, base) = start_a_healthy_serve(&podman, &mut containers, &env, &http).await;
    for name in [&serve, &worker] {
        assert_eq!(
            main_process_uids(&podman, name),
            [APP_UID; 4],
            "{name} runs as the image's user (real, effective, saved, fs uid)"
        );
    }

    let order = book_and_pay_through_the_containers(&http, &base).await;
    // Postgres, the authority, agrees.
    let pool = flightctl::store::pg_pool(&settings.database).unwrap();
    let row = flightctl::store::orders::find(&pool, order.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(row.status, OrderStatus::Confirmed);
    assert!(
        row.reference.is_some(),
        "a confirmed booking has a reference"
    );
}

/// The one-shot jobs of compose.yaml, against a fresh database.
fn run_the_one_shot_jobs(containers: &mut Containers, env: &[(&'static str, String)]) {
    let migrated = containers.run_once("migrate", &["migrate", "up"], env);
    assert!(
        migrated.starts_with("migrations: applied V1"),
        "migrate up printed {migrated:?}"
    );
    let seeded = containers.run_once("seed", &["seed"], env);
    assert!(
        seeded.starts_with("seed: inserted") && !seeded.starts_with("seed: inserted 0 "),
        "seed printed {seeded:?}"
    );
}

/// A worker, then its build made current as compose's `deployment` job
/// does (Temporal refuses a version no worker polls); returns the worker's
/// container.
fn start_a_current_worker(
    containers: &mut Containers,
    env: &[(&'static str, String)],
    build_id: &str,
) -> String {
    let worker = containers.start("worker", &[], &["worker"], env);
    let current = containers.run_once(
        "deployment",
        &["deployment", "set-current", "--wait", "60s"],
        env,
    );
    assert!(
        current.ends_with(&format!("build {} is current", build_id)),
        "deployment set-current printed {current:?}"
    );

    worker
}

/// `serve` in a container, with compose.yaml's healthcheck; waits until
/// its /health answers 200 and the image's healthcheck passes; returns the
/// container and its address.
async fn start_a_healthy_serve(
    podman: &Podman,
    containers: &mut Containers<'_>,
    env: &[(&'static str, String)],
    http: &reqwest::Client,
) -> (String, String) {
    let port = procs::free_port();
    let mut serve_env = env.to_vec();
    serve_env.push(("SERVER_HOST", "127.0.0.1".into()));
    serve_env.push(("SERVER_PORT", port.to_string()));
    // compose.yaml's healthcheck of `serve`, run by podman on demand.
    let health_cmd = format!("curl -fsS -o /dev/null http://127.0.0.1:{port}/health");
    let serve = containers.start(
        "serve",
        &[
            "--health-cmd".into(),
            health_cmd,
            "--health-interval".into(),
            "disable".into(),
        ],
        &["serve"],
        &serve_env,
    );
    let base = format!("http://127.0.0.1:{port}");

    // /health answers 200 once Postgres, Redis and Temporal answer and a
    // worker polls the task queue.
    support::eventually(
        "the containerised serve's /health to pass",
        Duration::from_secs(60),
        || async {
            let resp = http.get(format!("{base}/health")).send().await.ok()?;
            (resp.status() == 200).then_some(())
        },
    )
    .await;
    let health = podman.output(
        "podman healthcheck run",
        &["healthcheck", "run", &serve],
        Duration::from_secs(30),
    );
    assert!(
        health.status.success(),
        "the image's healthcheck failed: {}{}",
        String::from_utf8_lossy(&health.stdout),
        String::from_utf8_lossy(&health.stderr)
    );

    (serve, base)
}

/// A booking through the containerised serve, paid by the containerised
/// worker, confirmed with its seats after one attempt; returns the order.
async fn book_and_pay_through_the_containers(http: &reqwest::Client, base: &str) -> String {
    let (code, body) = send(
        http,
        reqwest::Method::POST,
        format!("{base}/api/orders"),
        json!({"flightId": FL101, "seats": ["1A", "1B"]}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    let passengers: Vec<Value> = ["1A", "1B"]
        .iter()
        .map(|seat| json!({"seat": seat, "givenName": "Test", "familyName": "Passenger"}))
        .collect();
    let (code, body) = send(
        http,
        reqwest::Method::PUT,
        format!("{base}/api/orders/{order}/passengers"),
        json!({ "passengers": passengers }),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = send(
        http,
        reqwest::Method::POST,
        format!("{base}/api/orders/{order}/pay"),
        json!({"paymentCode": "00000"}),
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let status = support::eventually(
        &format!("order {order} to be CONFIRMED"),
        Duration::from_secs(60),
        || async {
            let resp = http
                .get(format!("{base}/api/orders/{order}/status"))
                .send()
                .await
                .ok()?;
            let status: Value = resp.json().await.ok()?;
            (status["status"] == "CONFIRMED").then_some(status)
        },
    )
    .await;
    assert_eq!(status["seats"], json!(["1A", "1B"]), "{status}");
    assert_eq!(status["paymentAttempts"], 1, "{status}");

    order
}

/// The uids (real, effective, saved, file system) of a container's main
/// process (PID 1 there: the entrypoint, `flightctl`), as its own user
/// namespace sees them.
fn main_process_uids(podman: &Podman, container: &str) -> [u32; 4] {
    let status = podman.ok(
        "podman exec cat /proc/1/status",
        &["exec", container, "cat", "/proc/1/status"],
        Duration::from_secs(30),
    );
    assert!(
        status.lines().any(|l| l == "Name:\tflightctl"),
        "{container}'s PID 1 is not flightctl:\n{status}"
    );
    let uids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("a Uid line")
        .split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect();
    uids.try_into().expect("four uids")
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (u16, Value) {
    let resp = http
        .request(method, url)
        .json(&body)
        .send()
        .await
        .expect("request");
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
