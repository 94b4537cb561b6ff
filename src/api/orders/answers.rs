//! The one mapping from what the booking engine said to HTTP, and what
//! each answer means for an `Idempotency-Key` (`booking::keys::Outcome`).

use uuid::Uuid;

use super::super::idempotency::{Answer, KeyState, Keyed};
use super::super::{ApiError, ErrorCode};
use super::views::{unavailable_seats, unknown_seats};
use crate::booking::keys::{Next, Outcome};
use crate::booking::messages::Refusal;
use crate::booking::service::CallError;
use crate::domain::OrderStatus;
use crate::store::orders::{self, Order};

/// One try of a booking call: the HTTP answer, and what it came to.
pub struct Tried {
    pub result: Result<Answer, ApiError>,
    pub outcome: Outcome<()>,
}

impl Tried {
    pub fn done(answer: Answer) -> Self {
        Self {
            result: Ok(answer),
            outcome: Outcome::Final(()),
        }
    }

    /// Refused by the workflow: final, unless it did nothing for a reason a
    /// retry may not meet (late, the store down, passengers since named).
    pub fn refused(refusal: Refusal) -> Self {
        let outcome = match refusal {
            Refusal::Late | Refusal::StoreUnavailable | Refusal::PassengersRequired(_) => {
                Outcome::NothingHappened
            }
            _ => Outcome::Final(()),
        };
        Self {
            result: Err(refusal_error(refusal)),
            outcome,
        }
    }

    /// An error before or around the call: final if it is a 4xx; a 5xx
    /// changes nothing the key knows (a retry sends the same work).
    pub fn failed(error: ApiError) -> Self {
        let outcome = match error.status().is_client_error() {
            true => Outcome::Final(()),
            false => Outcome::Unknown,
        };
        Self {
            result: Err(error),
            outcome,
        }
    }

    /// The workflow gave no answer.
    pub fn unanswered(order_id: Uuid, e: CallError) -> Self {
        Self::failed(call_error(order_id, e))
    }

    /// What the key stores: the answer of a final outcome.
    pub fn settled(&self) -> Outcome<&Result<Answer, ApiError>> {
        match self.outcome {
            Outcome::Final(()) => Outcome::Final(&self.result),
            Outcome::NothingHappened => Outcome::NothingHappened,
            Outcome::Unknown => Outcome::Unknown,
        }
    }
}

/// A call the workflow did not answer, as HTTP.
pub fn call_error(order_id: Uuid, e: CallError) -> ApiError {
    match e {
        CallError::Unknown => outcome_unknown(order_id),
        CallError::NotRunning => ApiError::new(
            ErrorCode::OrderNotModifiable,
            "the order's booking process has ended",
        ),
        CallError::Unavailable(message) => ApiError::unavailable(message),
    }
}

/// A refusal of the workflow as HTTP. Every refusal changed nothing.
pub fn refusal_error(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::SeatsUnavailable(seats) => unavailable_seats(&seats),
        Refusal::UnknownSeats(seats) => unknown_seats(&seats),
        Refusal::Expired => expired(),
        Refusal::NotModifiable(OrderStatus::Created) => {
            ApiError::new(ErrorCode::OrderNotModifiable, "the order was never created")
        }
        Refusal::NotModifiable(status) => not_modifiable(status),
        Refusal::Late => {
            ApiError::busy("the booking engine did not answer in time; nothing was changed")
        }
        Refusal::StoreUnavailable => {
            ApiError::unavailable("the seat store did not answer; nothing was changed")
        }
        Refusal::NotHeld(seats) => {
            let first = seats.first().cloned();
            ApiError::new(
                ErrorCode::InvalidPassengers,
                format!("the order does not hold seat {}", seats.join(", ")),
            )
            .about(first, "seat")
        }
        Refusal::PassengersRequired(seats) => ApiError::new(
            ErrorCode::PassengersRequired,
            format!(
                "name a passenger for every seat before paying; missing: {}",
                seats.join(", ")
            ),
        )
        .naming(seats),
    }
}

/// The call's outcome is not known yet: the order's status will tell, and
/// a retry with the same `Idempotency-Key` answers it.
pub fn outcome_unknown(order_id: Uuid) -> ApiError {
    ApiError {
        retry_after: Some(1),
        ..ApiError::new(
            ErrorCode::OutcomeUnknown,
            format!(
                "the booking engine did not answer in time, so whether the request took \
                 effect is not known yet: see /api/orders/{order_id}/status, or retry with \
                 the same Idempotency-Key to get the outcome"
            ),
        )
    }
}

fn expired() -> ApiError {
    ApiError::new(
        ErrorCode::OrderExpired,
        "the hold on this order has expired",
    )
}

fn not_modifiable(status: OrderStatus) -> ApiError {
    ApiError::new(
        ErrorCode::OrderNotModifiable,
        format!("the order is {status}"),
    )
}

/// Why an ended order refuses a change.
pub fn closed(order: &Order) -> ApiError {
    match order.status {
        OrderStatus::Expired => expired(),
        status => not_modifiable(status),
    }
}

/// The order row of a live order, or why it cannot change.
pub async fn live_order(pool: &deadpool_postgres::Pool, id: Uuid) -> Result<Order, ApiError> {
    let order = orders::find(pool, id).await?;
    if order.status.is_terminal() {
        return Err(closed(&order));
    }
    Ok(order)
}

/// How a keyed request ended: a stored answer replayed, or a try.
pub enum Walked {
    Replayed(Answer),
    Tried(Tried),
}

/// What a keyed request does in each state of its key.
pub trait KeyedCall {
    /// Bind a new key (after any up-front refusal).
    async fn bind(&mut self, keyed: &Keyed<'_>) -> Result<KeyState, ApiError>;
    /// The order the attempt after an abandoned one is for.
    fn renewed(&self, order_id: Uuid) -> Uuid;
    /// Send attempt `attempt` for `order_id`; `resend`: an earlier request
    /// may have sent it already.
    async fn send(&mut self, order_id: Uuid, update_id: String, resend: bool) -> Tried;
}

/// Walk a key's state machine (`booking::keys`) until an answer: replay
/// it, bind the key, renew it, or send its running attempt. An attempt an
/// earlier request sent that comes back refused without effect is stale
/// (it came late, or its run ended without an order): the next attempt
/// starts at once, once.
pub async fn walk(
    keyed: &Keyed<'_>,
    what: &str,
    call: &mut impl KeyedCall,
) -> Result<Walked, ApiError> {
    let mut key = keyed.find().await?;
    let mut resend = matches!(key, KeyState::Running { .. });
    for _ in 0..3 {
        key = match key.next() {
            Next::Replay(answer) => return Ok(Walked::Replayed(answer)),
            Next::Bind => call.bind(keyed).await?,
            Next::Renew { order_id, attempt } => {
                keyed.renew(attempt, call.renewed(order_id)).await?
            }
            Next::Send { order_id, attempt } => {
                let update_id = keyed.update_id(what, attempt);
                let tried = call.send(order_id, update_id, resend).await;
                keyed.settle(attempt, tried.settled()).await;
                if !(resend && tried.outcome == Outcome::NothingHappened) {
                    return Ok(Walked::Tried(tried));
                }
                resend = false;
                KeyState::Abandoned { order_id, attempt }
            }
        };
    }
    Err(ApiError::busy("the request could not be sent; try again"))
}
