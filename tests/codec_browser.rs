//! An operator sees decrypted payloads in the Temporal UI: a Temporal dev
//! server with its UI pointed at the codec endpoint on `serve`'s admin
//! listener (as `./dev up` runs it), an order paid with a code, and headless
//! Chromium on the workflow's page (`tests/browser/codec-ui.mjs`). The UI
//! runs on another origin than the admin listener, so its calls go through
//! the codec's CORS; the codec answers operators only, so the browser signs
//! in to the console first and the UI sends the session cookie with its
//! codec calls ("include cross-origin credentials").

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use flightctl::ops::{Password, hash_password};
use flightctl::store::ops::put_operator;
use serde_json::json;
use support::procs::{Proc, find_bin, free_port, wait_for_port};
use support::{FL101, TestApp};

const CODE: &str = "47291";
const PASSWORD: &str = "correct horse battery staple";

/// A dev server with its web UI, which decodes through `codec_endpoint`;
/// returns it, its frontend address and the UI's base URL.
fn temporal_with_ui(codec_endpoint: &str) -> (Proc, String, String) {
    let (port, ui, http, metrics) = (free_port(), free_port(), free_port(), free_port());
    let mut cmd = Command::new(find_bin("temporal", "FLIGHTCTL_TEST_TEMPORAL", &[]));
    cmd.args(["server", "start-dev", "--ip", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--ui-port", &ui.to_string()])
        .args(["--http-port", &http.to_string()])
        .args(["--metrics-port", &metrics.to_string()])
        .args([
            "--log-level",
            "error",
            "--ui-codec-endpoint",
            codec_endpoint,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let proc = Proc::spawn("temporal-ui", cmd, libc::SIGTERM);
    wait_for_port("temporal", port, Duration::from_secs(60));
    wait_for_port("temporal ui", ui, Duration::from_secs(60));
    (
        proc,
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{ui}"),
    )
}

#[tokio::test]
async fn the_temporal_ui_shows_decrypted_payloads_through_the_codec_endpoint() {
    let node = find_bin("node", "FLIGHTCTL_TEST_NODE", &["/usr/bin/node"]);
    let chromium = find_bin("chromium", "CHROMIUM", &["/usr/bin/chromium"]);
    let scripts = support::repo_root().join("tests/browser");
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "run scripts/install-prereqs.sh (npm install in tests/browser)"
    );

    // The UI is pointed at the admin listener before it exists: its port.
    let admin_port = free_port();
    let codec_endpoint = format!("http://127.0.0.1:{admin_port}/codec");
    let (_temporal, host, ui) = temporal_with_ui(&codec_endpoint);
    let mut settings = support::isolated_settings(false).await;
    settings.server.admin_port = admin_port;
    settings.temporal.host = host;
    settings.temporal.codec_cors_origins = ui.clone();
    settings.booking.payment_failure_rate = 0.0;
    let app = TestApp::with_worker(settings).await;
    // The codec answers operators only: the browser signs in as one.
    let hash = hash_password(&Password::new(PASSWORD)).unwrap();
    put_operator(&app.pool, "ada", &hash).await.unwrap();

    let body = json!({"flightId": FL101, "seats": ["9A"]});
    let (status, body) = app.post("/api/orders", body).await;
    assert_eq!(status, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    app.name_passengers(&order).await;
    let body = json!({"paymentCode": CODE});
    let (status, body) = app.post(&format!("/api/orders/{order}/pay"), body).await;
    assert_eq!(status, 202, "{body}");
    support::eventually(
        "the order to be CONFIRMED",
        Duration::from_secs(60),
        || async {
            let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
            (s["status"] == "CONFIRMED").then_some(())
        },
    )
    .await;

    let shots = support::procs::temp_dir("codec-ui");
    let run = tokio::process::Command::new(node)
        .arg("codec-ui.mjs")
        .current_dir(&scripts)
        .env(
            "WORKFLOW_URL",
            format!("{ui}/namespaces/default/workflows/booking-{order}"),
        )
        .env("CODE", CODE)
        .env("CODEC_ENDPOINT", &codec_endpoint)
        .env("SIGN_IN_URL", app.url("/api/ops/session"))
        .env("OPERATOR", "ada")
        .env("PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser check finishes within 2 minutes")
        .expect("node runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the Temporal UI did not show the decrypted payloads (screen: {}):\n{stdout}\n{stderr}",
        shots.join("temporal-ui-decoded.png").display()
    );
}
