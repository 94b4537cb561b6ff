//! Worker Versioning instead of patches: two builds of the worker side by
//! side in one deployment. A booking started on build A finishes on A after
//! B became current; new bookings run on B. Build A is reported drained (its
//! workers may go) only once its last pinned booking has ended.

mod support;

use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::json;
use support::{FL201, TestApp};

const LONG: Duration = Duration::from_secs(60);

/// The build that completed the workflow's last task, and whether the
/// workflow is Pinned to it.
async fn version(app: &TestApp, order: &str) -> (String, bool) {
    let client = flightctl::temporal::connect(&app.settings.temporal, "test", LONG)
        .await
        .unwrap();
    let handle =
        client.get_workflow_handle::<flightctl::booking::Booking>(format!("booking-{order}"));
    let described = handle.describe(Default::default()).await.unwrap();
    let info = described
        .raw_description
        .workflow_execution_info
        .and_then(|i| i.versioning_info)
        .expect("a versioned workflow");
    let pinned = info.behavior
        == temporalio_common::protos::temporal::api::enums::v1::VersioningBehavior::Pinned as i32;
    let build = info
        .deployment_version
        .map(|v| v.build_id)
        .unwrap_or_default();
    (build, pinned)
}

async fn create(app: &TestApp, seat: &str) -> String {
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL201, "seats": [seat]}))
        .await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_booking_started_on_one_build_finishes_on_it_after_the_next_becomes_current() {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_failure_rate = 0.0;
    s.worker.build_id = "build-a".into();
    let mut app = TestApp::with_worker(s).await;
    let old = create(&app, "1A").await;
    assert_eq!(version(&app, &old).await, ("build-a".into(), true));

    // Build B starts next to A and is made current, as a rollout does.
    app.spawn_worker(&[("WORKER_BUILD_ID", "build-b".into())]);
    let mut b = app.settings.clone();
    b.worker.build_id = "build-b".into();
    support::make_current(&b).await;

    let new = create(&app, "1B").await;
    assert_eq!(version(&app, &new).await, ("build-b".into(), true));
    for order in [&old, &new] {
        app.name_passengers(order).await;
        let (code, body) = app
            .post(
                &format!("/api/orders/{order}/pay"),
                json!({"paymentCode": "00000"}),
            )
            .await;
        assert_eq!(code, 202, "{body}");
    }
    for order in [&old, &new] {
        support::eventually("the sale", LONG, || async {
            let (_, body) = app.get(&format!("/api/orders/{order}/status")).await;
            (body["status"] == "CONFIRMED").then_some(())
        })
        .await;
    }
    assert_eq!(
        version(&app, &old).await.0,
        "build-a",
        "the old booking finished on the build it started on"
    );
    assert_eq!(version(&app, &new).await.0, "build-b");
}

/// `flightctl deployment drained --build-id BUILD --wait WAIT` as an
/// operator or the rollout script runs it: its exit code and its line.
fn drained_cli(settings: &flightctl::config::Settings, build: &str, wait: &str) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flightctl"));
    cmd.args(["deployment", "drained", "--build-id", build, "--wait", wait])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(support::worker_env(settings));
    let out = support::tools::run_bounded("flightctl deployment drained", cmd, LONG * 2);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 2, "exit {code}: {stdout}{stderr}");
    (code, stdout)
}

#[tokio::test]
async fn an_old_build_is_drained_only_once_its_last_pinned_booking_has_ended() {
    use flightctl::deployment::{Drainage, drainage};
    let mut s = support::isolated_settings(true).await;
    s.worker.build_id = "build-a".into();
    let mut app = TestApp::with_worker(s).await;
    let old = create(&app, "2A").await;
    assert_eq!(version(&app, &old).await, ("build-a".into(), true));

    app.spawn_worker(&[("WORKER_BUILD_ID", "build-b".into())]);
    let mut b = app.settings.clone();
    b.worker.build_id = "build-b".into();
    support::make_current(&b).await;
    let switched = SystemTime::now();

    // Temporal looks for bookings pinned to A only after a grace period
    // and then periodically (the harness's server: 2 s and 1 s). A look
    // made after the switch, while the booking on A is open, must say
    // DRAINING: this is not "not drained" merely because nobody looked.
    let client = flightctl::temporal::connect(&app.settings.temporal, "test", LONG)
        .await
        .unwrap();
    let deployment = app.settings.worker.deployment_name.clone();
    let looked = switched + support::servers::DRAINAGE_GRACE + Duration::from_secs(1);
    let seen = support::eventually("Temporal's look at build A", LONG, || async {
        let seen = drainage(&client, &deployment, "build-a").await.unwrap();
        seen.last_checked
            .is_some_and(|t| t > looked)
            .then_some(seen)
    })
    .await;
    assert_eq!(seen.drainage, Drainage::Draining, "{seen:?}");
    let (code, line) = drained_cli(&app.settings, "build-a", "0s");
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("build build-a is DRAINING"), "{line}");
    let (code, line) = drained_cli(&app.settings, "build-b", "0s");
    assert_eq!((code, line.contains("is ACTIVE")), (2, true), "{line}");
    let (code, line) = drained_cli(&app.settings, "build-never", "0s");
    assert_eq!((code, line.contains("is UNKNOWN")), (2, true), "{line}");

    // The booking ends (its customer cancels it): A drains.
    let (code, body) = app.delete(&format!("/api/orders/{old}")).await;
    assert_eq!(code, 200, "{body}");
    let handle =
        client.get_workflow_handle::<flightctl::booking::Booking>(format!("booking-{old}"));
    support::eventually("the booking's workflow to close", LONG, || async {
        let described = handle.describe(Default::default()).await.unwrap();
        let info = described.raw_description.workflow_execution_info?;
        (info.close_time.is_some()).then_some(())
    })
    .await;
    let ended = std::time::Instant::now();
    let (code, line) = drained_cli(&app.settings, "build-a", "60s");
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("build build-a is DRAINED"), "{line}");
    println!(
        "build A reported DRAINED {:?} after its booking closed",
        ended.elapsed()
    );
}
