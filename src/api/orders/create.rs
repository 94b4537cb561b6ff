//! A create, under a flash sale: the cheap refusals first (no workflow for
//! a loser), admission, a short claim on the seats in Redis, then
//! update-with-start of the order's workflow with a deadline. With an
//! `Idempotency-Key`, the key's state (`booking::keys`) decides what a
//! request does: replay an answer, send the running attempt again (same
//! order, same update id), or start the next attempt with a fresh order.

use std::time::Duration;

use actix_web::http::StatusCode;
use uuid::Uuid;

use super::super::admission::Call;
use super::super::idempotency::{Answer, KeyState, Keyed};
use super::super::metrics::{self, Selection as Counted};
use super::super::{ApiError, AppState, ErrorCode, request_id};
use super::answers::{KeyedCall, Tried, Walked, walk};
use super::views::{Held, SeatRequest, unavailable_seats, unknown_seats};
use crate::booking::keys::Outcome;
use crate::booking::messages::{BookingInput, SelectSeats};
use crate::booking::service::CallError;
use crate::domain::workflow_id;
use crate::store::holds::Lock;
use crate::store::{StoreError, flights, orders};
use crate::time::to_time;

/// How long a create's up-front claim lives (one setting, shared with the
/// reconciliation sweep, which leaves an unknown order's hold alone that
/// long).
fn claim_ttl(server: &crate::config::ServerSettings) -> Duration {
    server.claim_ttl()
}

/// A create without a key: one try, for a fresh order.
pub async fn unkeyed(state: &AppState, new: &SeatRequest) -> Result<Answer, ApiError> {
    let order_id = Uuid::new_v4();
    let tried = match refuse_taken(state, new, order_id).await {
        Ok(()) => try_create(state, new, order_id, None).await,
        Err(e) => Tried::failed(e),
    };
    count(&tried);
    tried.result
}

/// A create with a key: walk the key's state machine until an answer.
pub async fn keyed(
    state: &AppState,
    new: &SeatRequest,
    keyed: &Keyed<'_>,
) -> Result<Answer, ApiError> {
    let mut call = KeyedCreate { state, new };
    Ok(match walk(keyed, "create", &mut call).await? {
        Walked::Replayed(answer) => answer,
        Walked::Tried(tried) => {
            count(&tried);
            tried.result?
        }
    })
}

/// A keyed create: each attempt after an abandoned one is a fresh order.
struct KeyedCreate<'a> {
    state: &'a AppState,
    new: &'a SeatRequest,
}

impl KeyedCall for KeyedCreate<'_> {
    async fn bind(&mut self, keyed: &Keyed<'_>) -> Result<KeyState, ApiError> {
        bind(self.state, self.new, keyed).await
    }

    fn renewed(&self, _order_id: Uuid) -> Uuid {
        Uuid::new_v4()
    }

    /// A retry of the running attempt meets the seats it may hold already
    /// (its claim and locks are the order's own).
    async fn send(&mut self, order_id: Uuid, update_id: String, _resend: bool) -> Tried {
        if let Err(e) = refuse_taken(self.state, self.new, order_id).await {
            return Tried::failed(e);
        }
        try_create(self.state, self.new, order_id, Some(update_id)).await
    }
}

/// Run the up-front refusals for a fresh order id and bind the key to it,
/// or to the refusal, in one write; returns the state that holds (another
/// request may have bound the key first).
async fn bind(
    state: &AppState,
    new: &SeatRequest,
    keyed: &Keyed<'_>,
) -> Result<KeyState, ApiError> {
    let order_id = Uuid::new_v4();
    let refusal = match refuse_taken(state, new, order_id).await {
        Ok(()) => None,
        // A dependency that is down is no answer to bind the key to.
        Err(e) if e.status().is_server_error() => return Err(e),
        Err(e) => Some(Err(e)),
    };
    let key = keyed.bind(order_id, refusal.as_ref()).await?;
    if let (KeyState::Answered(_), Some(Err(e))) = (&key, &refusal) {
        metrics::selection(Counted::Create, Err(e));
    }
    Ok(key)
}

fn count(tried: &Tried) {
    metrics::selection(Counted::Create, tried.result.as_ref().map(|_| ()));
}

/// Refuse, without touching Temporal, a seat held by another order (one
/// Redis read, first: the common loser of a flash sale), sold, unknown, or
/// on a flight that does not exist. Postgres stays the authority: the
/// workflow checks again.
pub async fn refuse_taken(
    state: &AppState,
    new: &SeatRequest,
    order_id: Uuid,
) -> Result<(), ApiError> {
    let ids = new.seats.ids();
    let held = state
        .holds
        .held_by_others(new.flight_id, order_id, &ids)
        .await?;
    if !held.is_empty() {
        return Err(unavailable_seats(&held));
    }
    let check = flights::check_seats(&state.pool, new.flight_id, &ids).await?;
    if check.unknown.len() == ids.len() {
        // No seat at all: most likely no such flight (404 names it).
        flights::find(&state.pool, new.flight_id).await?;
    }
    if !check.unknown.is_empty() {
        return Err(unknown_seats(&check.unknown));
    }
    if !check.sold.is_empty() {
        return Err(unavailable_seats(&check.sold));
    }
    Ok(())
}

/// Admission, the claim, then update-with-start of the order's workflow.
/// The workflow adopts the claim (stretching it to the full hold), or drops
/// it when it refuses the creation; with no answer, the API drops it only
/// if it is still a claim, so a hold the workflow took is never released.
async fn try_create(
    state: &AppState,
    new: &SeatRequest,
    order_id: Uuid,
    update_id: Option<String>,
) -> Tried {
    request_id::order(order_id);
    let _ticket = match state.admission.enter(Call::Create) {
        Ok(ticket) => ticket,
        Err(e) => return Tried::failed(e),
    };
    let price = match flights::find(&state.pool, new.flight_id).await {
        Ok(flight) if !flight.sales_open => {
            return Tried::failed(ApiError::new(
                ErrorCode::SalesClosed,
                format!("sales of flight {} are closed", flight.flight_number),
            ));
        }
        Ok(flight) => flight.price_cents,
        Err(e) => return Tried::failed(e.into()),
    };
    if let Err(e) = claim(state, new, order_id).await {
        return Tried::failed(e);
    }
    let input = booking_input(state, new, order_id, price);
    let select = SelectSeats {
        seats: new.seats.clone(),
        deadline_ms: state.engine.deadline(),
        request_id: request_id::current(),
    };
    let outcome = state.engine.create(input, select, update_id).await;
    if !matches!(outcome, Ok(Ok(_))) {
        // No order holds the seats for this try: a claim the workflow has
        // not adopted goes now (one it adopted is never touched).
        drop_claim(state, new, order_id).await;
    }
    match outcome {
        Ok(Ok(held)) => Tried::done(Answer::new(
            StatusCode::CREATED,
            Held {
                order_id,
                workflow_id: Some(workflow_id(order_id)),
                status: crate::domain::OrderStatus::SeatsReserved,
                seats: held.seats,
                expires_at: to_time(held.expires_at_ms),
            },
        )),
        Ok(Err(refusal)) => Tried::refused(refusal),
        Err(CallError::NotRunning) => ended(state, order_id).await,
        Err(e) => Tried::unanswered(order_id, e),
    }
}

fn booking_input(state: &AppState, new: &SeatRequest, order_id: Uuid, price: i64) -> BookingInput {
    let booking = &state.settings.booking;
    BookingInput {
        order_id,
        flight_id: new.flight_id,
        seat_price_cents: price,
        hold_ms: booking.seat_reservation_timeout.as_millis() as u64,
        payment_timeout_ms: booking.payment_validation_timeout.as_millis() as u64,
        payment_max_attempts: booking.payment_max_attempts,
        creation_wait_ms: None,
    }
}

/// The order's run has ended (an earlier try started it). If it became an
/// order, that was the create's outcome; if not, nothing came of it.
async fn ended(state: &AppState, order_id: Uuid) -> Tried {
    match orders::find(&state.pool, order_id).await {
        Ok(order) => Tried::done(Answer::new(
            StatusCode::CREATED,
            Held {
                order_id,
                workflow_id: Some(workflow_id(order_id)),
                status: order.status,
                seats: order.seats,
                expires_at: order.expires_at,
            },
        )),
        Err(StoreError::OrderNotFound(_)) => Tried {
            result: Err(ApiError::new(
                ErrorCode::OrderNotModifiable,
                "an earlier attempt with this Idempotency-Key ended without an order",
            )),
            outcome: Outcome::NothingHappened,
        },
        Err(e) => Tried::failed(e.into()),
    }
}

/// Claim the seats for the order in Redis before the workflow runs, so
/// simultaneous buyers of a seat are told apart here. The workflow adopts the
/// claim (its lock is re-entrant for the same order, and a hold never gets
/// shorter); otherwise it lapses by itself shortly after the call's deadline.
async fn claim(state: &AppState, new: &SeatRequest, order_id: Uuid) -> Result<(), ApiError> {
    let ttl = claim_ttl(&state.settings.server);
    let ids = new.seats.ids();
    match state.holds.lock(new.flight_id, order_id, &ids, ttl).await? {
        Lock::Locked => Ok(()),
        Lock::Taken(seats) => Err(unavailable_seats(&seats)),
    }
}

/// The claim goes now unless the workflow adopted it.
async fn drop_claim(state: &AppState, new: &SeatRequest, order_id: Uuid) {
    let (ids, ttl) = (new.seats.ids(), claim_ttl(&state.settings.server));
    let dropped = match state
        .holds
        .drop_claim(new.flight_id, order_id, &ids, ttl)
        .await
    {
        Ok(0) => Ok(()),
        Ok(_) => flights::announce(&state.pool, new.flight_id).await,
        Err(e) => Err(e),
    };
    if let Err(e) = dropped {
        tracing::warn!(error = %e, "dropping an unadopted claim failed; it lapses by itself");
    }
}
