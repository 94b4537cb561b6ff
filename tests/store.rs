//! Storage against real Postgres and Redis: migrations, seed, seat holds and
//! the confirming transaction.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flightctl::domain::{FlightId, OrderId, OrderStatus, SeatId};
use flightctl::store::holds::{Holds, Lock};
use flightctl::store::orders::{self, Confirm, Order};
use flightctl::store::{self, migrate, refunds, seed};
use tokio_postgres::error::SqlState;

async fn holds(prefix_settings: &flightctl::config::Settings) -> Holds {
    let client = store::redis_client(&prefix_settings.redis).await.unwrap();
    Holds::new(client, prefix_settings.redis.key_prefix.clone())
}

fn seats(ids: &[&str]) -> Vec<SeatId> {
    ids.iter().map(|s| SeatId::parse(s).unwrap()).collect()
}

#[tokio::test]
async fn migrate_twice_and_seed_twice_gives_four_flights_and_420_seats() {
    let settings = support::isolated_settings(false).await;
    let pool = store::pg_pool(&settings.database).unwrap();
    let status = migrate::status(&pool).await.unwrap();
    assert!(
        status.iter().all(|m| !m.applied),
        "fresh database: all pending"
    );
    assert_eq!(
        migrate::up(&pool).await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    );
    assert_eq!(migrate::up(&pool).await.unwrap(), Vec::<i32>::new());
    let status = migrate::status(&pool).await.unwrap();
    assert_eq!(status.len(), 15);
    assert!(status.iter().all(|m| m.applied));

    let first = seed::run(&pool).await.unwrap();
    assert_eq!((first.flights, first.seats), (4, 420));
    let again = seed::run(&pool).await.unwrap();
    assert_eq!((again.flights, again.seats), (0, 0));
    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT (SELECT count(*) FROM flights), (SELECT count(*) FROM seats)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (4, 420));
}

#[tokio::test]
async fn the_migrate_and_seed_commands_are_idempotent() {
    let settings = support::isolated_settings(false).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_flightctl"))
            .args(args)
            .env_clear()
            .env("DATABASE_URL", settings.database.url.expose())
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        for args in [&["migrate", "up"][..], &["seed"]] {
            let out = run(args);
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let status = String::from_utf8(run(&["migrate", "status"]).stdout).unwrap();
    assert_eq!(
        status.lines().filter(|l| l.ends_with("applied")).count(),
        15,
        "{status}"
    );
    let seed = String::from_utf8(run(&["seed"]).stdout).unwrap();
    assert!(seed.contains("inserted 0 flights and 0 seats"), "{seed}");
}

#[tokio::test]
async fn fifty_concurrent_lockers_never_share_a_seat() {
    let settings = support::isolated_settings(false).await;
    let holds = Arc::new(holds(&settings).await);
    let flight = FlightId::random();
    // Overlapping sets of three seats out of six.
    let pool = ["1A", "1B", "1C", "1D", "1E", "1F"];
    let mut tasks = Vec::new();
    for i in 0..50 {
        let holds = holds.clone();
        let wanted: Vec<SeatId> = (0..3)
            .map(|k| support::seat(pool[(i + k * 2) % 6]))
            .collect();
        tasks.push(tokio::spawn(async move {
            let order = OrderId::random();
            let outcome = holds
                .lock(flight, order, &wanted, Duration::from_secs(60))
                .await
                .unwrap();
            (order, wanted, outcome)
        }));
    }
    let mut owner: HashMap<SeatId, OrderId> = HashMap::new();
    let mut winners = 0;
    for task in tasks {
        let (order, wanted, outcome) = task.await.unwrap();
        match outcome {
            Lock::Locked => {
                winners += 1;
                for seat in wanted {
                    assert!(
                        owner.insert(seat.clone(), order).is_none(),
                        "{seat} held twice"
                    );
                }
            }
            Lock::Taken(taken) => assert!(!taken.is_empty()),
        }
    }
    assert!(winners >= 1);
    // Redis agrees with what the winners were told.
    let live = holds.list(flight).await.unwrap();
    assert_eq!(live, owner);
}

#[tokio::test]
async fn a_lock_is_all_or_nothing_and_reentrant_for_its_order() {
    let settings = support::isolated_settings(false).await;
    let holds = holds(&settings).await;
    let (flight, a, b) = (FlightId::random(), OrderId::random(), OrderId::random());
    let ttl = Duration::from_secs(60);
    assert_eq!(
        holds
            .lock(flight, a, &seats(&["2A", "2B"]), ttl)
            .await
            .unwrap(),
        Lock::Locked
    );
    assert_eq!(
        holds
            .lock(flight, b, &seats(&["2B", "2C"]), ttl)
            .await
            .unwrap(),
        Lock::Taken(seats(&["2B"]))
    );
    assert!(
        !holds
            .list(flight)
            .await
            .unwrap()
            .contains_key(&support::seat("2C")),
        "nothing partly taken"
    );
    assert_eq!(
        holds
            .lock(flight, a, &seats(&["2A", "2B", "2C"]), ttl)
            .await
            .unwrap(),
        Lock::Locked
    );
    assert_eq!(holds.list(flight).await.unwrap().len(), 3);
}

#[tokio::test]
async fn holds_expire_with_their_ttl() {
    let settings = support::isolated_settings(false).await;
    let holds = holds(&settings).await;
    let (flight, a, b) = (FlightId::random(), OrderId::random(), OrderId::random());
    holds
        .lock(flight, a, &seats(&["3A"]), Duration::from_secs(2))
        .await
        .unwrap();
    // A TTL of seconds, not milliseconds: the read above must come before
    // it lapses even on a loaded machine.
    assert_eq!(
        holds.list(flight).await.unwrap().get(&support::seat("3A")),
        Some(&a)
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(holds.list(flight).await.unwrap().is_empty());
    let ttl = Duration::from_secs(60);
    assert_eq!(
        holds.lock(flight, b, &seats(&["3A"]), ttl).await.unwrap(),
        Lock::Locked
    );
}

#[tokio::test]
async fn only_the_owner_can_release_or_relock() {
    let settings = support::isolated_settings(false).await;
    let holds = holds(&settings).await;
    let (flight, owner, other) = (FlightId::random(), OrderId::random(), OrderId::random());
    let held = seats(&["4A", "4B"]);
    holds
        .lock(flight, owner, &held, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(holds.release(flight, other, &held).await.unwrap(), 0);
    let taken = holds.lock(flight, other, &held, Duration::from_secs(60));
    assert_eq!(taken.await.unwrap(), Lock::Taken(held.clone()));
    let relocked = holds.lock(flight, owner, &held, Duration::from_secs(60));
    assert_eq!(relocked.await.unwrap(), Lock::Locked);
    // The first TTL is seconds long so the refusals above come while it
    // holds, even on a loaded machine.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        holds.list(flight).await.unwrap().len(),
        2,
        "the relock outlived the first TTL"
    );
    assert_eq!(holds.release(flight, owner, &held).await.unwrap(), 2);
    assert!(holds.list(flight).await.unwrap().is_empty());
}

/// Defect: a keyed create retried before its answer was stored claimed the
/// seats again with the claim's TTL and cut the workflow's hold to seconds.
#[tokio::test]
async fn a_hold_never_gets_shorter_when_its_order_locks_it_again() {
    let settings = support::isolated_settings(false).await;
    let holds = holds(&settings).await;
    let (flight, order) = (FlightId::random(), OrderId::random());
    let held = seats(&["6A"]);
    let hold = Duration::from_secs(960);
    holds.lock(flight, order, &held, hold).await.unwrap();
    let claim = Duration::from_secs(8);
    holds.lock(flight, order, &held, claim).await.unwrap();
    let pttl = pttl(&settings, &holds, flight, "6A").await;
    assert!(pttl > 950_000, "the hold was cut to {pttl} ms");
    // Nor does a lock of the seats the order holds drop it from the index.
    assert_eq!(
        holds.list(flight).await.unwrap().get(&support::seat("6A")),
        Some(&order)
    );
}

#[tokio::test]
async fn dropping_a_claim_leaves_a_hold_the_workflow_adopted() {
    let settings = support::isolated_settings(false).await;
    let holds = holds(&settings).await;
    let (flight, order) = (FlightId::random(), OrderId::random());
    let claim = Duration::from_secs(8);
    holds
        .lock(flight, order, &seats(&["7A", "7B"]), claim)
        .await
        .unwrap();
    // The workflow adopted 7A (its lock stretched it to the full hold).
    let hold = Duration::from_secs(960);
    holds
        .lock(flight, order, &seats(&["7A"]), hold)
        .await
        .unwrap();
    let both = seats(&["7A", "7B"]);
    let dropped = holds.drop_claim(flight, order, &both, claim);
    assert_eq!(dropped.await.unwrap(), 1);
    let left = holds.list(flight).await.unwrap();
    assert_eq!(left.get(&support::seat("7A")), Some(&order));
    assert!(!left.contains_key(&support::seat("7B")), "{left:?}");
}

/// Milliseconds left on a seat's hold key.
async fn pttl(
    settings: &flightctl::config::Settings,
    holds: &Holds,
    flight: FlightId,
    seat: &str,
) -> i64 {
    use fred::prelude::KeysInterface;
    let key = format!("{}:hold:{{{flight}}}:{seat}", settings.redis.key_prefix);
    holds.client().pttl(key).await.unwrap()
}

#[tokio::test]
async fn holds_of_one_flight_share_a_hash_tag() {
    let settings = support::isolated_settings(false).await;
    let holds = holds(&settings).await;
    let flight = FlightId::random();
    holds
        .lock(
            flight,
            OrderId::random(),
            &seats(&["5A", "5B"]),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let client = holds.client();
    use fred::prelude::KeysInterface;
    let (_, keys): (String, Vec<String>) = client
        .scan_page(
            "0",
            format!("{}*", settings.redis.key_prefix),
            Some(100),
            None,
        )
        .await
        .unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let tag = format!("{{{flight}}}");
    assert!(keys.iter().all(|k| k.contains(&tag)), "{keys:?}");
}

/// An order paying for its seats (its save claims them).
fn order(id: OrderId, flight: FlightId, seat_ids: &[&str]) -> Order {
    Order {
        status: OrderStatus::PaymentProcessing,
        payment_attempts: 1,
        ..support::order_row(id, flight, seat_ids)
    }
}

/// An order holding its seats, not paying yet (its save claims nothing).
fn holding(id: OrderId, flight: FlightId, seat_ids: &[&str]) -> Order {
    Order {
        status: OrderStatus::SeatsReserved,
        ..support::order_row(id, flight, seat_ids)
    }
}

/// The flight's seats sold in Postgres.
async fn booked(pool: &deadpool_postgres::Pool, flight: FlightId) -> Vec<String> {
    let sql = "SELECT id FROM seats WHERE flight_id = $1 AND status = 'booked' ORDER BY id";
    let conn = pool.get().await.unwrap();
    let rows = conn.query(sql, &[&flight]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn confirm_books_every_seat_once_or_nothing() {
    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let flight = support::FL101.parse::<FlightId>().unwrap();
    let (first, second) = (OrderId::random(), OrderId::random());
    orders::save(&pool, &order(first, flight, &["6A"]), None)
        .await
        .unwrap();
    // Two orders can no longer pay for one seat (the first claimed it): the
    // second one holds it, its hold outlived in Redis.
    orders::save(&pool, &holding(second, flight, &["6A", "6B"]), None)
        .await
        .unwrap();

    assert_eq!(
        orders::confirm(&pool, first, flight, &seats(&["6A"]))
            .await
            .unwrap(),
        Confirm::Sold
    );
    // A retried confirm changes nothing (no double decrement).
    assert_eq!(
        orders::confirm(&pool, first, flight, &seats(&["6A"]))
            .await
            .unwrap(),
        Confirm::Confirmed
    );
    // 6A was sold meanwhile: the second order books nothing, not even 6B.
    assert_eq!(
        orders::confirm(&pool, second, flight, &seats(&["6A", "6B"]))
            .await
            .unwrap(),
        Confirm::SeatsTaken(seats(&["6A"]))
    );
    assert_eq!(booked(&pool, flight).await, ["6A"]);
    let conn = pool.get().await.unwrap();
    let available: i32 = conn
        .query_one(
            "SELECT available_seats FROM flights WHERE id = $1",
            &[&flight],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(available, 119);
    let confirmed = orders::find(&pool, first).await.unwrap();
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    assert!(confirmed.confirmed_at.is_some());
    assert_eq!(
        orders::find(&pool, second).await.unwrap().status,
        OrderStatus::SeatsReserved
    );
}

#[tokio::test]
async fn confirm_sells_only_a_live_order() {
    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let flight = support::FL102.parse::<FlightId>().unwrap();
    let save = async |seat: &str, status: OrderStatus| {
        let id = OrderId::random();
        let row = Order {
            status,
            ..support::order_row(id, flight, &[seat])
        };
        orders::save(&pool, &row, None).await.unwrap();
        id
    };
    let not_live = [
        ("10A", OrderStatus::Failed),
        ("10B", OrderStatus::Expired),
        ("10C", OrderStatus::Cancelled),
        ("10D", OrderStatus::Created),
    ];
    for (seat, status) in not_live {
        let id = save(seat, status).await;
        let refused = orders::confirm(&pool, id, flight, &seats(&[seat])).await;
        assert_eq!(refused.unwrap(), Confirm::NotLive(status), "{status}");
        assert_eq!(orders::find(&pool, id).await.unwrap().status, status);
    }
    for (seat, status) in [
        ("11A", OrderStatus::SeatsReserved),
        ("11B", OrderStatus::PaymentPending),
    ] {
        let id = save(seat, status).await;
        let sold = orders::confirm(&pool, id, flight, &seats(&[seat])).await;
        assert_eq!(sold.unwrap(), Confirm::Sold, "{status}");
    }
    assert_eq!(
        booked(&pool, flight).await,
        ["11A", "11B"],
        "no order that was not live bought a seat"
    );
}

#[tokio::test]
async fn concurrent_confirms_of_one_seat_sell_it_once() {
    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let flight = support::FL201.parse::<FlightId>().unwrap();
    let ids: Vec<OrderId> = (0..10).map(|_| OrderId::random()).collect();
    for id in &ids {
        orders::save(&pool, &holding(*id, flight, &["7C"]), None)
            .await
            .unwrap();
    }
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (pool, id) = (pool.clone(), *id);
            tokio::spawn(async move {
                orders::confirm(&pool, id, flight, &seats(&["7C"]))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut sold = 0;
    for t in tasks {
        if t.await.unwrap() == Confirm::Sold {
            sold += 1;
        }
    }
    assert_eq!(sold, 1);
}

#[tokio::test]
async fn saving_never_overwrites_a_confirmed_order() {
    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let flight = support::FL102.parse::<FlightId>().unwrap();
    let id = OrderId::random();
    let mut o = order(id, flight, &["8A"]);
    orders::save(&pool, &o, None).await.unwrap();
    orders::confirm(&pool, id, flight, &o.seats).await.unwrap();
    o.status = OrderStatus::Failed;
    orders::save(&pool, &o, None).await.unwrap();
    assert_eq!(
        orders::find(&pool, id).await.unwrap().status,
        OrderStatus::Confirmed
    );
}

#[tokio::test]
async fn every_change_raises_the_version_and_is_announced_in_its_transaction() {
    use futures::StreamExt;
    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let cfg = settings.database.pg_config().unwrap();
    let (client, mut connection) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    let (tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    client
        .batch_execute("LISTEN flightctl_changes")
        .await
        .unwrap();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), notices.recv())
            .await
            .expect("an announcement")
            .unwrap()
    };

    let flight = support::FL201.parse::<FlightId>().unwrap();
    let id = OrderId::random();
    let o = order(id, flight, &["9A"]);
    orders::save(&pool, &o, None).await.unwrap();
    assert_eq!(orders::find(&pool, id).await.unwrap().version, 1);
    assert_eq!(next().await, format!("o:{id}:1"));
    assert_eq!(next().await, format!("f:{flight}"));
    orders::record_attempt(&pool, id, 1, orders::AttemptOutcome::Declined, Some("no"))
        .await
        .unwrap();
    assert_eq!(next().await, format!("o:{id}:2"));
    next().await;
    orders::confirm(&pool, id, flight, &o.seats).await.unwrap();
    let mut seen = vec![next().await, next().await];
    seen.sort();
    assert_eq!(seen, [format!("f:{flight}"), format!("o:{id}:3")]);
    assert_eq!(orders::find(&pool, id).await.unwrap().version, 3);
    // A save refused on a confirmed order changes nothing and says nothing.
    orders::save(&pool, &o, None).await.unwrap();
    flightctl::store::flights::announce(&pool, flight)
        .await
        .unwrap();
    assert_eq!(next().await, format!("f:{flight}"));
    assert_eq!(orders::find(&pool, id).await.unwrap().version, 3);
}

#[tokio::test]
async fn a_save_from_earlier_in_the_history_never_overwrites_a_later_one() {
    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let flight = support::FL201.parse::<FlightId>().unwrap();
    let id = OrderId::random();
    let later = Order {
        saved_at_event: 20,
        ..order(id, flight, &["10A"])
    };
    orders::save(&pool, &later, None).await.unwrap();
    let earlier = Order {
        status: OrderStatus::SeatsReserved,
        seats: seats(&["10A", "10B"]),
        saved_at_event: 12,
        ..later.clone()
    };
    orders::save(&pool, &earlier, None).await.unwrap();
    let row = orders::find(&pool, id).await.unwrap();
    assert_eq!(
        (row.status, row.seats.len(), row.version),
        (OrderStatus::PaymentProcessing, 1, 1),
        "the late, older save changed nothing"
    );
    // The same point in the history (local activities of one task) applies
    // in order, as does a later one.
    let same = Order {
        status: OrderStatus::Failed,
        ..later.clone()
    };
    orders::save(&pool, &same, None).await.unwrap();
    assert_eq!(
        orders::find(&pool, id).await.unwrap().status,
        OrderStatus::Failed
    );
}

/// The worker counts endings, payment attempts and sales from what the
/// store reports, once per change however often an activity retries it: a
/// save that finds the ending there already, an attempt recorded again, a
/// confirm of a confirmed order report nothing new.
#[tokio::test]
async fn a_retried_change_is_reported_once() {
    use flightctl::store::orders::AttemptOutcome;

    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let flight = support::FL101.parse::<FlightId>().unwrap();
    let row = |id: OrderId, status: OrderStatus, at: i64| Order {
        status,
        saved_at_event: at,
        ..support::order_row(id, flight, &["7A"])
    };
    let (expiring, buying) = (OrderId::random(), OrderId::random());
    let mut ended = Vec::new();
    for (id, status, at) in [
        (expiring, OrderStatus::SeatsReserved, 5),
        (expiring, OrderStatus::Expired, 9),
        (expiring, OrderStatus::Expired, 9),
        (expiring, OrderStatus::Expired, 7),
        (buying, OrderStatus::PaymentProcessing, 5),
    ] {
        let saved = orders::save(&pool, &row(id, status, at), None)
            .await
            .unwrap();
        ended.extend(saved.ended);
    }
    assert_eq!(ended, [OrderStatus::Expired], "one ending, once");
    let mut recorded = 0;
    let mut sales = Vec::new();
    for _ in 0..2 {
        let declined = orders::record_attempt(&pool, buying, 1, AttemptOutcome::Declined, None);
        recorded += usize::from(declined.await.unwrap());
        let approved = orders::record_attempt(&pool, buying, 2, AttemptOutcome::Succeeded, None);
        recorded += usize::from(approved.await.unwrap());
        let sold = seats(&["7A"]);
        sales.push(orders::confirm(&pool, buying, flight, &sold).await.unwrap());
    }
    assert_eq!(recorded, 2, "two attempts, each once");
    assert_eq!(sales, [Confirm::Sold, Confirm::Confirmed], "one sale");
}

#[tokio::test]
async fn the_ledger_records_each_charge_and_refund_once_and_never_changes() {
    use orders::AttemptOutcome as Outcome;
    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let flight = support::FL102.parse::<FlightId>().unwrap();
    let id = OrderId::random();
    orders::save(&pool, &order(id, flight, &["9A", "9B"]), None)
        .await
        .unwrap();
    let declined = orders::record_attempt(&pool, id, 1, Outcome::Declined, Some("declined"));
    assert!(declined.await.unwrap());
    assert!(
        support::ledger_rows(&pool, id).await.is_empty(),
        "a decline is no charge"
    );
    // An approved attempt is a charge of the order's total; its retry is not.
    for now in [true, false] {
        let recorded = orders::record_attempt(&pool, id, 2, Outcome::Succeeded, None).await;
        assert_eq!(recorded.unwrap(), now);
    }
    let charge = ("CHARGE".to_string(), 70_000, format!("pay-{id}-2"));
    assert_eq!(
        support::ledger_rows(&pool, id).await,
        std::slice::from_ref(&charge)
    );

    // A second approved charge of the order: refused by the schema.
    let conn = pool.get().await.unwrap();
    let second = conn
        .execute(
            "INSERT INTO payment_attempts (order_id, attempt, outcome) VALUES ($1, 3, 'SUCCEEDED')",
            &[&id],
        )
        .await
        .unwrap_err();
    assert_eq!(second.code(), Some(&SqlState::UNIQUE_VIOLATION));
    let db = second.as_db_error().unwrap();
    assert_eq!(db.constraint(), Some("ledger_one_charge_per_order"));
    assert!(
        orders::record_attempt(&pool, id, 3, Outcome::Succeeded, None)
            .await
            .is_err()
    );
    let attempts: i64 = conn
        .query_one(
            "SELECT count(*) FROM payment_attempts WHERE order_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts, 2, "the refused attempt left nothing");

    // A refund paid is a row with the provider's reference, once however
    // often the provider is asked.
    conn.execute(
        "INSERT INTO refunds (order_id, amount_cents) VALUES ($1, 70000)",
        &[&id],
    )
    .await
    .unwrap();
    let payout = refunds::pay_out(&pool, id, 0.0, 0.5).await.unwrap();
    assert_eq!(refunds::pay_out(&pool, id, 0.0, 0.5).await.unwrap(), payout);
    let refunds::Payout::Paid(paid) = payout else {
        panic!("a refund that never declines was declined")
    };
    let refund = ("REFUND".to_string(), 70_000, paid);
    assert_eq!(
        support::ledger_rows(&pool, id).await,
        [charge.clone(), refund.clone()]
    );

    // Rows are never changed or removed, whoever asks.
    for sql in [
        "UPDATE ledger SET amount_cents = 0",
        "DELETE FROM ledger",
        "TRUNCATE ledger",
    ] {
        let refused = conn.execute(sql, &[]).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}"
        );
    }
    assert_eq!(support::ledger_rows(&pool, id).await, [charge, refund]);
}

#[tokio::test]
async fn the_ledger_starts_with_the_money_moved_before_it() {
    let settings = support::isolated_settings(false).await;
    let pool = store::pg_pool(&settings.database).unwrap();
    let mut conn = pool.get().await.unwrap();
    migrate::migrations::runner()
        .set_target(refinery::Target::Version(9))
        .run_async(&mut **conn)
        .await
        .unwrap();
    seed::run(&pool).await.unwrap();
    let flight = support::FL102.parse::<FlightId>().unwrap();
    let id = OrderId::random();
    // The row as a save wrote it before claims (V10) existed.
    conn.batch_execute(&format!(
        "INSERT INTO orders (id, flight_id, workflow_id, status, seats, total_price_cents,
                payment_attempts)
         VALUES ('{id}', '{flight}', 'booking-{id}', 'PAYMENT_PROCESSING', '{{10A}}', 35000, 2);
         INSERT INTO payment_attempts (order_id, attempt, outcome) VALUES
            ('{id}', 1, 'ERROR'), ('{id}', 2, 'SUCCEEDED');
         INSERT INTO provider_refunds (idempotency_key, order_id, amount_cents, provider_ref)
         VALUES ('refund-{id}', '{id}', 35000, 'rf_before');"
    ))
    .await
    .unwrap();
    drop(conn);
    assert_eq!(migrate::up(&pool).await.unwrap().last(), Some(&15));
    assert_eq!(
        support::ledger_rows(&pool, id).await,
        [
            ("CHARGE".to_string(), 35_000, format!("pay-{id}-2")),
            ("REFUND".to_string(), 35_000, "rf_before".to_string()),
        ]
    );
}
