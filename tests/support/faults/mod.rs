//! The fault harness: mixed customer traffic (hold, change, pay with random
//! codes, cancel, abandon) while components are killed and restarted, or
//! stalled (every process stopped with SIGSTOP for seconds, then
//! continued); then every order must settle and the books must balance:
//!
//! - every booked seat belongs to exactly one CONFIRMED order listing it;
//! - no seat is left claimed by a payment;
//! - no order is left in a live state;
//! - no Redis hold belongs to an ended (or unknown) order;
//! - `available_seats` equals the count of available seats;
//! - no order was changed by a request answered non-2xx (other than 504
//!   `OUTCOME_UNKNOWN`): any other non-2xx changed nothing, now or later;
//! - every live order's holds outlive its `expiresAt` plus the one-minute
//!   margin (sampled during the traffic and right after each recovery);
//! - every final answer matches the order's real state: a 201 has its row,
//!   an accepted payment (202) ended CONFIRMED or FAILED after an attempt,
//!   a cancel answered 200 ended CANCELLED, and a keyed request's final
//!   refusal (after its retries) changed nothing.
//!
//! Two kinds of customers: those that retry as the API asks (an
//! `Idempotency-Key` on every create and payment, a 503, a 504 or no answer
//! retried after `Retry-After`, as the web UI retries a 503), and those
//! that never retry (one try, half of them with a key; on any non-2xx they
//! record the answer and leave the order alone).
//!
//! Everything runs on servers of its own (Postgres, Redis, a file-backed
//! Temporal dev server) and real `flightctl serve` / `flightctl worker`
//! processes, so killing them touches no other test. Each fault family has
//! its suite (`tests/faults_*.rs`), which calls [`run`] with its faults; a
//! run prints what it injected, each fault's recovery time, the orders'
//! outcome and what each invariant checked.
//!
//! Included by each suite with `#[path]` (not from `support/mod.rs`, so the
//! other test binaries do not build it); each suite injects only its own
//! family's faults, hence the allowance below for the variants it leaves out.
#![allow(dead_code)]

mod checks;
mod history;
mod report;
mod rivals;
mod run;
mod stack;
mod traffic;

pub use checks::*;
pub use history::*;
pub use report::*;
pub use rivals::*;
pub use run::run;
pub use stack::*;
pub use traffic::*;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::servers::{Postgres, Redis, Temporal};
use crate::support::{self, FL201, Proc, procs};
use chrono::{DateTime, Utc};
use fred::prelude::{ClientLike, KeysInterface};
use fred::types::{ClusterHash, CustomCommand};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

/// Concurrent virtual customers that retry with their key, and that never
/// retry.
pub const RETRYING: usize = 4;
pub const ONE_SHOT: usize = 3;
/// Rows (of six seats) of the flight the customers book: enough that a fast
/// run does not sell it out.
pub const FLIGHT_ROWS: i32 = 200;
/// Seats a customer chooses from: the first available ones of the flight,
/// so customers collide.
pub const WINDOW: usize = 24;
/// Traffic before the first fault, and between a recovery and the next fault.
pub const WARMUP: Duration = Duration::from_secs(8);
pub const GAP: Duration = Duration::from_secs(10);
/// A retrying customer's request answered 503, 504 or not at all is
/// retried (same key) this long.
pub const RETRY_FOR: Duration = Duration::from_secs(30);
/// A fault must be recovered from within this.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// Every order must reach an ending within this once traffic stops.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(90);
/// An up-front claim of a create the API did not answer 201 lapses within
/// `API_CALL_TIMEOUT` + 2 s grace + 3 s (8 s); Redis is checked after this.
pub const CLAIM_LAPSE: Duration = Duration::from_secs(10);
/// Short hold and payment window, so abandoned orders expire in the test.
pub const HOLD: &str = "8s";
pub const HOLD_MS: i64 = 8_000;
pub const PAYMENT_TIMEOUT: &str = "2s";
/// How long a stall keeps a server's processes stopped.
pub const STALL: Duration = Duration::from_secs(7);
/// Live orders' holds are sampled this often during the traffic.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// A hold outlives its order's `expiresAt` by this margin (hold + 1 min),
/// less this slack for clocks and the time the sample takes.
pub const TTL_MARGIN_MS: i64 = 60_000;
pub const TTL_SLACK_MS: i64 = 3_000;
/// Violations quoted per invariant in the failure message.
pub const EXAMPLES: usize = 5;

pub const LIVE: &[&str] = &[
    "CREATED",
    "SEATS_RESERVED",
    "PAYMENT_PENDING",
    "PAYMENT_PROCESSING",
    // A refund under way: settles too (it holds no Redis hold).
    "REFUND_PENDING",
];

/// How a customer treats an answer other than 2xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Creates and payments carry an `Idempotency-Key`; a 503, a 504 or no
    /// answer is retried (the same key) after `Retry-After`, as the web UI
    /// retries a 503, for at most `RETRY_FOR`.
    Retrying,
    /// One try (creates and payments with a key half of the time): on any
    /// non-2xx, or no answer, it records the answer and leaves the order.
    OneShot,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Retrying => "retry",
            Kind::OneShot => "once",
        }
    }
}

/// A status of an order whose seats were sold (whatever its refund did).
pub fn was_sold(status: &str) -> bool {
    status == "CONFIRMED" || status.starts_with("REFUND")
}

/// An answer that says nothing was changed, nor will be: every non-2xx
/// but 504 `OUTCOME_UNKNOWN` (no answer at all is code 0, not one).
pub fn refusal(code: u16) -> bool {
    code >= 300 && code != 504
}
