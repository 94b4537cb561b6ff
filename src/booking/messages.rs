//! What crosses the booking workflow's boundary: its input, its updates and
//! their answers, its query, and its activities' inputs and outputs. These
//! are the workflow's own types, not store rows, so a new column never
//! changes what Temporal records.

use crate::money::Cents;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    AttemptOutcome, FlightId, OrderId, OrderStatus, PaymentCode, SeatId, SeatSelection,
};
use crate::fares::SeatPrice;
use crate::passengers::Passenger;

/// Input of the booking workflow: the order and the timing policy it runs
/// under (fixed at start, so it is part of the workflow's history).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BookingInput {
    pub order_id: OrderId,
    pub flight_id: FlightId,
    /// How long a selection holds its seats (a change restarts it).
    pub hold_ms: u64,
    /// No hold of the order ends later than its creation plus this
    /// (`HOLD_MAX_LIFETIME`), however often its seats change.
    #[serde(default = "default_hold_max_lifetime_ms")]
    pub hold_max_lifetime_ms: u64,
    pub payment_timeout_ms: u64,
    pub payment_max_attempts: u32,
    /// How long the workflow waits for its creating selection before it
    /// ends without an order (absent: [`CREATION_WAIT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_wait_ms: Option<u64>,
}

/// A workflow whose creating selection never arrives ends after this long.
pub const CREATION_WAIT_MS: u64 = 30_000;

/// The cap of an input that does not name one (sent by an older `serve`):
/// `HOLD_MAX_LIFETIME`'s default.
pub const HOLD_MAX_LIFETIME_MS: u64 = 30 * 60 * 1000;

fn default_hold_max_lifetime_ms() -> u64 {
    HOLD_MAX_LIFETIME_MS
}

/// When the caller stops waiting for an update's answer. The workflow
/// refuses work it would commit later ([`Refusal::Late`]): an answer the
/// caller never saw changed nothing. Kept as Unix ms, its JSON form in
/// every payload, and what the store's SQL compares with
/// `clock_timestamp()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Deadline(u64);

impl Deadline {
    /// The instant `ms` milliseconds after the Unix epoch.
    pub fn from_unix_ms(ms: u64) -> Self {
        Self(ms)
    }

    /// The deadline of a wait of `wait` from `now_ms` (Unix ms).
    pub fn after(now_ms: u64, wait: Duration) -> Self {
        Self(now_ms + wait.as_millis() as u64)
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(self) -> u64 {
        self.0
    }

    /// At `now_ms` (Unix ms) the deadline is behind: work committed now
    /// would be late.
    pub fn has_passed(self, now_ms: u64) -> bool {
        now_ms > self.0
    }

    /// What is left of the wait at `now_ms` (Unix ms); nothing once passed.
    pub fn remaining(self, now_ms: u64) -> Duration {
        Duration::from_millis(self.0.saturating_sub(now_ms))
    }

    /// The deadline as the store's timestamps (none if out of range).
    pub fn to_time(self) -> Option<DateTime<Utc>> {
        crate::time::to_time(self.0)
    }
}

/// The `select_seats` update: the complete new selection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelectSeats {
    pub seats: SeatSelection,
    /// Each seat's price and fare rules as the flight sells it now. A seat
    /// the order already holds keeps the price it was taken at; a new seat
    /// without a price here is refused (`UnknownSeats`).
    #[serde(default)]
    pub prices: Vec<SeatPrice>,
    pub deadline_ms: Deadline,
    /// The API request that sent it, for the worker's logs.
    pub request_id: Option<String>,
}

/// The `set_passengers` update: the order's complete passenger list (one
/// per held seat at most; checked at the edge).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetPassengers {
    pub passengers: Vec<Passenger>,
    pub deadline_ms: Deadline,
    pub request_id: Option<String>,
}

/// The `pay` update. `passengers`, when given, replaces the order's list
/// (as `set_passengers` would) in the same step that accepts the payment:
/// saved with the row before payment starts, or, refused, nothing changes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pay {
    pub code: PaymentCode,
    pub deadline_ms: Deadline,
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passengers: Option<Vec<Passenger>>,
}

/// The `cancel` update.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cancel {
    pub deadline_ms: Deadline,
    pub request_id: Option<String>,
}

/// What an update answers: what it did, or why it did nothing.
pub type Answer<T> = Result<T, Refusal>;

/// A selection taken (or passengers named): the seats are held until
/// `expires_at_ms` (Unix ms), and no change holds them past
/// `max_expires_at_ms` (absent from an older build's answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub seats: Vec<SeatId>,
    pub expires_at_ms: u64,
    #[serde(default)]
    pub max_expires_at_ms: Option<u64>,
}

impl Held {
    /// The cap as the store's timestamps (none from an older build).
    pub fn max_expires_at(&self) -> Option<DateTime<Utc>> {
        self.max_expires_at_ms.and_then(crate::time::to_time)
    }
}

/// Why the workflow refused an update. Every refusal changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// Seats sold or held by another order.
    SeatsUnavailable(Vec<SeatId>),
    /// Seats the flight does not have.
    UnknownSeats(Vec<SeatId>),
    /// The hold ran out.
    Expired,
    /// The order can no longer change: paid, ended, or never created.
    NotModifiable(OrderStatus),
    /// The work would have been committed after the caller's deadline.
    Late,
    /// The seat store did not answer.
    StoreUnavailable,
    /// Passengers named for seats the order does not hold.
    NotHeld(Vec<SeatId>),
    /// A payment for seats without a passenger.
    PassengersRequired(Vec<SeatId>),
}

/// What the `status` query returns: the order as the workflow sees it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub order_id: OrderId,
    pub flight_id: FlightId,
    pub status: OrderStatus,
    pub seats: Vec<SeatId>,
    /// Absolute end of the hold (Unix ms); the caller computes what is left.
    pub deadline_ms: Option<u64>,
    /// The latest the hold may end however the seats change (Unix ms).
    #[serde(default)]
    pub max_deadline_ms: Option<u64>,
    pub payment_attempts: u32,
    pub max_payment_attempts: u32,
    pub last_error: Option<String>,
    pub total_price_cents: Cents,
    /// The held seats' prices and fare rules, fixed when each was taken.
    #[serde(default)]
    pub seat_prices: Vec<SeatPrice>,
}

/// The order row as the workflow saves it. `seq` numbers the saves of one
/// run: a save with a lower one arrives late and changes nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    pub order_id: OrderId,
    pub flight_id: FlightId,
    pub status: OrderStatus,
    pub seats: Vec<SeatId>,
    pub total_price_cents: Cents,
    /// Each seat's price and fare rules (`orders.seat_prices`).
    #[serde(default)]
    pub seat_prices: Vec<SeatPrice>,
    pub expires_at_ms: Option<u64>,
    /// The hold's cap while there is a hold: the creation plus
    /// `HOLD_MAX_LIFETIME`.
    #[serde(default)]
    pub max_expires_at_ms: Option<u64>,
    pub failure_reason: Option<String>,
    pub payment_attempts: u32,
    pub last_payment_error: Option<String>,
    pub seq: u64,
    #[serde(default)]
    pub passengers: Vec<Passenger>,
}

/// Hold `seats` for the order for `ttl_ms` (a hold never gets shorter).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockSeats {
    pub order_id: OrderId,
    pub flight_id: FlightId,
    pub seats: Vec<SeatId>,
    pub ttl_ms: u64,
    /// Of `seats`, those the order held before this lock: a refused lock
    /// gives back every other seat it took, and keeps these.
    pub held: Vec<SeatId>,
}

impl LockSeats {
    /// The order's holds on `seats`, to release.
    pub fn releasing<'a>(&self, seats: impl Iterator<Item = &'a SeatId>) -> Release {
        Release {
            order_id: self.order_id,
            flight_id: self.flight_id,
            seats: seats.cloned().collect(),
        }
    }
}

/// What became of a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Locked {
    /// Every seat is held for the order and the order saved.
    All,
    /// Seats sold or held by another order; nothing was taken.
    Unavailable(Vec<SeatId>),
    /// Seats that do not exist on the flight; nothing was taken.
    Unknown(Vec<SeatId>),
    /// The deadline passed before the order was saved; nothing was taken.
    Late,
}

/// Local activity: a step that takes seats — lock `lock` all-or-nothing,
/// save `order` (the order as it is if the lock succeeds) unless
/// `deadline_ms` has passed, then release the seats no longer wanted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HoldSeats {
    pub lock: LockSeats,
    pub order: OrderState,
    pub dropped: Vec<SeatId>,
    pub deadline_ms: Option<Deadline>,
    pub request_id: Option<String>,
}

/// The order's holds on `seats`, to release.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Release {
    pub order_id: OrderId,
    pub flight_id: FlightId,
    pub seats: Vec<SeatId>,
}

/// Activity input: one payment attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PaymentAttempt {
    pub order_id: OrderId,
    pub attempt: u32,
    pub code: PaymentCode,
    pub timeout_ms: u64,
    pub request_id: Option<String>,
}

/// Activity output: the payment provider's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Approved,
    Declined(String),
}

/// Local activity input: record a finished payment attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub order_id: OrderId,
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
}

/// Local activity input: the payment succeeded — record the attempt, sell
/// the seats in one transaction, and release the holds once sold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SellSeats {
    pub held: Release,
    pub attempt: AttemptRecord,
    pub request_id: Option<String>,
}

/// What became of a sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sale {
    Sold,
    /// Seats sold to another order meanwhile; nothing was sold.
    SeatsTaken(Vec<SeatId>),
    /// The order's row is no longer live (the sweep ended it); nothing sold.
    NotLive(OrderStatus),
}

/// Local activity input: the order ends without a sale. Save its last row
/// (unless `deadline_ms` has passed), then release every hold it has.
/// `order: None` is a creation that never became an order: a live row an
/// attempt lost with its worker may have saved is deleted instead.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndOrder {
    pub release: Release,
    pub order: Option<OrderState>,
    pub deadline_ms: Option<Deadline>,
    pub request_id: Option<String>,
}

/// Local activity input: does the order's row hold save `seq` (or a later
/// one)? Asked after a step's outcome was lost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SaveQuery {
    pub order_id: OrderId,
    pub seq: u64,
}

/// What became of an ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ended {
    Ended,
    /// The deadline passed before the row was saved; nothing changed.
    Late,
}
