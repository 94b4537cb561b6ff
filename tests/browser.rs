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

/// The flight number of `flight` (a flight inserted by a test).
async fn flight_number(app: &TestApp, flight: &str) -> String {
    let id = Uuid::parse_str(flight).unwrap();
    let conn = app.pool.get().await.unwrap();
    conn.query_one("SELECT flight_number FROM flights WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

/// A buyer ahead of the browser: joins `flight`'s queue, follows its ticket
/// and, admitted, holds `seat` with the admission. Returns the create's
/// status.
async fn queued_buyer(base: String, flight: String, n: usize, seat: String) -> u16 {
    use serde_json::{Value, json};
    let http = support::customer_client(n);
    let joined: Value = (http.post(format!("{base}/api/flights/{flight}/queue")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = joined["ticket"].as_str().expect("a ticket").to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    while tokio::time::Instant::now() < deadline {
        let t: Value = (http.get(format!("{base}/api/flights/{flight}/queue/{ticket}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if t["state"] == "ADMITTED" {
            let resp = (http.post(format!("{base}/api/orders")))
                .header("Admission", t["admission"].as_str().unwrap())
                .json(&json!({"flightId": flight, "seats": [seat]}))
                .send()
                .await
                .unwrap();
            return resp.status().as_u16();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    0
}

/// The waiting room in Chromium (`tests/browser/waiting-room.mjs`): a sale
/// an hour away shows its countdown; a sale just opened, with three buyers
/// queued ahead and admissions capped at two a minute, shows the buyer's
/// place, the people ahead, a progress bar and the estimate, then the
/// buyer's turn: the seat map, and a seat held with the admission; a sold
/// out flight says so. Each state audited with axe-core.
#[tokio::test]
async fn a_buyer_waits_in_the_waiting_room_then_holds_seats_with_the_admission() {
    use support::waiting::schedule;
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
    settings.booking.payment_failure_rate = 0.0;
    let app = TestApp::with_worker(settings).await;
    let now = chrono::Utc::now();

    let later = support::burst::insert_flight(&app.pool, 2).await;
    schedule(&app, &later, now + chrono::Duration::hours(1), None).await;

    let sale = support::burst::insert_flight(&app.pool, 2).await;
    let opens = now + chrono::Duration::seconds(3);
    schedule(&app, &sale, opens, Some(2)).await;
    let ahead: Vec<_> = (1..=3)
        .map(|n| {
            let seat = format!("1{}", ['A', 'B', 'C'][n - 1]);
            tokio::spawn(queued_buyer(app.address.clone(), sale.clone(), n, seat))
        })
        .collect();

    // Every seat sold before its sale is scheduled: one order for all six.
    let sold = support::burst::insert_flight(&app.pool, 1).await;
    {
        use serde_json::json;
        let seats: Vec<String> = ["A", "B", "C", "D", "E", "F"]
            .iter()
            .map(|c| format!("1{c}"))
            .collect();
        let (code, body) = app
            .post("/api/orders", json!({"flightId": sold, "seats": seats}))
            .await;
        assert_eq!(code, 201, "{body}");
        let order = body["orderId"].as_str().unwrap().to_string();
        let (code, body) = app.name_passengers(&order).await;
        assert_eq!(code, 200, "{body}");
        let (code, body) = app
            .post(
                &format!("/api/orders/{order}/pay"),
                json!({"paymentCode": "00000"}),
            )
            .await;
        assert_eq!(code, 202, "{body}");
        support::eventually("the order confirmed", Duration::from_secs(60), || async {
            let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
            (s["status"] == "CONFIRMED").then_some(())
        })
        .await;
    }
    schedule(&app, &sold, now + chrono::Duration::seconds(3), None).await;

    // The three are queued, the sale open: the browser comes after them.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let run = tokio::process::Command::new(node)
        .arg("waiting-room.mjs")
        .current_dir(&scripts)
        .env("BASE_URL", &app.address)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", chromium)
        .env("LATER_FLIGHT", flight_number(&app, &later).await)
        .env("SALE_FLIGHT", flight_number(&app, &sale).await)
        .env("SOLD_FLIGHT", flight_number(&app, &sold).await)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the waiting-room test finishes within 5 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the waiting-room browser test failed:\n{stdout}\n{stderr}"
    );
    for buyer in ahead {
        assert_eq!(buyer.await.unwrap(), 201, "a buyer ahead holds its seat");
    }
    for shot in [
        "waiting-prequeue",
        "waiting-position",
        "waiting-admitted",
        "waiting-soldout",
    ] {
        assert!(
            shots.join(format!("{shot}.png")).is_file(),
            "missing {shot}"
        );
    }
}
