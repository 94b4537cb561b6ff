//! One fault run, step by step: start the stack, run the traffic while the
//! faults are injected one after another, let every order settle, judge
//! the invariants, print the report, assert.

use super::*;

/// Runs the mixed traffic on a stack of its own, injects `faults` one after
/// another (each restored, recovered from, then `GAP` of traffic), and
/// asserts every fault was recovered from and every invariant holds.
pub async fn run(faults: &[Fault]) {
    let t0 = Instant::now();
    let mut stack = Stack::start().await;
    println!(
        "stack up in {:.1}s; logs in {}",
        t0.elapsed().as_secs_f64(),
        stack.logs.display()
    );
    let sh = shared(&stack).await;
    // The system answers before the traffic starts.
    let ready = recovery(&sh, FL201).await;
    assert!(ready.is_some(), "the stack never booked a seat");

    let (injected, traffic) = traffic_through(&mut stack, &sh, faults).await;
    let db = sh.pool.get().await.unwrap();
    let (live, settled) = settle(&db).await;
    // Claims of creates answered non-2xx lapse by design within seconds.
    tokio::time::sleep(CLAIM_LAPSE.saturating_sub(settled)).await;
    print_live_orders(&db, &stack, &live).await;

    let orders = final_rows(&db).await;
    let status: HashMap<Uuid, String> = orders
        .iter()
        .map(|(id, row)| (*id, row.status.clone()))
        .collect();
    let mut violations: Vec<String> = live
        .iter()
        .map(|o| format!("order left live: {o}"))
        .collect();
    let booked = check_seats(&db, &mut violations).await;
    let refunds = check_refunds(&db, &sh, &orders).await;
    check_available_seats(&db, &mut violations).await;
    let holds = check_redis_holds(&sh, &status, &mut violations).await;

    let ledger = check_ledger(&sh.pool).await;
    let journal = sh.journal.lock().unwrap();
    let invariants = [
        Invariant {
            name: "the books balance",
            checked: format!(
                "{} orders, {booked} booked seats, {holds} redis holds left",
                orders.len()
            ),
            violations,
        },
        check_refusals(&journal, &orders, &sh.flight),
        hold_lifetimes(&sh.holds.lock().unwrap()),
        check_answers(&journal, &orders),
        refunds,
        check_history(&journal, &orders),
        check_money(&orders),
        ledger,
    ];
    write_history(&journal, &stack.logs.join("history.jsonl"));
    print_faults(&injected);
    let counts = Counts {
        traffic,
        settled,
        booked,
        holds,
    };
    print_traffic(&journal, &status, &counts);
    println!("total {:.0}s", t0.elapsed().as_secs_f64());
    assert_passed(&injected, &invariants, &stack);
    // Kept only for a failed run.
    let _ = std::fs::remove_dir_all(&stack.logs);
}

/// What the customers, the probe and the sampler share.
async fn shared(stack: &Stack) -> Arc<Shared> {
    let pool = flightctl::store::pg_pool(&stack.settings.database).unwrap();
    let flight = support::burst::insert_flight(&pool, FLIGHT_ROWS).await;
    let redis = flightctl::store::redis_client(&stack.settings.redis)
        .await
        .unwrap();
    Arc::new(Shared {
        base: format!("http://127.0.0.1:{}", stack.serve_port),
        t0: Instant::now(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        flight,
        stop: AtomicBool::new(false),
        journal: Mutex::new(Journal::default()),
        pool,
        redis,
        prefix: stack.settings.redis.key_prefix.clone(),
        outage: Mutex::new(RedisOutage::default()),
        holds: Mutex::new(HoldSamples::default()),
    })
}

/// The customers and the sampler run from `WARMUP` before the first fault
/// until `GAP` after the last; returns what was injected and how long the
/// traffic ran.
async fn traffic_through(
    stack: &mut Stack,
    sh: &Arc<Shared>,
    faults: &[Fault],
) -> (Vec<Injected>, Duration) {
    let start = Instant::now();
    let kinds = std::iter::repeat_n(Kind::Retrying, RETRYING)
        .chain(std::iter::repeat_n(Kind::OneShot, ONE_SHOT));
    let customers: Vec<_> = kinds
        .enumerate()
        .map(|(i, kind)| tokio::spawn(PROCESS.scope(i + 1, customer(sh.clone(), kind))))
        .collect();
    let sampler = tokio::spawn(hold_sampler(sh.clone()));
    tokio::time::sleep(WARMUP).await;
    let mut injected = Vec::new();
    for &fault in faults {
        injected.push(inject_and_recover(stack, sh, fault, start).await);
        tokio::time::sleep(GAP).await;
    }
    sh.stop.store(true, Ordering::Relaxed);
    for c in customers {
        c.await.unwrap();
    }
    sampler.await.unwrap();
    (injected, start.elapsed())
}

/// Injects `fault`, restores it after its downtime, waits for a create to
/// be answered 201 again, samples the holds and restarts a process that
/// exited meanwhile.
async fn inject_and_recover(
    stack: &mut Stack,
    sh: &Arc<Shared>,
    fault: Fault,
    start: Instant,
) -> Injected {
    let at = start.elapsed();
    let redis_fault = matches!(fault, Fault::Redis | Fault::RedisMidPayment);
    if redis_fault {
        sh.outage.lock().unwrap().down = true;
    }
    let mut notes: Vec<String> = if fault.mid_payment() {
        mid_payment(stack, sh, fault).await
    } else {
        let notes = tokio::task::block_in_place(|| inject(stack, fault));
        tokio::time::sleep(fault.down_for()).await;
        tokio::task::block_in_place(|| restore(stack, fault));
        notes.into_iter().collect()
    };
    if redis_fault {
        *sh.outage.lock().unwrap() = RedisOutage {
            down: false,
            back_at: Some(Utc::now()),
        };
    }
    let down = start.elapsed() - at;
    let recovered = recovery(sh, FL201).await;
    sample_holds(sh, &format!("after {}", fault.describe())).await;
    if !stack.worker.is_running() {
        notes.push("the worker had exited; restarted".to_string());
        tokio::task::block_in_place(|| stack.restart_worker());
    }
    if !stack.serve.is_running() {
        notes.push("serve had exited; restarted".to_string());
        tokio::task::block_in_place(|| stack.restart_serve());
    }
    println!(
        "{:>6.1}s  {:<45} down {:.1}s, recovered in {}",
        at.as_secs_f64(),
        fault.describe(),
        down.as_secs_f64(),
        recovered.map_or("NEVER".into(), |d| format!("{:.1}s", d.as_secs_f64()))
    );
    Injected {
        fault,
        at,
        down,
        recovered,
        notes,
    }
}

/// Waits, bounded by `SETTLE_LIMIT`, until no order is live and no refund
/// pending (an unsold order's too); returns the ones still live (`"<id>
/// <status>"`) and how long it waited.
async fn settle(db: &deadpool_postgres::Object) -> (Vec<String>, Duration) {
    let settle_start = Instant::now();
    let live_sql = "SELECT id, status FROM orders WHERE status = ANY($1)
                    UNION SELECT order_id, 'refund PENDING' FROM refunds WHERE status = 'PENDING'
                    ORDER BY 1";
    let live: Vec<String> = loop {
        let rows = db.query(live_sql, &[&LIVE]).await.unwrap();
        let live: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {}", r.get::<_, Uuid>(0), r.get::<_, String>(1)))
            .collect();
        if live.is_empty() || settle_start.elapsed() > SETTLE_LIMIT {
            break live;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    (live, settle_start.elapsed())
}

/// What the engine says about orders left live, for the report.
async fn print_live_orders(db: &deadpool_postgres::Object, stack: &Stack, live: &[String]) {
    for order in live.iter().take(3) {
        let id = order.split(' ').next().unwrap_or_default();
        println!("--- {order}: row and workflow history ---");
        let row = db
            .query_one(
                "SELECT seats, saved_at_event, created_at::text, updated_at::text
                 FROM orders WHERE id = $1::text::uuid",
                &[&id],
            )
            .await
            .unwrap();
        let (seats, at, created, updated): (Vec<String>, i64, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        println!("row: seats {seats:?}, saved at event {at}, created {created}, updated {updated}");
        println!("{}", workflow_history(&stack.temporal.host(), id));
    }
}

/// Final state of every order.
async fn final_rows(db: &deadpool_postgres::Object) -> HashMap<Uuid, Row> {
    db.query(
        "SELECT o.id, o.status, o.flight_id::text, o.seats, o.payment_attempts,
                (SELECT count(*) FROM payment_attempts p WHERE p.order_id = o.id),
                o.total_price_cents,
                (SELECT count(*) FROM payment_attempts p
                  WHERE p.order_id = o.id AND p.outcome = 'SUCCEEDED'),
                (SELECT coalesce(sum(amount_cents), 0)::bigint FROM provider_refunds p
                  WHERE p.order_id = o.id),
                (SELECT r.status FROM refunds r WHERE r.order_id = o.id)
         FROM orders o",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let row = Row {
            status: r.get(1),
            flight: r.get(2),
            seats: r.get(3),
            attempts: r.get(4),
            attempt_rows: r.get(5),
            price_cents: r.get(6),
            approved: r.get(7),
            refunded_cents: r.get(8),
            refund: r.get(9),
        };
        (r.get(0), row)
    })
    .collect()
}

/// Every booked seat belongs to exactly one CONFIRMED order listing it;
/// returns how many seats are booked.
async fn check_seats(db: &deadpool_postgres::Object, violations: &mut Vec<String>) -> usize {
    let rows = db
        .query(
            "SELECT s.flight_id::text, s.id, s.order_id, o.status, o.flight_id = s.flight_id
                    AND s.id = ANY(o.seats)
             FROM seats s LEFT JOIN orders o ON o.id = s.order_id
             WHERE s.status = 'booked'",
            &[],
        )
        .await
        .unwrap();
    let booked = rows.len();
    for r in &rows {
        let (flight, seat): (String, String) = (r.get(0), r.get(1));
        let (order, st, lists): (Option<Uuid>, Option<String>, Option<bool>) =
            (r.get(2), r.get(3), r.get(4));
        let sold = ["CONFIRMED", "REFUND_PENDING", "REFUND_FAILED"];
        if !st.as_deref().is_some_and(|st| sold.contains(&st)) || lists != Some(true) {
            violations.push(format!(
                "booked seat {flight}/{seat} belongs to {order:?} ({st:?}), listing it: {lists:?}"
            ));
        }
    }
    check_confirmed_orders_own_their_seats(db, violations).await;
    check_no_claim_outlives_its_payment(db, violations).await;
    booked
}

/// Every order has ended, so no seat is still claimed by a payment.
async fn check_no_claim_outlives_its_payment(
    db: &deadpool_postgres::Object,
    violations: &mut Vec<String>,
) {
    let rows = db
        .query(
            "SELECT s.flight_id::text, s.id, s.claimed_by, o.status
             FROM seats s LEFT JOIN orders o ON o.id = s.claimed_by
             WHERE s.claimed_by IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    for r in &rows {
        let (flight, seat, order, st): (String, String, Uuid, Option<String>) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        violations.push(format!(
            "seat {flight}/{seat} is still claimed by {order} ({st:?})"
        ));
    }
}

/// A CONFIRMED order owns every seat it lists, and no seat is listed by two.
async fn check_confirmed_orders_own_their_seats(
    db: &deadpool_postgres::Object,
    violations: &mut Vec<String>,
) {
    let rows = db
        .query(
            "SELECT o.id, seat, s.status, s.order_id
             FROM orders o CROSS JOIN LATERAL unnest(o.seats) AS seat
             LEFT JOIN seats s ON s.flight_id = o.flight_id AND s.id = seat
             WHERE o.status = 'CONFIRMED' AND s.order_id IS DISTINCT FROM o.id",
            &[],
        )
        .await
        .unwrap();
    for r in &rows {
        let (order, seat, st, owner): (Uuid, String, Option<String>, Option<Uuid>) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        violations.push(format!(
            "CONFIRMED order {order} lists {seat}, which is {st:?} for {owner:?}"
        ));
    }
    let rows = db
        .query(
            "SELECT o.flight_id::text, seat, array_agg(o.id::text)
             FROM orders o CROSS JOIN LATERAL unnest(o.seats) AS seat
             WHERE o.status = 'CONFIRMED'
             GROUP BY 1, 2 HAVING count(*) > 1",
            &[],
        )
        .await
        .unwrap();
    for r in &rows {
        let (flight, seat, orders): (String, String, Vec<String>) = (r.get(0), r.get(1), r.get(2));
        violations.push(format!(
            "seat {flight}/{seat} listed by several CONFIRMED orders: {orders:?}"
        ));
    }
}

/// Refunds: one payout per cancelled booking, never one without a
/// cancellation answered 202 (or left unknown), and a refunded booking owns
/// no seat any more.
async fn check_refunds(
    db: &deadpool_postgres::Object,
    sh: &Shared,
    orders: &HashMap<Uuid, Row>,
) -> Invariant {
    let mut violations = Vec::new();
    let rows = db
        .query(
            "SELECT o.id, o.status, r.status,
                    (SELECT count(*) FROM provider_refunds p WHERE p.order_id = o.id),
                    (SELECT count(*) FROM seats s WHERE s.order_id = o.id)
             FROM orders o LEFT JOIN refunds r ON r.order_id = o.id
             WHERE r.order_id IS NOT NULL OR o.status LIKE 'REFUND%'",
            &[],
        )
        .await
        .unwrap();
    let journal = sh.journal.lock().unwrap();
    let mut refunded = 0;
    for r in &rows {
        let (order, st, refund, payouts, owned): (Uuid, String, Option<String>, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let asked = journal
            .requests
            .iter()
            .any(|q| q.call == "refund" && q.order == Some(order) && !q.refused());
        if !asked {
            violations.push(format!(
                "{order}: a refund ({st}) nobody was answered 202 for"
            ));
        }
        match (st.as_str(), refund.as_deref()) {
            ("REFUNDED", Some("REFUNDED")) if payouts == 1 && owned == 0 => refunded += 1,
            ("REFUND_FAILED", Some("FAILED")) if payouts == 0 => {}
            _ => violations.push(format!(
                "{order}: {st}, refund {refund:?}, {payouts} payouts, owns {owned} seats"
            )),
        }
    }
    for order in &journal.refund_asked {
        if !orders
            .get(order)
            .is_some_and(|r| r.status.starts_with("REFUND"))
        {
            violations.push(format!("{order}: cancelled with 202 but not refunding"));
        }
    }
    Invariant {
        name: "one refund per cancelled booking, its seats back on sale",
        checked: format!(
            "{} cancellations answered 202; {} refunds, {refunded} refunded",
            journal.refund_asked.len(),
            rows.len()
        ),
        violations,
    }
}

/// `available_seats` equals the count of available seats.
async fn check_available_seats(db: &deadpool_postgres::Object, violations: &mut Vec<String>) {
    let rows = db
        .query(
            "SELECT f.flight_number, f.available_seats,
                    (SELECT count(*) FROM seats s WHERE s.flight_id = f.id AND s.status = 'available')
             FROM flights f",
            &[],
        )
        .await
        .unwrap();
    for r in &rows {
        let (number, counter, counted): (String, i32, i64) = (r.get(0), r.get(1), r.get(2));
        if i64::from(counter) != counted {
            violations.push(format!(
                "{number}: available_seats {counter}, available seats {counted}"
            ));
        }
    }
}

/// No Redis hold (nor hold index entry) of an ended or unknown order;
/// returns how many holds are left.
async fn check_redis_holds(
    sh: &Shared,
    status: &HashMap<Uuid, String>,
    violations: &mut Vec<String>,
) -> usize {
    let keys: Vec<String> = sh
        .redis
        .custom(
            CustomCommand::new("KEYS", ClusterHash::FirstKey, false),
            vec![format!("{}:hold:*", sh.prefix)],
        )
        .await
        .unwrap();
    let mut holds = 0;
    for key in keys.iter().filter(|k| !k.ends_with('}')) {
        let owner: Option<String> = sh.redis.get(key).await.unwrap();
        let Some(owner) = owner else { continue };
        holds += 1;
        let st = owner
            .parse::<Uuid>()
            .ok()
            .and_then(|id| status.get(&id).cloned());
        match st {
            Some(st) if LIVE.contains(&st.as_str()) => {}
            st => violations.push(format!("redis hold {key} of order {owner} ({st:?})")),
        }
    }
    let holds_api = flightctl::store::Holds::new(sh.redis.clone(), sh.prefix.clone());
    for f in [sh.flight.as_str(), FL201] {
        for (seat, order) in holds_api.list(f.parse().unwrap()).await.unwrap() {
            let st = status.get(&order.uuid());
            if !st.is_some_and(|s| LIVE.contains(&s.as_str())) {
                violations.push(format!(
                    "hold index of {f} lists {seat} for order {order} ({st:?})"
                ));
            }
        }
    }
    holds
}

/// Every live order's holds outlived its `expiresAt` + margin, in every
/// sample.
fn hold_lifetimes(sampled: &HoldSamples) -> Invariant {
    let found = &sampled.found;
    let mut violations = found.violations.clone();
    if found.holds == 0 {
        violations.push("no live order's hold was ever sampled".to_string());
    }
    Invariant {
        name: "every live order's holds outlive its expiresAt + 60 s",
        checked: format!(
            "{} samples ({} unanswered within 5 s, {} skipped while Redis was down): {} live orders, {} holds; not judged: {} orders selected before Redis came back empty, {} that changed while sampled; least spare {}",
            sampled.samples,
            sampled.failed,
            sampled.redis_down,
            found.orders,
            found.holds,
            found.lost_with_redis,
            found.moved,
            found
                .least_spare_ms
                .map_or("-".to_string(), |ms| format!("{ms} ms")),
        ),
        violations,
    }
}

/// Every fault was recovered from, and no invariant was violated (each one
/// printed with what it checked).
fn assert_passed(injected: &[Injected], invariants: &[Invariant], stack: &Stack) {
    println!();
    println!("== invariants ==");
    for inv in invariants {
        let verdict = if inv.violations.is_empty() {
            "ok".to_string()
        } else {
            format!("{} VIOLATIONS", inv.violations.len())
        };
        println!("{}: {verdict}; checked: {}", inv.name, inv.checked);
        for v in &inv.violations {
            println!("  VIOLATION: {v}");
        }
    }
    assert!(
        injected.iter().all(|i| i.recovered.is_some()),
        "a fault was never recovered from"
    );
    let failed: Vec<String> = invariants
        .iter()
        .filter(|inv| !inv.violations.is_empty())
        .map(|inv| {
            let examples: Vec<&str> = inv
                .violations
                .iter()
                .take(EXAMPLES)
                .map(String::as_str)
                .collect();
            format!(
                "{}: {} violations, for example:\n    {}",
                inv.name,
                inv.violations.len(),
                examples.join("\n    ")
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "invariants violated (all listed above); logs in {}:\n{}",
        stack.logs.display(),
        failed.join("\n")
    );
}
