//! Faults that strike while payments are under way, with rival buyers
//! after the same seats: buyers pay (approved at once, `00000`), the
//! worker is frozen (SIGSTOP) the moment the first payment is accepted
//! (its validation under way), then
//!
//! - [`Fault::RedisMidPayment`]: Redis is killed and restarted empty, so
//!   the paying orders' holds are gone, and rivals try to buy the seats
//!   while the worker is still frozen; it is thawed a few seconds later;
//! - [`Fault::WorkerStallMidPayment`]: the worker stays frozen beyond the
//!   payment's hold margin (the payment window + 60 s), so the holds lapse
//!   by their TTL, and rivals try to buy the seats as it is thawed.
//!
//! Every call goes through the journal like any customer's, so the run's
//! invariants judge them: no seat sold twice, every answer true, money
//! balanced per order (an approved payment is sold or refunded).

use super::*;

/// Buyers caught mid-payment per fault.
pub const VICTIMS: usize = 3;
/// How long before the thaw the rivals start (their keyed retries carry
/// them over it).
pub const RIVALS_LEAD: Duration = Duration::from_secs(3);

/// Runs a mid-payment fault; returns what is worth noting.
pub async fn mid_payment(stack: &mut Stack, sh: &Arc<Shared>, fault: Fault) -> Vec<String> {
    let (accepted, mut first) = tokio::sync::mpsc::unbounded_channel();
    let buyers: Vec<_> = (0..VICTIMS)
        .map(|i| {
            let (sh, accepted) = (sh.clone(), accepted.clone());
            tokio::spawn(PROCESS.scope(100 + i, async move {
                let seats = sh.choose(2).await;
                buy(&sh, seats, Some(accepted)).await
            }))
        })
        .collect();
    drop(accepted);
    // Frozen the moment the first payment is accepted: it is under way.
    let caught = first.recv().await;
    let frozen = procs::freeze_tree(stack.worker.pid());
    let mut notes = vec![match caught {
        Some(order) => format!("worker frozen as order {order}'s payment was accepted"),
        None => "no payment accepted; worker frozen".to_string(),
    }];
    match fault {
        Fault::RedisMidPayment => {
            tokio::task::block_in_place(|| stack.redis.kill());
            tokio::time::sleep(Duration::from_secs(1)).await;
            tokio::task::block_in_place(|| stack.redis.restart());
            notes.push("redis restarted empty".into());
        }
        _ => {
            let stall = payment_cover() + Duration::from_secs(4);
            tokio::time::sleep(stall.saturating_sub(RIVALS_LEAD)).await;
            notes.push(format!(
                "worker frozen {:.0}s, past the payment's holds",
                stall.as_secs_f64()
            ));
        }
    }
    notes.push(paying(sh).await);
    let victims: Vec<Vec<String>> = buyers_seats(sh, &buyers_orders(sh, caught)).await;
    let rivals: Vec<_> = (victims.iter().enumerate())
        .map(|(i, seats)| {
            let (sh, seats) = (sh.clone(), seats.clone());
            tokio::spawn(PROCESS.scope(200 + i, async move { buy(&sh, seats, None).await.2 }))
        })
        .collect();
    tokio::time::sleep(RIVALS_LEAD).await;
    frozen.thaw();
    let mut paid = (0, 0);
    for b in buyers {
        paid.0 += usize::from(b.await.unwrap().2);
    }
    for r in rivals {
        paid.1 += usize::from(r.await.unwrap());
    }
    notes.push(format!(
        "buyers' payments accepted {}, rivals' {}",
        paid.0, paid.1
    ));
    notes
}

/// The orders still paying as the fault strikes, for the report.
async fn paying(sh: &Shared) -> String {
    let db = sh.pool.get().await.unwrap();
    let paying: i64 = db
        .query_one(
            "SELECT count(*) FROM orders WHERE status = 'PAYMENT_PROCESSING'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    format!("{paying} orders PAYMENT_PROCESSING while frozen")
}

/// The orders the rivals go after: the one caught mid-payment and every
/// other live order of the mid-payment buyers.
fn buyers_orders(sh: &Shared, caught: Option<Uuid>) -> Vec<Uuid> {
    let journal = sh.journal.lock().unwrap();
    let mut orders: Vec<Uuid> = caught.into_iter().collect();
    for req in journal
        .requests
        .iter()
        .filter(|r| (100..200).contains(&r.process))
    {
        if let Some(order) = req.order
            && !orders.contains(&order)
        {
            orders.push(order);
        }
    }
    orders
}

/// The seats of these orders, as their rows list them.
async fn buyers_seats(sh: &Shared, orders: &[Uuid]) -> Vec<Vec<String>> {
    let db = sh.pool.get().await.unwrap();
    let rows = db
        .query("SELECT seats FROM orders WHERE id = ANY($1)", &[&orders])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// How long a payment's holds are kept: the payment window (every attempt
/// timing out, every backoff waited) plus the safety margin.
fn payment_cover() -> Duration {
    let timeout = humantime::parse_duration(PAYMENT_TIMEOUT).unwrap();
    flightctl::booking::payment::window(timeout, 3) + flightctl::booking::workflow::TTL_MARGIN
}

/// Create (keyed, retried), name the passengers and pay with a code that
/// is approved at once (keyed, retried); returns the order, the seats it
/// holds and whether the payment was accepted, which it also tells
/// `accepted`.
async fn buy(
    sh: &Shared,
    seats: Vec<String>,
    accepted: Option<tokio::sync::mpsc::UnboundedSender<Uuid>>,
) -> (Option<Uuid>, Vec<String>, bool) {
    let kind = Kind::Retrying;
    let key = Uuid::new_v4().to_string();
    let body = json!({"flightId": sh.flight, "seats": seats});
    let post = reqwest::Method::POST;
    let reply = (sh.call(
        kind,
        "create",
        post.clone(),
        "/api/orders",
        Some(body),
        Some(&key),
    ))
    .await;
    let created = match &reply.settled {
        Some((201, body)) => body["orderId"].as_str().and_then(|s| s.parse().ok()),
        _ => None,
    };
    sh.record(kind, "create", true, created, &reply, Vec::new());
    let Some(order) = created else {
        return (None, seats, false);
    };
    sh.journal.lock().unwrap().created.push(order);
    let passengers: Vec<Value> = (seats.iter())
        .map(|seat| json!({"seat": seat, "givenName": "Rival", "familyName": "Tester"}))
        .collect();
    let path = format!("/api/orders/{order}/passengers");
    let body = Some(json!({ "passengers": passengers }));
    let reply = sh.call(kind, "passengers", reqwest::Method::PUT, &path, body, None);
    let reply = reply.await;
    sh.record(
        kind,
        "passengers",
        false,
        Some(order),
        &reply,
        seats.clone(),
    );
    let key = Uuid::new_v4().to_string();
    let path = format!("/api/orders/{order}/pay");
    let body = Some(json!({"paymentCode": "00000"}));
    let reply = sh.call(kind, "pay", post, &path, body, Some(&key)).await;
    sh.record(kind, "pay", true, Some(order), &reply, Vec::new());
    let paid = matches!(reply.settled, Some((202, _)));
    if paid {
        sh.journal.lock().unwrap().paid.insert(order);
        if let Some(accepted) = accepted {
            let _ = accepted.send(order);
        }
    }
    (Some(order), seats, paid)
}
