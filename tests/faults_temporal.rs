//! The Temporal dev server killed (SIGKILL) under mixed customer traffic
//! and restarted on the same database file; every order must then settle
//! and the books balance (the invariants are listed in
//! `tests/support/faults/mod.rs`).

#[path = "support/faults/mod.rs"]
mod faults;
mod support;

use faults::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_balance_after_temporal_is_killed_and_restarted() {
    faults::run(&[Fault::Temporal]).await;
}
