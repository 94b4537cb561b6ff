//! The run's report: what was injected and recovered from, and what the
//! traffic did.

use super::*;

/// The run's totals the report prints beside the journal.
pub struct Counts {
    pub traffic: Duration,
    pub settled: Duration,
    pub booked: usize,
    pub holds: usize,
}

/// The faults, when each was injected, how long it lasted, how long the
/// recovery took.
pub fn print_faults(injected: &[Injected]) {
    println!();
    println!(
        "== faults injected ({RETRYING} customers retrying with their key, {ONE_SHOT} never retrying) =="
    );
    println!(
        "{:<45} {:>11} {:>8} {:>13}",
        "fault", "injected at", "down", "recovered in"
    );
    for i in injected {
        println!(
            "{:<45} {:>10.1}s {:>7.1}s {:>13}{}",
            i.fault.describe(),
            i.at.as_secs_f64(),
            i.down.as_secs_f64(),
            i.recovered
                .map_or("NEVER".into(), |d| format!("{:.1}s", d.as_secs_f64())),
            if i.notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", i.notes.join("; "))
            }
        );
    }
    println!(
        "recovered in: from the restart (or SIGCONT) until a create is answered 201 (a probe order, then cancelled)"
    );
}

/// The answers, the orders' outcomes and the requests of each kind of
/// customer.
pub fn print_traffic(journal: &Journal, status: &HashMap<Uuid, String>, counts: &Counts) {
    println!();
    println!(
        "== traffic: {:.0}s, then settled in {:.1}s ==",
        counts.traffic.as_secs_f64(),
        counts.settled.as_secs_f64()
    );
    println!("answers per try (retry: retrying customer, once: never retrying):");
    for (answer, n) in &journal.answers {
        println!("  {answer:<40} {n}");
    }
    print_outcomes(journal, status);
    print_requests(journal);
    let created: HashSet<&Uuid> = journal.created.iter().collect();
    let unanswered = status
        .keys()
        .filter(|id| !created.contains(id) && !journal.probes.contains(id))
        .count();
    println!(
        "retried creates without a final answer after {}s of retries (same key): {}",
        RETRY_FOR.as_secs(),
        journal.create_unresolved
    );
    for (why, n) in &journal.unresolved {
        println!("  {n} × {why}");
    }
    println!(
        "rows of orders never answered 201: {unanswered}; probe orders: {}; booked seats: {}; redis holds left: {}",
        journal.probes.len(),
        counts.booked,
        counts.holds
    );
}

/// Orders created by final status, and payments accepted by outcome.
fn print_outcomes(journal: &Journal, status: &HashMap<Uuid, String>) {
    let created: HashSet<&Uuid> = journal.created.iter().collect();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, st) in status {
        if created.contains(id) {
            *by_status.entry(st).or_default() += 1;
        }
    }
    println!(
        "orders created (201): {}; by final status: {by_status:?}",
        journal.created.len()
    );
    let paid_confirmed = journal
        .paid
        .iter()
        .filter(|o| status.get(*o).map(String::as_str) == Some("CONFIRMED"))
        .count();
    println!(
        "payments accepted (202): {} ({} CONFIRMED, {} FAILED); retried pay without a final answer: {}",
        journal.paid.len(),
        paid_confirmed,
        journal.paid.len() - paid_confirmed,
        journal.pay_unresolved.len()
    );
}

/// Each kind of customer's requests by how they ended.
fn print_requests(journal: &Journal) {
    for kind in [Kind::Retrying, Kind::OneShot] {
        let mine: Vec<&Request> = journal.requests.iter().filter(|r| r.kind == kind).collect();
        let count = |f: &dyn Fn(&Request) -> bool| mine.iter().filter(|r| f(r)).count();
        println!(
            "{} requests: {} ({} keyed); ended 2xx {}, refused (every answer non-2xx, not 504) {}, outcome left open (504 or no answer, not settled) {}",
            kind.label(),
            mine.len(),
            count(&|r| r.keyed),
            count(&|r| matches!(r.settled, Some(200..300))),
            count(&|r| r.refused()),
            count(&|r| r.settled.is_none()),
        );
    }
}
