//! The invariants judged from the journal against the final rows.

use super::*;

/// What one invariant checked, and where it failed.
pub struct Invariant {
    pub name: &'static str,
    pub checked: String,
    pub violations: Vec<String>,
}

/// An order's final row.
pub struct Row {
    pub status: String,
    pub flight: String,
    pub seats: Vec<String>,
    /// Payment attempts: the row's counter, and the recorded attempts.
    pub attempts: i32,
    pub attempt_rows: i64,
    /// Money: the order's price, its approved payments, what the provider
    /// paid back, and its refund's status (if one was asked for).
    pub price_cents: i64,
    pub approved: i64,
    pub refunded_cents: i64,
    pub refund: Option<String>,
}

/// A request that changed nothing left `order` as it was: its seats
/// (change), no payment (pay), not cancelled (cancel).
pub fn unchanged(req: &Request, order: Uuid, row: Option<&Row>) -> Option<String> {
    let Some(row) = row else {
        return Some(format!("{}: order {order} has no row", req.describe()));
    };
    let wrong = match req.call {
        "change" => {
            let mut before = req.seats_before.clone();
            let mut after = row.seats.clone();
            before.sort();
            after.sort();
            (before != after).then(|| format!("seats {before:?} before, {after:?} now"))
        }
        "pay" => (row.attempts > 0 || row.attempt_rows > 0 || was_sold(&row.status)).then(|| {
            format!(
                "{} with {} payment attempts ({} recorded)",
                row.status, row.attempts, row.attempt_rows
            )
        }),
        "cancel" => (row.status == "CANCELLED").then(|| "CANCELLED".to_string()),
        _ => None,
    };
    wrong.map(|w| format!("{}: order {order} changed: {w}", req.describe()))
}

/// No order changed by a request answered non-2xx (other than 504 or no
/// answer): each such request left its order as it was, and a create so
/// answered left no order behind. A create's order is known only from a
/// 201 or a 504 naming it, so rows of orders nobody was told about are
/// bounded by the creates that got no answer at all.
pub fn check_refusals(journal: &Journal, rows: &HashMap<Uuid, Row>, flight: &str) -> Invariant {
    let mut violations = Vec::new();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for req in journal.requests.iter().filter(|r| r.refused()) {
        *checked
            .entry(format!("{} {}", req.kind.label(), req.call))
            .or_default() += 1;
        if let Some(order) = req.order
            && req.call != "create"
        {
            violations.extend(unchanged(req, order, rows.get(&order)));
        }
    }
    // A create answered 504 that was never retried: its order may exist,
    // but nobody paid it.
    let mut unknown_creates = 0;
    for req in journal.requests.iter().filter(|r| r.call == "create") {
        if req.settled.is_none() {
            for order in &req.named {
                unknown_creates += 1;
                if let Some(row) = rows.get(order)
                    && was_sold(&row.status)
                {
                    violations.push(format!(
                        "{}: order {order} named by its 504 is CONFIRMED",
                        req.describe()
                    ));
                }
            }
        }
    }
    let told: HashSet<Uuid> = journal
        .requests
        .iter()
        .filter(|r| r.call == "create")
        .flat_map(|r| r.order.iter().chain(&r.named))
        .copied()
        .collect();
    let untold: Vec<(&Uuid, &Row)> = rows
        .iter()
        .filter(|(id, row)| row.flight == flight && !told.contains(id))
        .collect();
    let unanswered = journal
        .requests
        .iter()
        .filter(|r| r.call == "create" && r.settled.is_none())
        .filter(|r| r.answers.iter().any(|(code, _)| *code == 0))
        .count();
    let listed = |rows: &[(&Uuid, &Row)]| -> String {
        let shown: Vec<String> = rows
            .iter()
            .take(EXAMPLES)
            .map(|(id, row)| format!("{id} {} {:?}", row.status, row.seats))
            .collect();
        shown.join(", ")
    };
    if untold.len() > unanswered {
        violations.push(format!(
            "{} orders exist that no create was answered 201 or 504 for, but only {unanswered} creates got no answer at all: {}",
            untold.len(),
            listed(&untold)
        ));
    }
    let sold: Vec<(&Uuid, &Row)> = untold
        .iter()
        .filter(|(_, row)| was_sold(&row.status))
        .copied()
        .collect();
    if !sold.is_empty() {
        violations.push(format!(
            "orders nobody was told about are CONFIRMED: {}",
            listed(&sold)
        ));
    }
    let checked: Vec<String> = checked.iter().map(|(k, n)| format!("{k} {n}")).collect();
    Invariant {
        name: "no order changed by a request answered non-2xx",
        checked: format!(
            "refused requests: {}; creates answered 504 or not at all, never retried or retried in vain: {unknown_creates} named, {unanswered} unnamed; rows nobody was told about: {}",
            if checked.is_empty() {
                "none".to_string()
            } else {
                checked.join(", ")
            },
            untold.len()
        ),
        violations,
    }
}

/// Every final answer matches the order: a 201 has its row, a 202 ended
/// CONFIRMED or FAILED after an attempt, a cancel answered 200 ended
/// CANCELLED; a keyed request's final refusal (after its retries) changed
/// nothing, and the orders its 504s named and its final answer did not
/// are not orders.
pub fn check_answers(journal: &Journal, rows: &HashMap<Uuid, Row>) -> Invariant {
    let mut violations = Vec::new();
    let (mut created, mut paid, mut cancelled, mut refused, mut superseded) = (0, 0, 0, 0, 0);
    for req in &journal.requests {
        let row = req.order.and_then(|o| rows.get(&o));
        match (req.call, req.settled, req.order) {
            ("create", Some(201), Some(order)) => {
                created += 1;
                if row.is_none() {
                    violations.push(format!("{}: order {order} has no row", req.describe()));
                }
            }
            ("pay", Some(202), Some(order)) => {
                paid += 1;
                match row {
                    Some(r)
                        if (r.status == "CONFIRMED"
                            || r.status == "FAILED"
                            || r.status.starts_with("REFUND"))
                            && r.attempt_rows > 0 => {}
                    Some(r) => violations.push(format!(
                        "{}: order {order} is {} with {} recorded payment attempts",
                        req.describe(),
                        r.status,
                        r.attempt_rows
                    )),
                    None => {
                        violations.push(format!("{}: order {order} has no row", req.describe()))
                    }
                }
            }
            ("cancel", Some(200), Some(order)) => {
                cancelled += 1;
                if row.map(|r| r.status.as_str()) != Some("CANCELLED") {
                    violations.push(format!(
                        "{}: order {order} is {:?}",
                        req.describe(),
                        row.map(|r| &r.status)
                    ));
                }
            }
            ("pay", Some(code), Some(order)) if req.keyed && req.unknown() && refusal(code) => {
                refused += 1;
                violations.extend(unchanged(req, order, row));
            }
            _ => {}
        }
        // A keyed create that settled: the orders its 504s named, other
        // than the one it was answered with, never became orders.
        if req.call == "create" && req.keyed && req.settled.is_some() {
            for named in req.named.iter().filter(|n| Some(**n) != req.order) {
                superseded += 1;
                if let Some(r) = rows.get(named) {
                    violations.push(format!(
                        "{}: order {named} its 504 named, not the one it ended on ({:?}), is {} {:?}",
                        req.describe(),
                        req.order,
                        r.status,
                        r.seats
                    ));
                }
            }
        }
    }
    for order in &journal.probes {
        if !rows.contains_key(order) {
            violations.push(format!(
                "probe order {order} was created (201) but has no row"
            ));
        }
    }
    Invariant {
        name: "every final answer matches the order's state",
        checked: format!(
            "201 creates {created}, 202 payments {paid}, 200 cancels {cancelled}, keyed payments refused after a 504 or no answer {refused}, orders named by a keyed create's 504 and superseded {superseded}"
        ),
        violations,
    }
}
