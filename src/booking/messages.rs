//! Inputs and outputs of the booking workflow, its updates, its query and its
//! activities. Everything here crosses a serialization boundary.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{OrderStatus, PaymentCode, SeatSelection};

/// Prefixes of update rejections, so the API can map them to error codes.
pub const ORDER_EXPIRED: &str = "ORDER_EXPIRED";
pub const ORDER_NOT_MODIFIABLE: &str = "ORDER_NOT_MODIFIABLE";
pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
pub const SERVICE_BUSY: &str = "SERVICE_BUSY";
pub const SEATS_UNAVAILABLE: &str = "SEATS_UNAVAILABLE";

/// Input of the booking workflow: the order and the timing policy it runs
/// under (fixed at start, so it is part of the workflow's history).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BookingInput {
    pub order_id: Uuid,
    pub flight_id: Uuid,
    pub seat_price_cents: i64,
    pub hold_ms: u64,
    pub payment_timeout_ms: u64,
    pub payment_max_attempts: u32,
    /// How long the workflow waits for its creating selection before it
    /// ends without an order (absent: [`CREATION_WAIT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_wait_ms: Option<u64>,
}

/// A workflow whose creating selection never arrives ends after this long.
pub const CREATION_WAIT_MS: u64 = 30_000;

/// The `select_seats` update: the complete new selection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelectSeats {
    pub seats: SeatSelection,
    /// Unix ms after which the caller no longer waits for the answer: a
    /// selection the workflow processes later is refused and holds nothing.
    /// Absent in histories recorded before deadlines existed.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// The API request that sent it, for the worker's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Result of a selection change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Selection {
    /// The seats are held until `expires_at_ms` (Unix ms).
    Held {
        seats: Vec<String>,
        expires_at_ms: u64,
    },
    /// Seats booked or held by another order; the previous selection stands.
    Unavailable { seats: Vec<String> },
    /// Seats that do not exist on this flight; nothing changed.
    Unknown { seats: Vec<String> },
    /// The selection reached the workflow after its deadline; nothing changed.
    Late,
}

/// The `pay` update.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pay {
    pub code: PaymentCode,
    /// As for [`SelectSeats::deadline_ms`]: a payment processed later is refused.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// The API request that sent it, for the worker's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What the `status` query returns: the order as the workflow sees it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub order_id: Uuid,
    pub flight_id: Uuid,
    pub status: OrderStatus,
    pub seats: Vec<String>,
    /// Absolute end of the hold (Unix ms); the caller computes what is left.
    pub deadline_ms: Option<u64>,
    pub payment_attempts: u32,
    pub max_payment_attempts: u32,
    pub last_error: Option<String>,
    pub total_price_cents: i64,
}

/// Activity input: hold `seats` for the order for `ttl_ms`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockSeats {
    pub order_id: Uuid,
    pub flight_id: Uuid,
    pub seats: Vec<String>,
    pub ttl_ms: u64,
    /// Of `seats`, those the order held before this lock: a refused lock
    /// releases every other seat it took, and keeps these. Absent in
    /// requests from before it existed: then only refused seats go back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Vec<String>>,
}

impl LockSeats {
    /// Seats the order held before this lock (all of them if not known).
    pub fn held_before(&self) -> &[String] {
        self.held.as_deref().unwrap_or(&self.seats)
    }

    /// The order's holds on `seats`, to release.
    pub fn releasing<'a>(&self, seats: impl Iterator<Item = &'a String>) -> HeldSeats {
        HeldSeats {
            order_id: self.order_id,
            flight_id: self.flight_id,
            seats: seats.cloned().collect(),
            ttl_ms: 0,
        }
    }
}

/// Activity output: what became of a lock request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Locked {
    /// Every seat is held for the order.
    All,
    /// Seats sold or held by another order; nothing was taken.
    Unavailable(Vec<String>),
    /// Seats that do not exist on the flight; nothing was taken.
    Unknown(Vec<String>),
}

/// Activity input: release or extend the order's holds on `seats`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeldSeats {
    pub order_id: Uuid,
    pub flight_id: Uuid,
    pub seats: Vec<String>,
    /// New TTL, for an extension.
    pub ttl_ms: u64,
}

/// Activity input: one payment attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PaymentAttempt {
    pub order_id: Uuid,
    pub attempt: u32,
    pub code: PaymentCode,
    pub timeout_ms: u64,
    /// The API request the workflow last acted on, for the worker's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Activity output: the payment provider's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Approved,
    Declined(String),
}

/// Activity input: record a finished payment attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub order_id: Uuid,
    pub attempt: u32,
    pub outcome: crate::store::orders::AttemptOutcome,
    pub error: Option<String>,
}

/// Local activity input: take a new selection in one step — lock `lock`
/// all-or-nothing, then save `order` (the order as it is if the lock
/// succeeds), then release the seats no longer wanted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HoldSeats {
    pub lock: LockSeats,
    pub order: crate::store::orders::Order,
    pub dropped: Vec<String>,
    /// The API request the workflow last acted on, for the worker's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Local activity input: payment accepted — stretch the holds over the
/// payment window and save the order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StartPayment {
    pub extend: HeldSeats,
    pub order: crate::store::orders::Order,
    /// The API request the workflow last acted on, for the worker's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Local activity input: the payment succeeded — record the attempt, sell
/// the seats in one transaction, and release the holds once sold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SellSeats {
    pub held: HeldSeats,
    pub attempt: AttemptRecord,
    /// The API request the workflow last acted on, for the worker's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Local activity input: the order ends without a sale — release `release`
/// and save the final row (`None`: the order was never saved).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndOrder {
    pub release: HeldSeats,
    pub order: Option<crate::store::orders::Order>,
    /// The API request the workflow last acted on, for the worker's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
