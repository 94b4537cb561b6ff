//! Why a flow refused: every refusal changed nothing.

use crate::booking::messages;
use crate::domain::{FlightId, OrderId, OrderStatus, SeatId};

/// Why a flow refused a request, with nothing changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// No flight with this id.
    NoSuchFlight(FlightId),
    /// No order with this id.
    NoSuchOrder(OrderId),
    /// Seats sold or held by another order.
    SeatsTaken(Vec<SeatId>),
    /// Seats the flight does not have.
    UnknownSeats(Vec<SeatId>),
    /// The flight's sales are closed.
    SalesClosed { flight_number: String },
    /// The flight's scheduled sale opens at `opens_at`.
    SalesNotOpen {
        opens_at: chrono::DateTime<chrono::Utc>,
    },
    /// The flight's waiting room is active: a create needs an admission.
    QueueRequired { flight: FlightId },
    /// The admission shown is not good for this create.
    AdmissionInvalid(crate::waiting::Invalid),
    /// The order has ended (or its run has): it can no longer change.
    Closed(OrderStatus),
    /// The order's workflow refused.
    Engine(messages::Refusal),
    /// An earlier attempt of a keyed create started a run that ended
    /// without an order.
    EndedWithoutOrder,
    /// The `Idempotency-Key` was used with another request.
    KeyReused,
    /// Other requests with the `Idempotency-Key` kept moving it: this one
    /// could not send its attempt.
    KeyContended,
    /// The client has `share` booking calls in flight already.
    TooManyCalls { share: usize },
    /// The client holds `max` live orders already; the first of them ends
    /// within `within` at the latest.
    TooManyLiveOrders {
        max: u32,
        within: std::time::Duration,
    },
}

impl Refusal {
    /// Whether a retry of the same attempt would meet this refusal again
    /// although the work itself may still succeed: the attempt came late,
    /// met a store outage or passengers not named yet, its client was over
    /// its share, or (a create) its run ended without an order. Such an
    /// attempt is given up, never replayed.
    pub fn is_stale(&self) -> bool {
        use messages::Refusal as R;
        matches!(
            self,
            Refusal::Engine(R::Late | R::StoreUnavailable | R::PassengersRequired(_))
                | Refusal::EndedWithoutOrder
                | Refusal::TooManyCalls { .. }
                | Refusal::TooManyLiveOrders { .. }
        )
    }

    /// Whether the refusal is that a seat is taken (sold or held).
    pub fn is_seat_taken(&self) -> bool {
        matches!(
            self,
            Refusal::SeatsTaken(_) | Refusal::Engine(messages::Refusal::SeatsUnavailable(_))
        )
    }
}

impl From<messages::Refusal> for Refusal {
    fn from(refusal: messages::Refusal) -> Self {
        Refusal::Engine(refusal)
    }
}
