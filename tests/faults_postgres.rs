//! Postgres shut down immediately (a crash: no checkpoint) under mixed
//! customer traffic and restarted; every order must then settle and the
//! books balance (the invariants are listed in
//! `tests/support/faults/mod.rs`).

#[path = "support/faults/mod.rs"]
mod faults;
mod support;

use faults::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_balance_after_postgres_crashes_and_restarts() {
    faults::run(&[Fault::Postgres]).await;
}
