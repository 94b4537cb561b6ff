//! Answers tell the truth: a non-2xx answer to create, change, pay or cancel
//! changed nothing, now or later; where the API cannot know the outcome in
//! time it says so (504 `OUTCOME_UNKNOWN`), and a retry with the same
//! `Idempotency-Key` gets the real outcome. And a live order's Redis holds
//! never end before its `expiresAt` plus the safety margin.

mod support;

use std::time::Duration;

use flightctl::domain::{FlightId, OrderId};
use serde_json::{Value, json};
use support::{FL101, TestApp, procs, servers};
use tokio_postgres::NoTls;
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);
/// How long the order row stays locked: well past the call's deadline
/// (3 s) and the API's wait (5 s), like a stalled database.
const STALL: Duration = Duration::from_secs(12);

async fn app() -> TestApp {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_failure_rate = 0.0;
    TestApp::with_worker(s).await
}

async fn create(app: &TestApp, seats: &[&str]) -> String {
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": seats}))
        .await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().to_string()
}

async fn keyed(app: &TestApp, path: &str, key: &str, body: Value) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(path))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or_default())
}

async fn row(app: &TestApp, order: &str) -> flightctl::store::orders::Order {
    let id: OrderId = order.parse().unwrap();
    flightctl::store::orders::find(&app.pool, id).await.unwrap()
}

async fn attempts(app: &TestApp, order: &str) -> i64 {
    let id = Uuid::parse_str(order).unwrap();
    let conn = app.pool.get().await.unwrap();
    let sql = "SELECT count(*) FROM payment_attempts WHERE order_id = $1";
    conn.query_one(sql, &[&id]).await.unwrap().get(0)
}

/// Another session holds the order's row `FOR UPDATE` for [`STALL`], as a
/// stalled database would; resolves once it has the lock.
async fn lock_row(app: &TestApp, order: &str) -> tokio::task::JoinHandle<()> {
    lock_row_for(app, order, STALL).await
}

/// The row held `FOR UPDATE` for `stall`.
async fn lock_row_for(app: &TestApp, order: &str, stall: Duration) -> tokio::task::JoinHandle<()> {
    let url = app.settings.database.url.expose().to_string();
    let id = Uuid::parse_str(order).unwrap();
    let (mut client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let (locked_tx, locked) = tokio::sync::oneshot::channel();
    let holder = tokio::spawn(async move {
        let tx = client.transaction().await.unwrap();
        tx.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", &[&id])
            .await
            .unwrap();
        locked_tx.send(()).unwrap();
        tokio::time::sleep(stall).await;
        tx.rollback().await.unwrap();
    });
    locked.await.unwrap();
    holder
}

/// Wait out the stall and then long enough for anything it held back to
/// have happened.
async fn after_the_stall(holder: tokio::task::JoinHandle<()>) {
    holder.await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
}

/// Defect: `pay` answered 503 "nothing was changed" after 5 s, and the
/// order was CONFIRMED with a payment attempt 10 s later.
#[tokio::test]
async fn a_payment_answered_non_2xx_during_a_stall_is_never_charged() {
    let app = app().await;
    let order = create(&app, &["1A"]).await;
    app.name_passengers(&order).await;
    let holder = lock_row(&app, &order).await;
    let path = format!("/api/orders/{order}/pay");
    let (code, body) = app.post(&path, json!({"paymentCode": "00000"})).await;
    assert!(
        [503, 504].contains(&code),
        "the stall outlasts the call: {code} {body}"
    );
    after_the_stall(holder).await;
    let after = row(&app, &order).await;
    assert_eq!(after.status.as_str(), "SEATS_RESERVED", "{after:?}");
    assert_eq!(attempts(&app, &order).await, 0, "no payment attempt");
    // The order is as it was: paying now works.
    let (code, body) = app.post(&path, json!({"paymentCode": "00000"})).await;
    assert_eq!(code, 202, "{body}");
}

#[tokio::test]
async fn a_seat_change_answered_non_2xx_during_a_stall_changes_nothing() {
    let app = app().await;
    let order = create(&app, &["2A"]).await;
    let before = row(&app, &order).await;
    let holder = lock_row(&app, &order).await;
    let path = format!("/api/orders/{order}/seats");
    let (code, body) = app.put(&path, json!({"seats": ["2B"]})).await;
    assert!([503, 504].contains(&code), "{code} {body}");
    after_the_stall(holder).await;
    let after = row(&app, &order).await;
    assert_eq!(after.seats, ["2A"], "{after:?}");
    assert_eq!(
        after.expires_at, before.expires_at,
        "the hold did not restart"
    );
    let flight: FlightId = FL101.parse().unwrap();
    let holds = app.holds.list(flight).await.unwrap();
    let me: OrderId = order.parse().unwrap();
    assert_eq!(
        holds.get(&support::seat("2A")),
        Some(&me),
        "the old seat is still held"
    );
    assert_eq!(
        holds.get(&support::seat("2B")),
        None,
        "the new seat was given back"
    );
}

#[tokio::test]
async fn a_cancellation_answered_non_2xx_during_a_stall_changes_nothing() {
    let app = app().await;
    let order = create(&app, &["3A"]).await;
    let holder = lock_row(&app, &order).await;
    let (code, body) = app.delete(&format!("/api/orders/{order}")).await;
    assert!([503, 504].contains(&code), "{code} {body}");
    after_the_stall(holder).await;
    assert_eq!(row(&app, &order).await.status.as_str(), "SEATS_RESERVED");
    let flight: FlightId = FL101.parse().unwrap();
    let holds = app.holds.list(flight).await.unwrap();
    assert_eq!(
        holds.get(&support::seat("3A")),
        Some(&order.parse().unwrap())
    );
    let (code, _) = app.delete(&format!("/api/orders/{order}")).await;
    assert_eq!(code, 200, "the order is as it was: cancelling now works");
}

/// A keyed payment whose answer the stall held back: the retry with the
/// same key tells the real outcome, and pays once.
#[tokio::test]
async fn a_keyed_payment_retried_after_a_stall_gets_the_real_outcome() {
    let app = app().await;
    let order = create(&app, &["4A"]).await;
    app.name_passengers(&order).await;
    let holder = lock_row(&app, &order).await;
    let path = format!("/api/orders/{order}/pay");
    let body = json!({"paymentCode": "00000"});
    let (code, first) = keyed(&app, &path, "pay-stall", body.clone()).await;
    assert!([503, 504].contains(&code), "{code} {first}");
    if code == 504 {
        assert_eq!(first["error"], "OUTCOME_UNKNOWN");
        let status = format!("/api/orders/{order}/status");
        assert!(
            first["message"].as_str().unwrap().contains(&status),
            "{first}"
        );
    }
    after_the_stall(holder).await;
    let (code, retry) = keyed(&app, &path, "pay-stall", body.clone()).await;
    assert_eq!(code, 202, "{retry}");
    support::eventually("the sale", LONG, || async {
        (row(&app, &order).await.status.as_str() == "CONFIRMED").then_some(())
    })
    .await;
    assert_eq!(attempts(&app, &order).await, 1, "paid once");
    let (code, again) = keyed(&app, &path, "pay-stall", body).await;
    assert_eq!((code, again), (202, retry), "the same answer again");
}

/// Defect: a keyed create retried before its answer was stored (here: the
/// answer removed, as a `serve` killed before storing it leaves the key)
/// claimed the seats again with the claim's TTL, cutting the workflow's
/// 15-minute hold to seconds.
#[tokio::test]
async fn a_keyed_create_retried_before_its_answer_was_stored_keeps_the_full_hold() {
    let app = app().await;
    let body = json!({"flightId": FL101, "seats": ["5A", "5B"]});
    let (code, first) = keyed(&app, "/api/orders", "create-twice", body.clone()).await;
    assert_eq!(code, 201, "{first}");
    let conn = app.pool.get().await.unwrap();
    conn.execute(
        "UPDATE idempotency_keys SET status_code = NULL, response = NULL WHERE key = $1",
        &[&"create-twice"],
    )
    .await
    .unwrap();
    let (code, retry) = keyed(&app, "/api/orders", "create-twice", body).await;
    assert_eq!(code, 201, "{retry}");
    assert_eq!(retry["orderId"], first["orderId"], "the same order");
    let expires: chrono::DateTime<chrono::Utc> =
        retry["expiresAt"].as_str().unwrap().parse().unwrap();
    let left = (expires - chrono::Utc::now()).num_milliseconds();
    let margin = 60_000;
    for seat in ["5A", "5B"] {
        let pttl = pttl(&app, seat).await;
        assert!(
            pttl >= left + margin - 5_000,
            "{seat}: the hold ends in {pttl} ms, before expiresAt ({left} ms) + margin"
        );
    }
}

async fn pttl(app: &TestApp, seat: &str) -> i64 {
    use fred::prelude::KeysInterface;
    let prefix = &app.settings.redis.key_prefix;
    let key = format!("{prefix}:hold:{{{FL101}}}:{seat}");
    app.holds.client().pttl(key).await.unwrap()
}

/// A step whose activity lost its outcome after its save committed (Redis
/// stalls between the save and the release of the seat the change drops):
/// the workflow reads its save back, so it never answers "nothing changed"
/// for a change the row holds, and it sells what the row says.
#[tokio::test]
async fn a_change_whose_outcome_was_lost_after_its_save_is_told_as_it_is() {
    let redis = tokio::task::spawn_blocking(servers::Redis::start)
        .await
        .unwrap();
    let mut s = support::isolated_settings(true).await;
    s.redis.target = support::redis_target(&redis.addr());
    s.booking.payment_failure_rate = 0.0;
    let app = TestApp::with_worker(s).await;
    let order = create(&app, &["6A"]).await;
    // The change's save waits on the row while Redis stops; the save then
    // commits before the deadline, and the release of 6A meets a stopped
    // Redis until after the API stopped waiting.
    let holder = lock_row_for(&app, &order, Duration::from_millis(1500)).await;
    let change = {
        let (http, url) = (
            app.http.clone(),
            app.url(&format!("/api/orders/{order}/seats")),
        );
        tokio::spawn(async move {
            let resp = http
                .put(url)
                .json(&json!({"seats": ["6B"]}))
                .send()
                .await
                .unwrap();
            let code = resp.status().as_u16();
            (code, resp.json::<Value>().await.unwrap_or_default())
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let frozen = procs::freeze_tree(redis.pid().unwrap());
    holder.await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    frozen.thaw();
    let (code, body) = change.await.unwrap();
    assert!(
        code == 200 || code == 504,
        "the change took effect: never a refusal: {code} {body}"
    );
    support::eventually("the change settled", LONG, || async {
        let flight: FlightId = FL101.parse().unwrap();
        let holds = app.holds.list(flight).await.ok()?;
        let me: OrderId = order.parse().unwrap();
        let row = row(&app, &order).await;
        (row.seats == ["6B"]
            && holds.get(&support::seat("6B")) == Some(&me)
            && !holds.contains_key(&support::seat("6A")))
        .then_some(())
    })
    .await;
    // The workflow holds what the row says: paying sells 6B, not 6A.
    app.name_passengers(&order).await;
    let path = format!("/api/orders/{order}/pay");
    let (code, body) = app.post(&path, json!({"paymentCode": "00000"})).await;
    assert_eq!(code, 202, "{body}");
    support::eventually("the sale", LONG, || async {
        (row(&app, &order).await.status.as_str() == "CONFIRMED").then_some(())
    })
    .await;
    let seats = app.seat_statuses(FL101).await;
    assert_eq!(
        (seats["6A"].as_str(), seats["6B"].as_str()),
        ("available", "booked")
    );
}
