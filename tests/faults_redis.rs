//! Redis killed (SIGKILL) under mixed customer traffic and restarted empty:
//! every seat hold is lost. Orders selected before it came back re-take
//! their holds when they pay (or change, or end). Then again while
//! payments are under way (the worker frozen the moment they are
//! accepted), with rival buyers after the paying orders' seats. Every
//! order must then settle, the books and the money balance, and every
//! unknown outcome resolve one way (the invariants are listed in
//! `tests/support/faults/mod.rs` and `history.rs`).

#[path = "support/faults/mod.rs"]
mod faults;
mod support;

use faults::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_balance_after_redis_restarts_empty() {
    faults::run(&[Fault::Redis, Fault::RedisMidPayment]).await;
}
