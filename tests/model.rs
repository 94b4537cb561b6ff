//! A model of the booking protocol, checked exhaustively (every
//! interleaving of every step) with `stateright`: 2 orders × 2 seats, each
//! order selecting a non-empty set of seats, 2 payment attempts, a refund's
//! run of 2 provider attempts, Redis forgetting any hold between any two
//! steps, any workflow dying between any two of its steps. No server runs:
//! `cargo test --test model -- --nocapture` prints the states explored.
//! (2 orders × 3 seats, 2,170,573 states, passes too but takes a minute of
//! CPU in a debug build; 3 orders do not finish in ten minutes, optimised.)
//!
//! How things end is checked in every state where no step is left: each
//! step lowers a measure (`space::potential`, asserted on every step), so
//! every run ends in such a state. "Every refund ends" is checked as "every
//! refund ends paid", the provider declining at most one run's attempts
//! per refund and an operator retrying what it failed (a REFUND_FAILED
//! refund always offers the retry, so no run ends on one).
//!
//! What each step of the model is in the code (`model/protocol.rs`,
//! `model/refunds.rs`):
//!
//! | model step | code |
//! | --- | --- |
//! | `Lock`, `Check` | `booking/workflow/steps.rs` `select` → `hold_seats` in `booking/activities.rs` (`lock`: the Redis script, then `flights::check_seats`; then `orders::save`) |
//! | `Expire` | the hold timer in `Booking::hold` (`workflow/mod.rs`), then `steps::end_order` → `end_order` |
//! | `Cancel` | `steps::cancel` → `end_order` |
//! | `Relock`, `Claim` | `steps::accept_payment` → `hold_seats`: the re-entrant Redis lock, then the claim in the transaction that saves PAYMENT_PROCESSING (`store/orders.rs`) |
//! | `Approve`, `Decline` | `steps::collect_payment` → `validate_payment`, `record_attempt` (a timeout is a decline here) |
//! | `Sell` | `steps::sell` → `sell_seats` → `store/orders.rs` `confirm` (Sold, SeatsTaken, NotLive) |
//! | `End`, `StartRefund` | `steps::fail` → `end_order`; then the refund of the unsold approved payment (`booking/refund/`) |
//! | `Crash`, `LoseSale` | the workflow's run closed midway (terminated, failed); the worker of a sale in flight dying too |
//! | `Forget` | Redis failover or restart without persistence, a TTL run out |
//! | `SweepOrphan`, `SweepStrays` | `booking/reconcile.rs` `end_orphans`, `release_strays` |
//! | `SweepRefund`, `SweepResumeRefund` | the sweep's refund of an approved payment without a sale; `start_refunds` (pending refunds) |
//! | `CancelBooking` | `store/refunds.rs` `request` (`POST /api/bookings/{reference}/cancel`) |
//! | `ProviderDeclines`, `ProviderPays` | `booking/refund/` `refund_payment` → `store/refunds.rs` `pay_out` (its key looked up first) |
//! | `FinishRefund`, REFUND_FAILED | `finish_refund` → `refunds::finish`; `fail_refund` → `refunds::fail` |
//! | `RefundCrash`, `OperatorRetry` | a refund run lost (the sweep resumes it); `POST /api/ops/bookings/{reference}/refund` |
//!
//! Assumed of the code, not checked here: an approved charge is recorded
//! (ledger) as it is approved; ending an order and releasing its claims is
//! one transaction; a refund's start is idempotent (one per order); a
//! dependency outage only delays the step it hits (retried until the
//! dependency is back, never counted as a decline), so it is no step here.
//!
//! The second test takes the claim out (payment accepted on the Redis
//! holds alone, as before issue 23) and asserts the checker finds a
//! customer charged for a seat sold to another order: the model can fail.

#[path = "model/properties.rs"]
mod properties;
#[path = "model/protocol.rs"]
mod protocol;
#[path = "model/refunds.rs"]
mod refunds;
#[path = "model/space.rs"]
mod space;

use std::time::Instant;

use stateright::{Checker, HasDiscoveries, Model};

use properties::{NO_CHARGE_WITHOUT_SEAT, PAYMENT_KEEPS_ITS_SEATS};
use protocol::{Protocol, State};

/// Every state (one per renaming of orders and seats), depth first.
#[test]
fn the_protocol_sells_each_seat_once_and_settles_every_charge() {
    let started = Instant::now();
    let checker = Protocol { claims: true }
        .checker()
        .symmetry_fn(space::representative)
        .spawn_dfs()
        .join();
    report("with claims", &checker, started);
    checker.assert_properties();
}

/// Breadth first, until both properties the claim guards are broken: the
/// shortest story, printed.
#[test]
fn without_the_claim_a_customer_is_charged_for_a_seat_sold_to_another() {
    let started = Instant::now();
    let broken = [NO_CHARGE_WITHOUT_SEAT, PAYMENT_KEEPS_ITS_SEATS];
    let checker = Protocol { claims: false }
        .checker()
        .finish_when(HasDiscoveries::AllOf(broken.into_iter().collect()))
        .spawn_bfs()
        .join();
    report("without claims", &checker, started);
    assert!(
        checker.discovery(PAYMENT_KEEPS_ITS_SEATS).is_some(),
        "without the claim, an accepted payment loses its seats"
    );
    let found = checker
        .discovery(NO_CHARGE_WITHOUT_SEAT)
        .expect("without the claim, a charge finds its seats sold to another order");
    println!("counterexample to \"{NO_CHARGE_WITHOUT_SEAT}\":");
    for action in found.clone().into_actions() {
        println!("  {action:?}");
    }
    let end: &State = found.last_state();
    println!("  ends: {end:?}");
    let charged = end.orders.iter().position(|o| o.lost_seats && o.charged);
    let payer = charged.expect("an order charged without its seats") as u8;
    let rival_bought = end
        .seats_of(payer)
        .any(|seat| end.sold[seat].is_some_and(|o| o != payer));
    assert!(
        rival_bought,
        "another order bought a seat of the charged one"
    );
}

fn report<C: Checker<Protocol>>(variant: &str, checker: &C, started: Instant) {
    println!(
        "model {variant}: {} unique states ({} generated, depth {}) in {:.1?}",
        checker.unique_state_count(),
        checker.state_count(),
        checker.max_depth(),
        started.elapsed()
    );
}
