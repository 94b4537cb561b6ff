//! The one mapping from what a flow came to (`orders::Outcome`) to HTTP,
//! and of the answers an `Idempotency-Key` keeps.

use crate::api::ErrorCode;
use actix_web::HttpResponse;
use uuid::Uuid;

use crate::api::ApiError;
use crate::api::idempotency::Answer;
use crate::booking::messages::Refusal as EngineRefusal;
use crate::domain::{OrderStatus, SeatId, seat_list, seat_texts};
use crate::orders::idempotency::Reply;
use crate::orders::{Flow, Outcome, Refusal};

/// The longest `Retry-After` (seconds) a call turned away by admission is
/// given: spread, so a crowd turned away together does not come back
/// together.
const MAX_RETRY_AFTER: u32 = 5;

/// The sentence of a 503 when a flow found a dependency down.
pub const ENGINE_DOWN: &str =
    "the booking service is unavailable; nothing was changed, try again shortly";

/// An order flow's outcome: its `Done` value, or the error that answers it.
pub fn result<T>(flow: Flow<T>) -> Result<T, ApiError> {
    outcome(flow?, |refusal| refused(&refusal))
}

/// Any flow's outcome as HTTP, `refused` saying its refusals: the one
/// place `Busy`, `Unavailable` and `Unknown` become answers.
pub fn outcome<T, R>(
    outcome: Outcome<T, R>,
    refused: impl FnOnce(R) -> ApiError,
) -> Result<T, ApiError> {
    match outcome {
        Outcome::Done(done) => Ok(done),
        Outcome::Refused(refusal) => Err(refused(refusal)),
        Outcome::Busy(why) => {
            let mut busy = ApiError::busy(why);
            busy.retry_after = Some(rand::random_range(1..=MAX_RETRY_AFTER));
            Err(busy)
        }
        // `why` may be the Temporal client's or a driver's words: logged,
        // never sent.
        Outcome::Unavailable(why) => Err(ApiError::dependency_down(ENGINE_DOWN, &why)),
        Outcome::Unknown { order_id } => Err(outcome_unknown(order_id.uuid())),
    }
}

/// A keyed flow's outcome as the response: the key's stored answer
/// replayed, or this request's own, `done` answering `Done`.
pub fn reply<T>(
    flow: Flow<Reply<Answer, T>>,
    done: impl FnOnce(&T) -> Answer,
) -> Result<HttpResponse, ApiError> {
    Ok(match result(flow)? {
        Reply::Replayed(answer) => answer.respond(),
        Reply::Fresh(fresh) => done(&fresh).respond(),
    })
}

/// The answer a key keeps for a final outcome: what `done` answers, or
/// the refusal's error.
pub fn kept<T>(outcome: Result<&T, &Refusal>, done: impl FnOnce(&T) -> Answer) -> Answer {
    match outcome {
        Ok(fresh) => done(fresh),
        Err(refusal) => {
            let error = refused(refusal);
            Answer::new(error.status(), error.body())
        }
    }
}

/// A refusal of a flow as HTTP. Every refusal changed nothing.
pub fn refused(refusal: &Refusal) -> ApiError {
    match refusal {
        Refusal::NoSuchFlight(id) => {
            ApiError::new(ErrorCode::FlightNotFound, format!("no flight with id {id}"))
        }
        Refusal::NoSuchOrder(id) => {
            ApiError::new(ErrorCode::OrderNotFound, format!("no order with id {id}"))
        }
        Refusal::SeatsTaken(seats) => unavailable_seats(seats),
        Refusal::UnknownSeats(seats) => unknown_seats(seats),
        Refusal::SalesClosed { flight_number } => ApiError::new(
            ErrorCode::SalesClosed,
            format!("sales of flight {flight_number} are closed"),
        ),
        Refusal::SalesNotOpen { opens_at } => {
            let at = opens_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            ApiError::new(
                ErrorCode::SalesNotOpen,
                format!("the sale of this flight opens at {at}; nothing was held"),
            )
            .room(Some(at), None)
        }
        Refusal::QueueRequired { flight } => ApiError::new(
            ErrorCode::QueueRequired,
            format!(
                "this flight's sale has a waiting room: join its queue (POST \
                 /api/flights/{flight}/queue) and create with the Admission it gives; nothing \
                 was held"
            ),
        )
        .room(None, Some(format!("/api/flights/{flight}/queue"))),
        Refusal::AdmissionInvalid(why) => ApiError::new(
            ErrorCode::AdmissionInvalid,
            format!("{why}; nothing was held"),
        ),
        Refusal::Closed(OrderStatus::Expired) => expired(),
        Refusal::Closed(status) => not_modifiable(*status),
        Refusal::Engine(refusal) => engine_refused(refusal),
        Refusal::EndedWithoutOrder => ApiError::new(
            ErrorCode::OrderNotModifiable,
            "an earlier attempt with this Idempotency-Key ended without an order",
        ),
        Refusal::KeyReused => ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request; use a new key",
        ),
        Refusal::KeyContended => ApiError::busy("the request could not be sent; try again"),
        Refusal::TooManyCalls { share } => ApiError {
            retry_after: Some(rand::random_range(1..=MAX_RETRY_AFTER)),
            ..ApiError::new(
                ErrorCode::TooManyRequests,
                format!(
                    "this client has {share} booking calls in progress already, its share; \
                     nothing was changed: try again shortly"
                ),
            )
        },
        Refusal::TooManyLiveOrders { max, within } => ApiError::new(
            ErrorCode::TooManyLiveOrders,
            format!(
                "this client holds {max} live orders already, as many as it may; nothing was \
                 held: pay for or cancel one, or try again once one has ended"
            ),
        )
        .retry_in(within.as_secs().max(1)),
    }
}

/// A refusal of the workflow as HTTP.
fn engine_refused(refusal: &EngineRefusal) -> ApiError {
    match refusal {
        EngineRefusal::SeatsUnavailable(seats) => unavailable_seats(seats),
        EngineRefusal::UnknownSeats(seats) => unknown_seats(seats),
        EngineRefusal::Expired => expired(),
        EngineRefusal::NotModifiable(OrderStatus::Created) => {
            ApiError::new(ErrorCode::OrderNotModifiable, "the order was never created")
        }
        EngineRefusal::NotModifiable(status) => not_modifiable(*status),
        EngineRefusal::Late => {
            ApiError::busy("the booking engine did not answer in time; nothing was changed")
        }
        EngineRefusal::StoreUnavailable => {
            ApiError::unavailable("the seat store did not answer; nothing was changed")
        }
        EngineRefusal::NotHeld(seats) => {
            let first = seats.first().map(SeatId::to_string);
            ApiError::new(
                ErrorCode::InvalidPassengers,
                format!("the order does not hold seat {}", seat_list(seats)),
            )
            .about(first, "seat")
        }
        EngineRefusal::PassengersRequired(seats) => ApiError::new(
            ErrorCode::PassengersRequired,
            format!(
                "name a passenger for every seat before paying; missing: {}",
                seat_list(seats)
            ),
        )
        .naming(seat_texts(seats)),
    }
}

/// The call's outcome is not known yet: the order's status will tell, and
/// a retry with the same `Idempotency-Key` answers it.
fn outcome_unknown(order_id: Uuid) -> ApiError {
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

fn unknown_seats(seats: &[SeatId]) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidSeats,
        format!("no such seat on this flight: {}", seat_list(seats)),
    )
}

fn unavailable_seats(seats: &[SeatId]) -> ApiError {
    ApiError::new(
        ErrorCode::SeatsUnavailable,
        format!(
            "already booked or held by another order: {}",
            seat_list(seats)
        ),
    )
}
