//! Worker Versioning instead of patches: two builds of the worker side by
//! side in one deployment. A booking started on build A finishes on A after
//! B became current; new bookings run on B.

mod support;

use std::time::Duration;

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
