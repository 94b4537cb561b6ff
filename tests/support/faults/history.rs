//! The run as a history of operations, the way a linearizability checker
//! reads a test: every client call is an `invoke` by a process (a
//! customer), completed by `ok` (answered 2xx), `fail` (refused: it changed
//! nothing, now or later) or `info` (504, or no answer: its outcome is
//! unknown to the client). The history is written to the run's logs as
//! `history.jsonl` and judged after the run against the final rows:
//!
//! - every `info` is resolved one way by the final state (the payment was
//!   attempted or not, the order cancelled or not, the refund asked or
//!   not, the create's named order exists or not), and never both;
//! - money balances per order: approved payments − refunds paid equal the
//!   price of what the order holds sold (nothing charged without a sale
//!   unless its refund waits for an operator), judged from the payment and
//!   payout rows, and the service's own ledger check agrees.

use super::*;

/// How a call completed, for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpType {
    Ok,
    Fail,
    Info,
}

impl OpType {
    fn as_str(self) -> &'static str {
        match self {
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

impl Request {
    /// The completion of this call: the answer it settled on, or, when
    /// none settled it, `fail` if every try was refused and `info` if any
    /// was answered 504 or not at all.
    pub fn op_type(&self) -> OpType {
        match self.settled {
            Some(code) if (200..300).contains(&code) => OpType::Ok,
            Some(code) if refusal(code) => OpType::Fail,
            None if self.refused() => OpType::Fail,
            _ => OpType::Info,
        }
    }
}

/// Write the history, an `invoke` and a completion per call in the order
/// they happened, to `path` (one JSON object a line).
pub fn write_history(journal: &Journal, path: &std::path::Path) {
    let mut events: Vec<(Duration, Value)> = Vec::new();
    for req in &journal.requests {
        let op = |kind: &str| {
            json!({
                "process": req.process,
                "type": kind,
                "f": req.call,
                "order": req.order,
                "keyed": req.keyed,
                "answers": req.answers.iter().map(|(c, e)| format!("{c} {e}").trim_end().to_string()).collect::<Vec<_>>(),
            })
        };
        events.push((req.invoked, op("invoke")));
        events.push((req.completed, op(req.op_type().as_str())));
    }
    events.sort_by_key(|(at, _)| *at);
    let lines: Vec<String> = events
        .into_iter()
        .map(|(at, mut event)| {
            event["timeMs"] = json!(at.as_millis() as u64);
            event.to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Whether the call took effect, by the final row of its order: `None`
/// where the final state cannot tell (a change, a passenger list).
fn happened(req: &Request, row: Option<&Row>) -> Option<bool> {
    let row = row?;
    match req.call {
        "pay" => Some(row.attempt_rows > 0),
        "cancel" => Some(row.status == "CANCELLED"),
        "refund" => Some(row.refund.is_some()),
        _ => None,
    }
}

/// Every `info` is resolved one way by the final state; a create's is
/// resolved by the orders its 504s named: at most one of them exists.
pub fn check_history(journal: &Journal, rows: &HashMap<Uuid, Row>) -> Invariant {
    let mut violations = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut took, mut not, mut untold) = (0, 0, 0);
    for req in &journal.requests {
        let op = req.op_type();
        *counts.entry(op.as_str()).or_default() += 1;
        if op != OpType::Info {
            continue;
        }
        if req.call == "create" {
            let existing: Vec<&Uuid> = req.named.iter().filter(|o| rows.contains_key(o)).collect();
            match existing.len() {
                0 if req.named.is_empty() => untold += 1,
                0 => not += 1,
                1 => took += 1,
                _ => violations.push(format!(
                    "{}: several of the orders its 504s named exist: {existing:?}",
                    req.describe()
                )),
            }
            continue;
        }
        let Some(order) = req.order else { continue };
        let row = rows.get(&order);
        match happened(req, row) {
            Some(true) => took += 1,
            Some(false) => not += 1,
            None if row.is_none() => {
                violations.push(format!("{}: order {order} has no row", req.describe()))
            }
            None => untold += 1,
        }
        // A payment whose outcome was unknown took effect only as a
        // payment: attempted and ended by it, or not attempted at all.
        if req.call == "pay"
            && let Some(r) = row
            && r.attempt_rows > 0
            && !(r.status == "FAILED" || was_sold(&r.status))
        {
            violations.push(format!(
                "{}: order {order} was attempted but ended {}",
                req.describe(),
                r.status
            ));
        }
    }
    let ops: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    Invariant {
        name: "every info in the history resolved one way",
        checked: format!(
            "{} calls ({}); info resolved: took effect {took}, did not {not}, not told by the final state {untold} (creates never answered, changes, passenger lists)",
            journal.requests.len(),
            ops.join(", ")
        ),
        violations,
    }
}

/// Money balances per order: approved payments (one at most) less refunds
/// paid equal the price of what the order holds sold. An unsold order's
/// approved payment must be refunded, or its refund left for an operator
/// after the provider's last decline (counted, not a violation).
pub fn check_money(rows: &HashMap<Uuid, Row>) -> Invariant {
    let mut violations = Vec::new();
    let (mut charged, mut refunded, mut sold) = (0i64, 0i64, 0i64);
    let (mut unsold_refunded, mut for_operator) = (0, 0);
    for (id, r) in rows {
        let paid = r.approved.min(1) * r.price_cents;
        let holds = if was_sold(&r.status) && r.status != "REFUNDED" {
            r.price_cents
        } else {
            0
        };
        charged += paid;
        refunded += r.refunded_cents;
        sold += holds;
        if r.approved > 1 {
            violations.push(format!("{id}: {} approved payments", r.approved));
        }
        if !was_sold(&r.status) && r.approved > 0 && r.refunded_cents == r.price_cents {
            unsold_refunded += 1;
        }
        if paid - r.refunded_cents == holds {
            continue;
        }
        if !was_sold(&r.status) && r.refund.as_deref() == Some("FAILED") {
            for_operator += 1;
            continue;
        }
        let problem = if holds == 0 && paid > r.refunded_cents {
            "charged without a sale and no refund"
        } else if paid == 0 && holds > 0 {
            "sold without a charge"
        } else {
            "charges, refunds and sale disagree"
        };
        violations.push(format!(
            "{id} {}: {problem}: charged {paid}, refunded {}, sold {holds}",
            r.status, r.refunded_cents
        ));
    }
    Invariant {
        name: "money balances per order",
        checked: format!(
            "{} orders: charged {charged}, refunded {refunded}, sold {sold} cents; approved payments without a sale refunded: {unsold_refunded}; refunds left to an operator after the provider's last decline: {for_operator}",
            rows.len()
        ),
        violations,
    }
}

/// The service's own books agree: the money ledger (`store::ledger`, what
/// `GET /api/ops/reconciliation` serves) lists no discrepancy.
pub async fn check_ledger(pool: &deadpool_postgres::Pool) -> Invariant {
    let money = flightctl::store::ledger::check(pool).await.unwrap();
    let violations = (money.discrepancies.iter())
        .map(|d| {
            format!(
                "{} {:?}: {}: charged {}, refunded {}, sold {}",
                d.order_id,
                d.status,
                d.problem,
                d.charged.get(),
                d.refunded.get(),
                d.sold.get()
            )
        })
        .collect();
    Invariant {
        name: "the ledger lists no discrepancy",
        checked: format!(
            "ledger: charged {}, refunded {}, sold {} cents over {} flights",
            money.charged.get(),
            money.refunded.get(),
            money.sold.get(),
            money.flights.len()
        ),
        violations,
    }
}
