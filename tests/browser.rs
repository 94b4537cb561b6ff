//! The web UI in a real browser: Playwright (`tests/browser/run.mjs`, npm
//! `playwright-core`) drives Debian's headless Chromium against the real
//! stack, and axe-core (npm) audits each state a customer sees for
//! accessibility. Screenshots of each final screen land under the build
//! directory. The operator console's scenario signs in as an operator made
//! as a deployment makes one: `flightctl operator add`, password on stdin.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use flightctl::config::Settings;
use support::{TestApp, procs::find_bin};
use uuid::Uuid;

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo_root().join("target"));
    target.join("browser-screenshots")
}

/// `flightctl operator add NAME` against the settings' database, the
/// password on its stdin (not a terminal, so it reads a line).
fn add_operator(settings: &Settings, name: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flightctl"))
        .args(["operator", "add", name])
        .current_dir(support::repo_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(support::worker_env(settings))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flightctl runs");
    let mut stdin = child.stdin.take().expect("a stdin");
    writeln!(stdin, "{password}").expect("the password is written");
    drop(stdin);
    let out = child.wait_with_output().expect("flightctl ends");
    assert!(
        out.status.success(),
        "flightctl operator add {name} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// FL909: FL202's route, seats and cabins, leaving in 3 hours, so that its
/// bookings may check in online (the check-in scenario).
async fn depart_soon(app: &TestApp) {
    let conn = app.pool.get().await.unwrap();
    conn.batch_execute(
        "INSERT INTO flights (id, flight_number, origin, destination, departure_time,
                arrival_time, total_seats, available_seats, price_cents, exit_rows,
                extra_legroom_rows)
         SELECT '550e8400-e29b-41d4-a716-446655440909', 'FL909', origin, destination,
                NOW() + interval '3 hours', NOW() + interval '5 hours', total_seats,
                total_seats, price_cents, exit_rows, extra_legroom_rows
         FROM flights WHERE flight_number = 'FL202';
         INSERT INTO seats (id, flight_id, row_num, col)
         SELECT id, '550e8400-e29b-41d4-a716-446655440909', row_num, col
         FROM seats WHERE flight_id = (SELECT id FROM flights WHERE flight_number = 'FL202');
         INSERT INTO cabins (flight_id, code, name, first_row, last_row, price_cents,
                refundable, cancellation_fee_cents)
         SELECT '550e8400-e29b-41d4-a716-446655440909', code, name, first_row, last_row,
                price_cents, refundable, cancellation_fee_cents
         FROM cabins WHERE flight_id = (SELECT id FROM flights WHERE flight_number = 'FL202');",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_customer_books_pays_fails_and_expires_in_the_browser() {
    let node = find_bin("node", "FLIGHTCTL_TEST_NODE", &["/usr/bin/node"]);
    let chromium = find_bin("chromium", "CHROMIUM", &["/usr/bin/chromium"]);
    let scripts = support::repo_root().join("tests/browser");
    for module in ["playwright-core", "axe-core"] {
        assert!(
            scripts.join("node_modules").join(module).is_dir(),
            "{module} is missing: run scripts/install-prereqs.sh (npm install in tests/browser)"
        );
    }

    let mut settings = support::isolated_settings(true).await;
    settings.booking.payment_validation_timeout = Duration::from_secs(2);
    settings.booking.payment_failure_rate = 0.0;
    let app = TestApp::with_worker(settings.clone()).await;
    depart_soon(&app).await;
    // Same database, holds and task queue; a hold of a few seconds.
    settings.booking.seat_reservation_timeout = Duration::from_secs(5);
    let short = TestApp::spawn(settings).await;

    let (ops_name, ops_password) = ("ops.tester", Uuid::new_v4().simple().to_string());
    add_operator(&app.settings, ops_name, &ops_password);

    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let run = tokio::process::Command::new(node)
        .arg("run.mjs")
        .current_dir(&scripts)
        .env("BASE_URL", &app.address)
        .env("SHORT_BASE_URL", &short.address)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", chromium)
        .env("OPS_NAME", ops_name)
        .env("OPS_PASSWORD", &ops_password)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("browser tests finish within 5 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser tests failed:\n{stdout}\n{stderr}"
    );
    for shot in [
        "pay",
        "pay-other-visitor",
        "decline",
        "expire",
        "seat-taken",
        "clock-ahead",
        "clock-behind",
        "fallback",
        "two-tabs",
        "manage",
        "checkin",
        "ops",
    ] {
        let path = shots.join(format!("{shot}.png"));
        assert!(path.is_file(), "missing screenshot {}", path.display());
    }
}
