//! Redis killed (SIGKILL) under mixed customer traffic and restarted empty:
//! every seat hold is lost. Orders selected before it came back re-take
//! their holds when they pay (or change, or end); every order must then
//! settle and the books balance (the invariants are listed in
//! `tests/support/faults/mod.rs`).

#[path = "support/faults/mod.rs"]
mod faults;
mod support;

use faults::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_balance_after_redis_restarts_empty() {
    faults::run(&[Fault::Redis]).await;
}
