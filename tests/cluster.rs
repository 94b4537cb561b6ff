//! Seat holds on a real Redis Cluster (three masters, three replicas, see
//! `support::cluster`), selected by `REDIS_URL=redis-cluster://…` alone:
//! the booking steps that touch holds (and the failed look-up counter),
//! then a crowd of buyers while the master serving the flight's slot is
//! killed. Its replica takes over, bookings continue, and the books balance.
//! Last, holds lost for certain in a failover (the replica cut off from its
//! master before they were written), caught by the payment's re-check.

mod support;

use std::time::{Duration, Instant};

use flightctl::config::Settings;
use flightctl::domain::{OrderId, SeatId};
use serde_json::{Value, json};
use support::burst::{self, Limits};
use support::cluster::{RedisCluster, redis_cluster};
use support::{FL101, FL102, FL201, FL202, TestApp, eventually};
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(30);

/// Isolated settings whose Redis is `cluster`.
async fn settings(cluster: &RedisCluster, hold: Duration) -> Settings {
    let mut s = support::isolated_settings(true).await;
    s.redis.target = cluster.url().parse().expect("the cluster's URL");
    s.booking.seat_reservation_timeout = hold;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_max_attempts = 3;
    s.booking.payment_failure_rate = 0.0;
    s
}

async fn create(app: &TestApp, flight: &str, seats: &[&str]) -> (u16, Value) {
    app.post("/api/orders", json!({"flightId": flight, "seats": seats}))
        .await
}

async fn create_ok(app: &TestApp, flight: &str, seats: &[&str]) -> Uuid {
    let (code, body) = create(app, flight, seats).await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().parse().unwrap()
}

/// A create just after a node was frozen or killed: the client may first
/// be told 503 (a 503 holds nothing, so a client tries again); anything
/// else but 201 fails the test.
async fn create_after_a_cut(app: &TestApp, flight: &str, seats: &[&str]) -> Uuid {
    eventually("a create after the cut", LONG, || async {
        let (code, body) = create(app, flight, seats).await;
        match code {
            201 => Some(body["orderId"].as_str().unwrap().parse().unwrap()),
            503 => None,
            _ => panic!("a create after the cut: {code} {body}"),
        }
    })
    .await
}

async fn wait_for(app: &TestApp, order: Uuid, wanted: &str) {
    eventually(&format!("order {order} {wanted}"), LONG, || async {
        let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
        (s["status"] == wanted).then_some(())
    })
    .await
}

/// The flight's holds, seat → order, read through the cluster.
async fn holds(app: &TestApp, flight: &str) -> Vec<(SeatId, OrderId)> {
    let mut held: Vec<_> = (app.holds.list(flight.parse().unwrap()).await)
        .expect("holds from the cluster")
        .into_iter()
        .collect();
    held.sort();
    held
}

fn mine(order: Uuid, seats: &[&str]) -> Vec<(SeatId, OrderId)> {
    seats
        .iter()
        .map(|s| (support::seat(s), order.into()))
        .collect()
}

#[tokio::test]
async fn holds_claim_change_conflict_pay_and_cancel_on_the_cluster() {
    let cluster = redis_cluster();
    let mut s = settings(cluster, Duration::from_secs(60)).await;
    s.booking.lookup_max_failures = 2;
    let app = TestApp::with_worker(s).await;

    let a = create_ok(&app, FL101, &["1A", "1B"]).await;
    assert_eq!(holds(&app, FL101).await, mine(a, &["1A", "1B"]));
    // The hold's keys are in the slot of the flight's hash tag, on the
    // master serving it.
    let key = format!("{}:hold:{{{FL101}}}:1A", app.settings.redis.key_prefix);
    let slot = cluster.slot(&key);
    assert_eq!(slot, cluster.slot(&format!("{{{FL101}}}")));
    assert_eq!(cluster.get_on_master(&key), Some(a.to_string()));
    let seats = app.seat_statuses(FL101).await;
    assert_eq!(
        (seats["1A"].as_str(), seats["1C"].as_str()),
        ("reserved", "available")
    );

    // Two orders on one seat: the second is refused and takes nothing.
    let (code, body) = create(&app, FL101, &["1B", "1C"]).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("SEATS_UNAVAILABLE")),
        "{body}"
    );
    assert_eq!(holds(&app, FL101).await, mine(a, &["1A", "1B"]));

    // A change moves the hold.
    let (code, body) = app
        .put(
            &format!("/api/orders/{a}/seats"),
            json!({"seats": ["1A", "1D"]}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(holds(&app, FL101).await, mine(a, &["1A", "1D"]));
    assert_eq!(app.seat_statuses(FL101).await["1B"], "available");

    // A second order; cancelling it releases its hold.
    let b = create_ok(&app, FL101, &["1B"]).await;
    let (code, body) = app.delete(&format!("/api/orders/{b}")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(holds(&app, FL101).await, mine(a, &["1A", "1D"]));

    // Paying confirms, books the seats in Postgres and releases the holds.
    app.name_passengers(&a.to_string()).await;
    let (code, body) = app
        .post(
            &format!("/api/orders/{a}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    wait_for(&app, a, "CONFIRMED").await;
    let seats = app.seat_statuses(FL101).await;
    assert_eq!(
        (seats["1A"].as_str(), seats["1D"].as_str()),
        ("booked", "booked")
    );
    eventually("the paid order's holds released", LONG, || async {
        holds(&app, FL101).await.is_empty().then_some(())
    })
    .await;

    // The failed look-up counter lives in the cluster too.
    let guess = || {
        app.post(
            "/api/bookings/lookup",
            json!({"reference": "ZZZZZZ", "lastName": "Smith"}),
        )
    };
    for _ in 0..2 {
        let (code, _) = guess().await;
        assert_eq!(code, 404);
    }
    let (code, body) = guess().await;
    assert_eq!(
        (code, body["error"].as_str()),
        (429, Some("TOO_MANY_LOOKUPS"))
    );
}

#[tokio::test]
async fn an_untouched_hold_expires_on_the_cluster() {
    let cluster = redis_cluster();
    let app = TestApp::with_worker(settings(cluster, Duration::from_secs(2)).await).await;
    let order = create_ok(&app, FL102, &["5A", "5B"]).await;
    assert_eq!(app.seat_statuses(FL102).await["5A"], "reserved");
    wait_for(&app, order, "EXPIRED").await;
    // The ending saves the row, then releases the holds.
    eventually("the expired order's holds released", LONG, || async {
        holds(&app, FL102).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(app.seat_statuses(FL102).await["5A"], "available");
}

/// Buyers of a 30-seat flight and how long they may try. A buyer that gives
/// up leaves its order to expire after `HOLD`, within `settle_within`.
const BUYERS: usize = 40;
const ROWS: i32 = 5;
const HOLD: Duration = Duration::from_secs(20);
const LIMITS: Limits = Limits {
    buyer_for: Duration::from_secs(30),
    sell_out_within: Duration::from_secs(30),
    settle_within: Duration::from_secs(25),
};

async fn count(app: &TestApp, sql: &str, flight: Uuid) -> i64 {
    let client = app.pool.get().await.unwrap();
    client.query_one(sql, &[&flight]).await.unwrap().get(0)
}

/// Of the holds seen just before the kill, those missing once the replica
/// serves the slot although their order is still live: writes the replica
/// had not received (asynchronous replication). An observation, not an
/// assertion: whether the kill catches a write in flight is chance; the
/// invariants below must hold either way.
async fn lost_holds(
    app: &TestApp,
    before: &[(SeatId, OrderId)],
    after: &std::collections::HashMap<SeatId, OrderId>,
) -> usize {
    let client = app.pool.get().await.unwrap();
    let mut lost = 0;
    for (seat, order) in before {
        if after.get(seat) == Some(order) {
            continue;
        }
        let live: bool = client
            .query_one(
                "SELECT status IN ('SEATS_RESERVED', 'PAYMENT_PENDING', 'PAYMENT_PROCESSING')
                 FROM orders WHERE id = $1",
                &[order],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(false);
        lost += usize::from(live);
    }
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_killed_mid_sale_fails_over_and_the_books_balance() {
    // A cluster of its own: this test kills one of its masters.
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let app = TestApp::with_worker(settings(&cluster, HOLD).await).await;
    let flight = burst::insert_flight(&app.pool, ROWS).await;
    let flight_id: Uuid = flight.parse().unwrap();
    let slot = cluster.slot(&format!("{{{flight}}}"));

    let crowd = {
        let (app, flight) = (&app, flight.clone());
        async move { burst::burst_through_outage(app, &flight, BUYERS, LIMITS).await }
    };
    let fault = async {
        eventually("the first sales before the fault", LONG, || async {
            let sold = count(
                &app,
                "SELECT count(*) FROM orders WHERE flight_id = $1 AND status = 'CONFIRMED'",
                flight_id,
            )
            .await;
            (sold >= 3).then_some(())
        })
        .await;
        let client = app.pool.get().await.unwrap();
        let killed_at: chrono::DateTime<chrono::Utc> =
            client.query_one("SELECT now()", &[]).await.unwrap().get(0);
        let before = holds(&app, &flight).await;
        let started = Instant::now();
        let dead = cluster.kill_master_of(slot);
        let (promoted, took) = tokio::task::block_in_place(|| {
            cluster.wait_promoted(slot, dead, started, Duration::from_secs(20))
        });
        println!(
            "killed master :{dead} of slot {slot}; replica :{promoted} took over after {took:.2?}"
        );
        let after = eventually("the holds from the promoted replica", LONG, || async {
            app.holds.list(flight_id.into()).await.ok()
        })
        .await;
        println!(
            "the app's client read the slot again {:.2?} after the kill",
            started.elapsed()
        );
        let lost = lost_holds(&app, &before, &after).await;
        println!("holds of live orders missing on the promoted replica: {lost}");
        (killed_at, took)
    };
    let (report, (killed_at, took)) = tokio::join!(crowd, fault);
    report.print();
    // What the worker's own Redis client saw of the failover.
    let log = app.worker_log(0);
    let warnings = (log.lines())
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    let from_fred = log.lines().filter(|l| l.contains("fred")).count();
    println!("worker log: {warnings} warnings or errors, {from_fred} from the Redis client");

    // Bookings after the failover: orders created once the replica had
    // taken over (their claims went to it) and then confirmed.
    let promoted_at = killed_at + chrono::Duration::from_std(took).unwrap();
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*), extract(epoch FROM min(created_at) - $2)::float8
             FROM orders WHERE flight_id = $1 AND status = 'CONFIRMED' AND created_at > $3",
            &[&flight_id, &killed_at, &promoted_at],
        )
        .await
        .unwrap();
    let (after, first): (i64, Option<f64>) = (row.get(0), row.get(1));
    println!(
        "orders created after the failover and confirmed: {after}; the first created {:.2} s after the kill",
        first.unwrap_or(f64::NAN)
    );
    assert!(after > 0, "bookings continue after the failover");
    assert_eq!(report.violations, 0, "{:?}", report.violation_examples);
    assert_eq!(
        report.other, 0,
        "every create answer is one a client can act on"
    );
    assert_eq!(
        (report.unsettled, report.ghost_orders),
        (0, 0),
        "every order ended"
    );
    assert_eq!(
        (report.double_sales, report.multi_listed),
        (0, 0),
        "one owner per seat"
    );
    books_agree(&app, &flight).await;
}

/// What every test ending with all its orders ended checks: no paid order
/// expired, `available_seats` agrees with the seats, and no hold is left
/// once the claims of creates nobody was answered have lapsed (the claim
/// TTL).
async fn books_agree(app: &TestApp, flight: &str) {
    let flight_id: Uuid = flight.parse().unwrap();
    let paid_expired = count(
        app,
        "SELECT count(*) FROM orders WHERE flight_id = $1 AND status = 'EXPIRED'
           AND payment_attempts > 0",
        flight_id,
    )
    .await;
    assert_eq!(paid_expired, 0, "no paid order expired");
    let available = count(
        app,
        "SELECT f.available_seats - (SELECT count(*) FROM seats s
                 WHERE s.flight_id = f.id AND s.status = 'available')
         FROM flights f WHERE f.id = $1",
        flight_id,
    )
    .await;
    assert_eq!(available, 0, "available_seats agrees with the seats");
    let claim_ttl = app.settings.server.claim_ttl();
    eventually(
        "no orphan hold in the cluster",
        claim_ttl + LONG,
        || async { holds(app, flight).await.is_empty().then_some(()) },
    )
    .await;
}

/// `call` until it is answered otherwise than 503 (a client whose slot map
/// still names the dead master), bounded.
async fn answered<F, Fut>(what: &str, mut call: F) -> (u16, Value)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    eventually(what, LONG, || {
        let answer = call();
        async move {
            let (code, body) = answer.await;
            (code != 503).then_some((code, body))
        }
    })
    .await
}

async fn pay(app: &TestApp, order: Uuid) -> (u16, Value) {
    let path = format!("/api/orders/{order}/pay");
    app.post(&path, json!({"paymentCode": "00000"})).await
}

/// An order's status, payment attempts counted on its row, and attempt
/// rows recorded (the simulated provider's ledger).
async fn payments(app: &TestApp, order: Uuid) -> (String, i32, i64) {
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT status, payment_attempts,
                    (SELECT count(*) FROM payment_attempts p WHERE p.order_id = o.id)
             FROM orders o WHERE id = $1",
            &[&order],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Holds lost for real in a failover, and caught. The replica of the
/// flight's master is cut off (stopped, its link dropped), orders A and C
/// hold seats on the master alone, the master is killed and the replica
/// promoted without those holds. B then takes one of A's seats, which
/// Redis shows free and Postgres has not sold: A's payment takes its holds
/// again first, finds the seat B's and is refused, nothing charged. C's
/// seat nobody took: its payment takes the hold back and C is sold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_lost_in_a_failover_are_caught_by_the_payment_re_check() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let app = TestApp::with_worker(settings(&cluster, Duration::from_secs(120)).await).await;
    let flight = burst::insert_flight(&app.pool, 1).await;
    let slot = cluster.slot(&format!("{{{flight}}}"));
    let prefix = &app.settings.redis.key_prefix;
    let on_master =
        |seat: &str| cluster.get_on_master(&format!("{prefix}:hold:{{{flight}}}:{seat}"));

    // K's hold reaches the replica before the cut: it survives.
    let k = create_ok(&app, &flight, &["1F"]).await;
    let (replica, frozen) = tokio::task::block_in_place(|| cluster.cut_off_replica_of(slot, LONG));
    // On the master alone. Naming the passengers takes the holds again, so
    // it comes before the loss too: the payment's re-check is what meets it.
    let a = create_after_a_cut(&app, &flight, &["1A", "1B"]).await;
    let c = create_after_a_cut(&app, &flight, &["1C"]).await;
    for order in [a, c] {
        let (code, body) = app.name_passengers(&order.to_string()).await;
        assert_eq!(code, 200, "{body}");
    }
    let before = holds(&app, &flight).await;
    assert_eq!(
        before,
        [mine(a, &["1A", "1B"]), mine(c, &["1C"]), mine(k, &["1F"])].concat()
    );

    let started = Instant::now();
    let dead = cluster.kill_master_of(slot);
    frozen.thaw();
    let (promoted, took) = tokio::task::block_in_place(|| {
        cluster.wait_promoted(slot, dead, started, Duration::from_secs(20))
    });
    assert_eq!(promoted, replica, "the cut-off replica took over");
    let flight_id: Uuid = flight.parse().unwrap();
    eventually("the holds from the promoted replica", LONG, || async {
        app.holds.list(flight_id.into()).await.ok()
    })
    .await;
    println!(
        "cut off replica :{replica}, killed master :{dead}; the replica took over after {took:.2?}, \
         the app's client read the slot again {:.2?} after the kill",
        started.elapsed()
    );
    // The loss is real: the promoted master itself lacks A's and C's holds.
    let seats = ["1A", "1B", "1C", "1F"];
    let kept: Vec<Option<String>> = seats.iter().map(|s| on_master(s)).collect();
    assert_eq!(kept, [None, None, None, Some(k.to_string())], "{seats:?}");
    assert_eq!(holds(&app, &flight).await, mine(k, &["1F"]));
    println!(
        "holds on the promoted master: {} of {} (lost: A's 1A 1B, C's 1C)",
        kept.iter().flatten().count(),
        before.len()
    );

    // Catch 1. Redis shows 1A free and Postgres has not sold it: B takes it.
    let (code, body) = answered("B's create", || create(&app, &flight, &["1A"])).await;
    assert_eq!(code, 201, "{body}");
    let b: Uuid = body["orderId"].as_str().unwrap().parse().unwrap();
    // A pays: its holds are taken again first, 1A is B's: refused, nothing
    // charged, A unchanged and still changeable.
    let (code, body) = answered("A's payment", || pay(&app, a)).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("SEATS_UNAVAILABLE")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("1A"), "{body}");
    assert_eq!(payments(&app, a).await, ("SEATS_RESERVED".into(), 0, 0));
    println!("A's payment after the loss: {code} {}", body["message"]);
    // A keeps 1B (its hold taken back by the change) and pays for it.
    let (code, body) = (app.put(&format!("/api/orders/{a}/seats"), json!({"seats": ["1B"]}))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        holds(&app, &flight).await,
        [mine(b, &["1A"]), mine(a, &["1B"]), mine(k, &["1F"])].concat(),
        "A's change released nothing of B's"
    );
    let (code, body) = app.name_passengers(&b.to_string()).await;
    assert_eq!(code, 200, "{body}");
    // Catch 2. Nobody took 1C: C's payment takes its hold back.
    for order in [a, b, c] {
        let (code, body) = pay(&app, order).await;
        assert_eq!(code, 202, "{order}: {body}");
    }
    for order in [a, b, c] {
        wait_for(&app, order, "CONFIRMED").await;
    }
    let (code, body) = app.delete(&format!("/api/orders/{k}")).await;
    assert_eq!(code, 200, "{body}");
    for order in [a, c] {
        assert_eq!(payments(&app, order).await, ("CONFIRMED".into(), 1, 1));
    }

    // One owner per seat, the one Redis last let hold it.
    let client = app.pool.get().await.unwrap();
    let owners: Vec<(String, Option<Uuid>)> = client
        .query(
            "SELECT id, order_id FROM seats WHERE flight_id = $1 AND status = 'booked' ORDER BY id",
            &[&flight_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let sold = |seat: &str, order: Uuid| (seat.to_string(), Some(order));
    assert_eq!(owners, [sold("1A", b), sold("1B", a), sold("1C", c)]);
    let mut report = burst::BurstReport::default();
    burst::audit(&app, &flight, LONG, &mut report).await;
    assert_eq!(
        (report.unsettled, report.ghost_orders, report.ghost_holds),
        (0, 0, 0),
        "every order ended, no hold of an ended order"
    );
    assert_eq!(
        (report.double_sales, report.multi_listed),
        (0, 0),
        "one owner per seat"
    );
    books_agree(&app, &flight).await;
}

/// How long a request may take to answer 503 once its flight's master is
/// gone: within its deadline (`API_CALL_TIMEOUT`, 3 s). Once the Redis
/// client knows the store is unreachable the answer takes at most half a
/// second (its grace for a reconnection), so
/// a loaded machine leaves it far inside; a request that waits for Redis
/// instead reaches the deadline.
const IN_TIME: Duration = Duration::from_secs(3);

/// `call`, timed: it must answer within [`IN_TIME`] (the client gives up
/// well after, so a hang shows as too slow, not as a stuck test).
async fn timed<F>(what: &str, call: F) -> (u16, Value)
where
    F: std::future::Future<Output = (u16, Value)>,
{
    let started = Instant::now();
    let answer = tokio::time::timeout(IN_TIME * 5, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {:?}", IN_TIME * 5));
    let took = started.elapsed();
    println!("{what}: {} in {took:.2?}", answer.0);
    assert!(took < IN_TIME, "{what} took {took:.2?}: {}", answer.1);
    answer
}

async fn seat_map(app: &TestApp, flight: &str) -> (u16, Value) {
    app.get(&format!("/api/flights/{flight}")).await
}

fn unavailable((code, body): &(u16, Value)) -> bool {
    *code == 503 && body["error"] == "SERVICE_UNAVAILABLE"
}

/// A master with no replica dies: nobody serves its slots and every node
/// says the cluster is down (`cluster_state:fail`). The seat map and a
/// create of a flight on it answer 503 `SERVICE_UNAVAILABLE` within the
/// request's deadline, again and again (never a hang), and so do a flight
/// on a live master (the whole cluster refuses work) and `/health`. Restarted, the master's
/// flight answers 200 and takes orders again, without a restart of the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_without_a_replica_dies_and_its_flight_answers_503_in_time() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start_without_replicas)
        .await
        .unwrap();
    let app = TestApp::with_worker(settings(&cluster, Duration::from_secs(60)).await).await;
    let slot_of = |flight: &str| cluster.slot(&format!("{{{flight}}}"));
    let doomed = FL101;
    let master = cluster.master_of(slot_of(doomed)).expect("a master");
    // A seeded flight on another master (the slot ranges of three masters
    // are fixed, so this is always the same flight).
    let other = [FL102, FL201, FL202]
        .into_iter()
        .find(|f| cluster.master_of(slot_of(f)) != Some(master))
        .expect("a seeded flight on another master");
    for flight in [doomed, other] {
        let (code, body) = seat_map(&app, flight).await;
        assert_eq!(code, 200, "{body}");
    }
    let order = || create(&app, doomed, &["3A"]);

    let dead = cluster.kill_master_of(slot_of(doomed));
    let killed = Instant::now();
    tokio::task::block_in_place(|| cluster.wait_state("fail", LONG));
    println!(
        "killed master :{dead}; cluster_state:fail after {:.2?}",
        killed.elapsed()
    );
    // Answered in time for as long as it lasts, not only the first time.
    while killed.elapsed() < Duration::from_secs(12) {
        let answer = timed("seat map, master gone", seat_map(&app, doomed)).await;
        assert!(unavailable(&answer), "{answer:?}");
        let answer = timed("create, master gone", order()).await;
        assert!(unavailable(&answer), "{answer:?}");
        let answer = timed("other flight's seat map", seat_map(&app, other)).await;
        assert!(unavailable(&answer), "the cluster is down: {answer:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (code, body) = timed("health, master gone", app.get("/health")).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["checks"]["redis"].as_str().unwrap().contains("redis"),
        "{body}"
    );

    let restarted = Instant::now();
    tokio::task::block_in_place(|| cluster.restart(dead, LONG));
    eventually("the flight's seat map again", LONG, || async {
        let (code, _) = seat_map(&app, doomed).await;
        (code == 200).then_some(())
    })
    .await;
    println!(
        "master :{dead} restarted; its flight answered 200 after {:.2?}",
        restarted.elapsed()
    );
    let (code, body) = answered("a create after the restart", order).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = seat_map(&app, other).await;
    assert_eq!(code, 200, "{body}");
}
