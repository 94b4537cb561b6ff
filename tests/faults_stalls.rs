//! Stalls: every process of Temporal, then of Postgres, stopped (SIGSTOP)
//! for seconds under mixed customer traffic, then continued (SIGCONT) —
//! a dependency that hangs instead of failing; then the worker frozen the
//! moment payments are accepted, beyond their holds' margin, with rival
//! buyers after the paying orders' seats. Every order must then settle,
//! the books and the money balance, and every unknown outcome resolve one
//! way (the invariants are listed in `tests/support/faults/mod.rs` and
//! `history.rs`).

#[path = "support/faults/mod.rs"]
mod faults;
mod support;

use faults::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_balance_after_temporal_and_postgres_stall() {
    faults::run(&[
        Fault::TemporalStall,
        Fault::PostgresStall,
        Fault::WorkerStallMidPayment,
    ])
    .await;
}
