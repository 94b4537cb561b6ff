//! Refunds that end, against the real stack: a dependency outage is waited
//! out, never counted as a provider decline; a payout made is found before
//! any decline; an operator retries a refund the provider declined for
//! good; and an approved payment that sold nothing is refunded.

mod support;

use std::time::Duration;

use flightctl::booking::refund::RefundInput;
use flightctl::booking::service::Engine;
use flightctl::domain::{FlightId, OrderId};
use flightctl::store::orders;
use flightctl::store::refunds::{self, Payout};
use serde_json::{Value, json};
use support::servers::Postgres;
use support::smtp::SmtpSink;
use support::{FL101, TestApp};

const LONG: Duration = Duration::from_secs(120);

async fn status(app: &TestApp, order: &str) -> Value {
    let (code, body) = app.get(&format!("/api/orders/{order}/status")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_status(app: &TestApp, order: &str, wanted: &str, within: Duration) -> Value {
    support::eventually(&format!("order {order} {wanted}"), within, || async {
        let s = status(app, order).await;
        (s["status"] == wanted).then_some(s)
    })
    .await
}

/// The order's status once its refund is `wanted`.
async fn refund_is(app: &TestApp, order: &str, wanted: &str) -> Value {
    support::eventually(&format!("the refund {wanted}"), LONG, || async {
        let s = status(app, order).await;
        (s["refund"]["status"] == wanted).then_some(s)
    })
    .await
}

/// Pay for `order` with the code that is always approved: accepted (202).
async fn pay(app: &TestApp, order: &str) {
    let (code, body) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
}

/// Book `seat` on FL101 for a passenger named Lovelace: the order id.
async fn book(app: &TestApp, seat: &str) -> String {
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": [seat]}))
        .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    let passengers = json!({"passengers": [
        {"seat": seat, "givenName": "Ada", "familyName": "Lovelace"}
    ]});
    let (code, body) = app
        .put(&format!("/api/orders/{order}/passengers"), passengers)
        .await;
    assert_eq!(code, 200, "{body}");
    pay(app, &order).await;
    wait_status(app, &order, "CONFIRMED", LONG).await;
    order
}

/// A refund in flight outlives a 60 s Postgres stall (every Postgres
/// process SIGSTOPped): the provider never declines (rate 0), so only the
/// outage is in its way, and it ends REFUNDED once Postgres is back.
#[tokio::test]
async fn a_refund_in_flight_survives_a_minute_long_postgres_outage() {
    let pg = Postgres::start_durable();
    let db = "refund_outage";
    pg.create_database(db).await;
    let mut s = support::isolated_settings(true).await;
    s.database.url = flightctl::config::Secret::new(pg.url(db));
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.refund_failure_rate = 0.0;
    let app = TestApp::with_worker(s).await;
    let order = book(&app, "11C").await;
    let id: OrderId = order.parse().unwrap();

    // The cancellation recorded as the API records it; its workflow started
    // once Postgres has stopped, so the refund is in flight during the
    // outage whatever the timing.
    let cutoff = Duration::from_secs(3600);
    let asked = flightctl::store::refunds::request(&app.pool, id, cutoff, None)
        .await
        .unwrap();
    assert_eq!(asked, flightctl::store::refunds::Request::Accepted);
    let frozen = support::procs::freeze_tree(pg.pid().expect("postgres runs"));
    let engine = Engine::new(app.settings.temporal.clone(), Duration::from_secs(5));
    let input = RefundInput {
        order_id: id,
        max_attempts: app.settings.booking.refund_max_attempts,
        round: 1,
    };
    engine.start_refund(input).await.expect("the refund starts");
    tokio::time::sleep(Duration::from_secs(60)).await;
    frozen.thaw();

    let refunded = wait_status(&app, &order, "REFUNDED", LONG).await;
    assert_eq!(refunded["status"], "REFUNDED");
    let conn = app.pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT status, (SELECT count(*) FROM provider_refunds WHERE order_id = $1) AS paid
             FROM refunds WHERE order_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>("status"), "REFUNDED");
    assert_eq!(row.get::<_, i64>("paid"), 1, "paid out once");
}

/// A new order row of FL101 holding `seat`, saved as the workflow saves it.
async fn saved_order(pool: &deadpool_postgres::Pool, seat: &str) -> OrderId {
    let id = OrderId::random();
    let flight: FlightId = FL101.parse().unwrap();
    let row = support::order_row(id, flight, &[seat]);
    orders::save(pool, &row, None).await.unwrap();
    id
}

/// An order row with a refund asked for: a payout to make.
async fn refund_row(pool: &deadpool_postgres::Pool, seat: &str) -> OrderId {
    let id = saved_order(pool, seat).await;
    let conn = pool.get().await.unwrap();
    conn.execute(
        "INSERT INTO refunds (order_id, amount_cents) VALUES ($1, 35000)",
        &[&id],
    )
    .await
    .unwrap();
    id
}

/// A payout the provider made, whose answer was lost: the retried call
/// finds it before it rolls a decline, so a paid refund is never declined.
/// Rolls are fixed: 0.0 declines at any rate above 0, 0.5 pays at rate 0.
#[tokio::test]
async fn a_payout_made_before_is_found_never_declined_after() {
    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let id = refund_row(&pool, "1A").await;
    let Payout::Paid(first) = refunds::pay_out(&pool, id, 0.0, 0.5).await.unwrap() else {
        panic!("rate 0 pays");
    };
    // The answer was lost; the retried call would be declined on its roll.
    let again = refunds::pay_out(&pool, id, 1.0, 0.0).await.unwrap();
    assert_eq!(again, Payout::Paid(first), "found, not declined");
    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT r.attempts, r.last_error,
                    (SELECT count(*) FROM provider_refunds p WHERE p.order_id = $1) AS paid
             FROM refunds r WHERE r.order_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>("attempts"), 2, "both calls counted");
    assert_eq!(row.get::<_, Option<String>>("last_error"), None);
    assert_eq!(row.get::<_, i64>("paid"), 1, "one payout");

    // Nothing paid yet: the same roll declines, as a value.
    let other = refund_row(&pool, "1B").await;
    let declined = refunds::pay_out(&pool, other, 1.0, 0.0).await.unwrap();
    assert_eq!(declined, Payout::Declined);
}

async fn post(http: &reqwest::Client, app: &TestApp, path: &str) -> (u16, Value) {
    let resp = http.post(app.url(path)).send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or_default())
}

async fn get(http: &reqwest::Client, app: &TestApp, path: &str) -> Value {
    let resp = http.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

/// A refund the provider declined `REFUND_MAX_ATTEMPTS` times ends
/// REFUND_FAILED; an operator retries it (audited, never without a
/// session) once the provider pays again, and it ends REFUNDED with one
/// payout. The console offers the retry.
#[tokio::test]
async fn an_operator_retries_a_failed_refund_and_it_ends_refunded() {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.refund_failure_rate = 1.0;
    s.booking.refund_max_attempts = 2;
    let mut app = TestApp::with_worker(s).await;
    let order = book(&app, "12D").await;
    let reference = status(&app, &order).await["bookingReference"]
        .as_str()
        .unwrap()
        .to_string();
    let ops = support::signed_in_operator(&app, "grace").await;
    let path = format!("/api/ops/bookings/{reference}/refund");
    assert_eq!(post(&ops, &app, &path).await.0, 202);
    wait_status(&app, &order, "REFUND_FAILED", LONG).await;

    // The provider pays again (a worker whose provider never declines).
    app.worker().stop();
    app.start_worker_with(&[("REFUND_FAILURE_RATE", "0".into())])
        .await;
    let (code, body) = post(&reqwest::Client::new(), &app, &path).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    assert_eq!(status(&app, &order).await["status"], "REFUND_FAILED");
    let (code, body) = post(&ops, &app, &path).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["status"], "REFUND_PENDING");
    let refunded = wait_status(&app, &order, "REFUNDED", LONG).await;
    assert_eq!(refunded["refund"]["status"], "REFUNDED");
    assert_eq!(post(&ops, &app, &path).await.0, 409, "refunded already");

    let detail = get(&ops, &app, &format!("/api/ops/orders/{order}")).await;
    assert_eq!(detail["refund"]["status"], "REFUNDED");
    assert_eq!(detail["refund"]["attempts"], 3, "two declines, then paid");
    let audit = get(&ops, &app, "/api/ops/audit").await;
    let retries = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "refund_booking" && e["target"] == reference.as_str())
        .filter(|e| e["outcome"] == "ok")
        .count();
    assert_eq!(retries, 2, "the refund and its retry, audited: {audit}");
    let id: OrderId = order.parse().unwrap();
    let conn = app.pool.get().await.unwrap();
    let paid: i64 = conn
        .query_one(
            "SELECT count(*) FROM provider_refunds WHERE order_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(paid, 1, "one payout");
    let seats = app.seat_statuses(FL101).await;
    assert_eq!(seats["12D"], "available", "back on sale once paid");

    let script = reqwest::get(app.url("/assets/ops-order.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        script.contains("'REFUND_FAILED' && order.bookingReference) return 'retry-refund'"),
        "the console offers the retry"
    );
}

/// An approved payment whose order was ended before its sale
/// (the order ended by the sweep's own store call while the approved
/// payment's record waits on a lock): the order ends FAILED saying its
/// payment is refunded, the refund ends REFUNDED and sells nothing, the
/// customer gets the refund mail, and the console lists it.
#[tokio::test]
async fn an_approved_payment_that_sold_nothing_is_refunded_and_mailed() {
    let sink = SmtpSink::start();
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.mail.smtp_url = Some(flightctl::config::Secret::new(sink.url()));
    let app = TestApp::with_worker(s).await;
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": ["13E"]}))
        .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    let id: OrderId = order.parse().unwrap();
    let passengers = json!({"passengers": [{"seat": "13E", "givenName": "Ada",
        "familyName": "Lovelace", "email": "ada@example.com"}]});
    let path = format!("/api/orders/{order}/passengers");
    assert_eq!(app.put(&path, passengers).await.0, 200);

    // The payment's record waits on a lock while the order is ended under
    // it, as the sweep ends an order whose workflow it found gone: the
    // approved payment then finds the order not live (its claim released).
    let mut conn = app.pool.get().await.unwrap();
    let tx = conn.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE payment_attempts IN SHARE ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    pay(&app, &order).await;
    support::eventually("the approved payment's record waiting", LONG, || async {
        let c = app.pool.get().await.unwrap();
        let waiting: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                 WHERE c.relname = 'payment_attempts' AND NOT l.granted",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (waiting > 0).then_some(())
    })
    .await;
    let ended = flightctl::store::reconcile::end_orphan(&app.pool, id, "its workflow was gone");
    assert!(ended.await.unwrap(), "the paying order was live");
    tx.commit().await.unwrap();

    let failed = support::eventually("the customer told of the refund", LONG, || async {
        let s = status(&app, &order).await;
        let told = s["lastError"]
            .as_str()
            .is_some_and(|r| r.contains("payment is being refunded"));
        (s["status"] == "FAILED" && told).then_some(s)
    })
    .await;
    assert_eq!(failed["paymentAttempts"], 1);
    let refunded = refund_is(&app, &order, "REFUNDED").await;
    assert_eq!(refunded["status"], "FAILED", "the order stays FAILED");
    assert_eq!(
        refunded["refund"]["amountCents"],
        refunded["totalPriceCents"]
    );
    let seats = app.seat_statuses(FL101).await;
    assert_eq!(
        seats["13E"], "available",
        "nothing was sold, nothing is claimed"
    );

    let mails = sink.wait_for(1, LONG).await;
    let mail = mails.last().unwrap();
    assert_eq!(mail.header("To"), Some("ada@example.com"));
    assert!(
        mail.subject().contains("payment is refunded"),
        "{}",
        mail.subject()
    );

    let ops = support::signed_in_operator(&app, "grace").await;
    let listed = get(&ops, &app, "/api/ops/orders?status=FAILED").await;
    let item = listed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["orderId"] == order.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(item["refund"], "REFUNDED");
    support::record_refund(&app, &order, "refunded-unsold").await;
}

/// The sweep is the backstop: an approved payment whose order ended
/// unsold with no refund (as when the worker that found it died before
/// recording it) is refunded on the next run; the order stays FAILED. The
/// provider declines it here (once is the limit), so an operator retries
/// it by the order's id once the provider pays again.
#[tokio::test]
async fn the_sweep_refunds_an_approved_payment_left_without_a_sale() {
    let mut s = support::isolated_settings(true).await;
    s.booking.reconcile_interval = Duration::from_secs(1);
    s.booking.refund_failure_rate = 1.0;
    s.booking.refund_max_attempts = 1;
    let mut app = TestApp::with_worker(s).await;
    let id = saved_order(&app.pool, "14F").await;
    let approved = flightctl::domain::AttemptOutcome::Succeeded;
    orders::record_attempt(&app.pool, id, 1, approved, None)
        .await
        .unwrap();
    let reason = "seats were sold to another order";
    assert!(
        flightctl::store::reconcile::end_orphan(&app.pool, id, reason)
            .await
            .unwrap()
    );
    let order = id.to_string();
    let failed = refund_is(&app, &order, "FAILED").await;
    assert_eq!(failed["status"], "FAILED");

    app.worker().stop();
    app.start_worker_with(&[("REFUND_FAILURE_RATE", "0".into())])
        .await;
    let ops = support::signed_in_operator(&app, "grace").await;
    let path = format!("/api/ops/orders/{order}/refund");
    let (code, body) = post(&ops, &app, &path).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body, json!({"orderId": order, "status": "FAILED"}));
    let refunded = refund_is(&app, &order, "REFUNDED").await;
    assert_eq!(refunded["status"], "FAILED", "the order stays FAILED");
    assert_eq!(refunded["refund"]["amountCents"], 35_000);
    let (code, body) = post(&ops, &app, &path).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("ORDER_NOT_MODIFIABLE"))
    );
    let audit = get(&ops, &app, "/api/ops/audit").await.to_string();
    assert!(audit.contains("retry_refund"), "audited: {audit}");
}
