//! The reconciliation sweep end to end: a worker process keeps the Temporal
//! Schedule, the schedule runs the sweep, the sweep repairs what a lost
//! workflow left: real Postgres, Redis and Temporal dev server.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use flightctl::booking::reconcile::{Reconciler, Report};
use flightctl::domain::{FlightId, OrderId, OrderStatus};
use flightctl::store::orders;
use flightctl::store::{self, Holds};
use serde_json::json;
use support::{FL102, TestApp};

#[tokio::test]
async fn a_terminated_workflows_seats_come_back_by_themselves() {
    let mut s = support::isolated_settings(true).await;
    s.booking.seat_reservation_timeout = Duration::from_secs(600);
    s.booking.payment_failure_rate = 0.0;
    s.booking.reconcile_interval = Duration::from_secs(10);
    s.server.call_timeout = Duration::from_secs(10);
    let mut app = TestApp::with_worker(s).await;
    let flight: FlightId = FL102.parse().unwrap();

    let (code, body) = app
        .post(
            "/api/orders",
            json!({"flightId": FL102, "seats": ["17A", "17B"]}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    // A hold left behind by an order that ended, one of an order nobody
    // knows, and availability that drifted.
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL102, "seats": ["18A"]}))
        .await;
    assert_eq!(code, 201, "{body}");
    let ended: OrderId = body["orderId"].as_str().unwrap().parse().unwrap();
    let (code, _) = app.delete(&format!("/api/orders/{ended}")).await;
    assert_eq!(code, 200);
    let stranger = OrderId::random();
    let ttl = Duration::from_secs(600);
    app.holds
        .lock(flight, ended, &[support::seat("18A")], ttl)
        .await
        .unwrap();
    app.holds
        .lock(flight, stranger, &[support::seat("18B")], ttl)
        .await
        .unwrap();
    let conn = app.pool.get().await.unwrap();
    conn.execute(
        "UPDATE flights SET available_seats = available_seats - 5 WHERE id = $1",
        &[&flight],
    )
    .await
    .unwrap();

    // Terminate the order's workflow mid-hold, as an operator would.
    let cli = support::procs::find_bin("temporal", "FLIGHTCTL_TEST_TEMPORAL", &[]);
    let terminated = Command::new(cli)
        .args(["workflow", "terminate", "--workflow-id"])
        .arg(format!("booking-{order}"))
        .args(["--address", &app.settings.temporal.host])
        .args(["--namespace", &app.settings.temporal.namespace])
        .args(["--reason", "test: an operator terminated it"])
        .output()
        .expect("the temporal CLI runs");
    assert!(
        terminated.status.success(),
        "{}",
        String::from_utf8_lossy(&terminated.stderr)
    );
    let since = Instant::now();

    let status = support::eventually(
        "the sweep to end the order",
        Duration::from_secs(90),
        || async {
            let (_, body) = app.get(&format!("/api/orders/{order}/status")).await;
            (body["status"] == "FAILED").then_some(body)
        },
    )
    .await;
    let reason = status["lastError"].as_str().unwrap_or_default();
    assert!(reason.contains("terminated"), "{status}");
    let holds = support::eventually(
        "every stray hold released",
        Duration::from_secs(90),
        || async {
            let holds = app.holds.list(flight).await.unwrap();
            let left: Vec<_> = ["17A", "17B", "18A", "18B"]
                .into_iter()
                .filter(|s| holds.contains_key(&support::seat(s)))
                .collect();
            left.is_empty().then_some(holds)
        },
    )
    .await;
    let repaired = since.elapsed();
    assert!(holds.is_empty(), "{holds:?}");
    let seats = app.seat_statuses(FL102).await;
    for seat in ["17A", "17B", "18A", "18B"] {
        assert_eq!(seats[seat], "available", "{seat}");
    }
    let row = conn
        .query_one(
            "SELECT available_seats, (SELECT count(*)::int FROM seats
               WHERE flight_id = $1 AND status = 'available') FROM flights WHERE id = $1",
            &[&flight],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i32>(0),
        row.get::<_, i32>(1),
        "availability corrected"
    );
    println!("terminated workflow repaired by the sweep in {repaired:.1?}");
    let log = app.worker_log(0);
    assert!(
        log.contains("reconciliation schedule created") && log.contains("reconcile: "),
        "the worker keeps the schedule and logs what the sweep fixed:\n{log}"
    );
    // Another worker finds the schedule and keeps it as it is (idempotent).
    app.start_worker().await;
    support::eventually(
        "the second worker to keep the schedule",
        Duration::from_secs(30),
        || async {
            app.worker_log(1)
                .contains("reconciliation schedule updated")
                .then_some(())
        },
    )
    .await;
}

/// A live row paying for 19A (claimed), quiet for five minutes, whose
/// workflow never existed.
async fn quiet_orphan(pool: &deadpool_postgres::Pool) -> OrderId {
    let id = OrderId::random();
    let flight: FlightId = FL102.parse().unwrap();
    let paying = orders::Order {
        status: OrderStatus::PaymentProcessing,
        ..support::order_row(id, flight, &["19A"])
    };
    orders::save(pool, &paying, None).await.unwrap();
    let quiet = "UPDATE orders SET updated_at = NOW() - INTERVAL '5 minutes' WHERE id = $1";
    let conn = pool.get().await.unwrap();
    conn.execute(quiet, &[&id]).await.unwrap();
    id
}

/// Temporal's typed answers as the server sends them: a workflow that is not
/// found ends its quiet live row and releases its claims, a namespace that
/// is not found never does.
#[tokio::test]
async fn a_missing_namespace_is_never_taken_for_gone_workflows() {
    let s = support::isolated_settings(true).await;
    let pool = support::prepare_database(&s).await;
    let redis = store::redis_client(&s.redis).await.unwrap();
    let holds = Holds::new(redis, s.redis.key_prefix.clone());
    let order = quiet_orphan(&pool).await;
    let sweep = async |namespace: &str| -> Report {
        let mut temporal = s.temporal.clone();
        temporal.namespace = namespace.into();
        let client = flightctl::temporal::connect(&temporal, "test", Duration::from_secs(3))
            .await
            .unwrap();
        Reconciler::new(pool.clone(), holds.clone(), client, Duration::ZERO)
            .sweep()
            .await
            .unwrap()
    };

    let report = sweep("flightctl-no-such-namespace").await;
    assert!(report.orders_ended.is_empty(), "{report:?}");
    assert_eq!(report.errors, 1, "{report:?}");
    let row = orders::find(&pool, order).await.unwrap();
    assert_eq!(row.status, OrderStatus::PaymentProcessing);
    assert_eq!(claim_of_19a(&pool).await, Some(order));

    let report = sweep(&s.temporal.namespace).await;
    assert_eq!(report.orders_ended, vec![order], "{report:?}");
    let row = orders::find(&pool, order).await.unwrap();
    assert_eq!(row.status, OrderStatus::Failed);
    assert_eq!(claim_of_19a(&pool).await, None);
}

/// The order claiming FL102's seat 19A, if any.
async fn claim_of_19a(pool: &deadpool_postgres::Pool) -> Option<OrderId> {
    let conn = pool.get().await.unwrap();
    let sql = "SELECT claimed_by FROM seats WHERE flight_id = $1 AND id = '19A'";
    let flight: FlightId = FL102.parse().unwrap();
    conn.query_one(sql, &[&flight]).await.unwrap().get(0)
}

/// A payment approved for an order that holds nothing sold: every run of the
/// sweep reports it (its recorded report, a log line, the worker's gauge).
#[tokio::test]
async fn the_sweep_reports_money_that_does_not_balance() {
    let mut s = support::isolated_settings(true).await;
    s.booking.reconcile_interval = Duration::from_secs(1);
    let mut app = TestApp::spawn(s).await;
    let id = OrderId::random();
    let flight: FlightId = FL102.parse().unwrap();
    let mut row = support::order_row(id, flight, &["20A"]);
    row.status = OrderStatus::Expired;
    orders::save(&app.pool, &row, None).await.unwrap();
    let conn = app.pool.get().await.unwrap();
    conn.execute(
        "INSERT INTO payment_attempts (order_id, attempt, outcome) VALUES ($1, 1, 'SUCCEEDED')",
        &[&id],
    )
    .await
    .unwrap();
    let port = support::procs::free_port();
    app.start_worker_with(&[("WORKER_METRICS_PORT", port.to_string())])
        .await;

    let report = support::eventually("a run's report", Duration::from_secs(60), || async {
        let row = conn
            .query_opt("SELECT report FROM reconcile_runs ORDER BY id LIMIT 1", &[])
            .await
            .unwrap()?;
        Some(row.get::<_, serde_json::Value>(0))
    })
    .await;
    assert_eq!(report["moneyDiscrepancies"], 1, "{report}");
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let gauge = support::eventually("the gauge", Duration::from_secs(20), || async {
        let text = app
            .http
            .get(&metrics)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with("flightctl_money_discrepancies"))
            .map(str::to_string)
    })
    .await;
    assert!(gauge.ends_with(" 1"), "{gauge}");
    let log = app.worker_log(0);
    assert!(
        log.contains("reconcile: money discrepancies")
            && log.contains(&id.to_string())
            && log.contains("charged without a sale"),
        "{log}"
    );
}
