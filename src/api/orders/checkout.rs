//! What a customer does with a live order: change its seats, pay, cancel.
//! Each is one update of the order's workflow with a deadline; admission
//! keeps room for these ahead of new creates. A payment may carry an
//! `Idempotency-Key`, whose state (`booking::keys`) decides what a request
//! does, as for a create (the same order on every attempt).

use actix_web::http::StatusCode;
use uuid::Uuid;

use super::super::admission::Call;
use super::super::idempotency::{Answer, KeyState, Keyed};
use super::super::metrics::{self, Selection as Counted};
use super::super::{ApiError, AppState, request_id};
use super::answers::{
    KeyedCall, Tried, Walked, call_error, closed, live_order, refusal_error, walk,
};
use super::create::refuse_taken;
use super::views::{Ack, Held, SeatRequest, StatusView, status_of};
use crate::booking::messages::{Cancel, Pay, SelectSeats, SetPassengers};
use crate::booking::service::CallError;
use crate::domain::{OrderStatus, PaymentCode, SeatSelection};
use crate::passengers::Passenger;
use crate::store::orders;
use crate::time::to_time;

/// A selection change of a live order.
pub async fn change(state: &AppState, id: Uuid, seats: SeatSelection) -> Result<Held, ApiError> {
    let outcome = try_change(state, id, seats).await;
    metrics::selection(Counted::Change, outcome.as_ref().map(|_| ()));
    outcome
}

async fn try_change(state: &AppState, id: Uuid, seats: SeatSelection) -> Result<Held, ApiError> {
    let order = live_order(&state.pool, id).await?;
    let wanted = SeatRequest {
        flight_id: order.flight_id,
        seats,
    };
    refuse_taken(state, &wanted, id).await?;
    let _ticket = state.admission.enter(Call::Checkout)?;
    let select = SelectSeats {
        seats: wanted.seats,
        deadline_ms: state.engine.deadline(),
        request_id: request_id::current(),
    };
    match state.engine.select(id, select).await {
        Ok(Ok(held)) => Ok(Held {
            order_id: id,
            workflow_id: None,
            status: OrderStatus::SeatsReserved,
            seats: held.seats,
            expires_at: to_time(held.expires_at_ms),
        }),
        Ok(Err(refusal)) => Err(refusal_error(refusal)),
        Err(e) => Err(unanswered(state, id, e).await),
    }
}

/// Name the passengers of a live order; the answer is its status after.
pub async fn name_passengers(
    state: &AppState,
    id: Uuid,
    passengers: Vec<Passenger>,
) -> Result<StatusView, ApiError> {
    live_order(&state.pool, id).await?;
    let _ticket = state.admission.enter(Call::Checkout)?;
    let req = SetPassengers {
        passengers,
        deadline_ms: state.engine.deadline(),
        request_id: request_id::current(),
    };
    match state.engine.set_passengers(id, req).await {
        Ok(Ok(_)) => Ok(status_of(state, orders::find(&state.pool, id).await?)),
        Ok(Err(refusal)) => Err(refusal_error(refusal)),
        Err(e) => Err(unanswered(state, id, e).await),
    }
}

/// Cancel a live order.
pub async fn cancel(state: &AppState, id: Uuid) -> Result<Ack, ApiError> {
    live_order(&state.pool, id).await?;
    let _ticket = state.admission.enter(Call::Checkout)?;
    let cancel = Cancel {
        deadline_ms: state.engine.deadline(),
        request_id: request_id::current(),
    };
    match state.engine.cancel(id, cancel).await {
        Ok(Ok(status)) => Ok(Ack {
            order_id: id,
            status,
        }),
        Ok(Err(refusal)) => Err(refusal_error(refusal)),
        Err(e) => Err(unanswered(state, id, e).await),
    }
}

/// No answer from the workflow: an ended one is explained by its row.
async fn unanswered(state: &AppState, id: Uuid, e: CallError) -> ApiError {
    match e {
        CallError::NotRunning => match orders::find(&state.pool, id).await {
            Ok(order) => closed(&order),
            Err(e) => e.into(),
        },
        e => call_error(id, e),
    }
}

/// A payment without a key: one try.
pub async fn pay(state: &AppState, id: Uuid, code: PaymentCode) -> Result<Answer, ApiError> {
    try_pay(state, id, code, None).await.result
}

/// A payment with a key: walk the key's state machine until an answer.
pub async fn pay_keyed(
    state: &AppState,
    id: Uuid,
    code: PaymentCode,
    keyed: &Keyed<'_>,
) -> Result<Answer, ApiError> {
    let mut call = KeyedPay { state, id, code };
    Ok(match walk(keyed, "pay", &mut call).await? {
        Walked::Replayed(answer) => answer,
        Walked::Tried(tried) => tried.result?,
    })
}

/// A keyed payment: every attempt is for the same order.
struct KeyedPay<'a> {
    state: &'a AppState,
    id: Uuid,
    code: PaymentCode,
}

impl KeyedCall for KeyedPay<'_> {
    async fn bind(&mut self, keyed: &Keyed<'_>) -> Result<KeyState, ApiError> {
        keyed.bind(self.id, None).await
    }

    fn renewed(&self, order_id: Uuid) -> Uuid {
        order_id
    }

    async fn send(&mut self, _order_id: Uuid, update_id: String, resend: bool) -> Tried {
        let code = self.code.clone();
        try_pay(self.state, self.id, code, Some((update_id, resend))).await
    }
}

/// One try of a payment. `update_id`: the keyed attempt's update, and
/// whether an earlier request may have sent it already.
async fn try_pay(
    state: &AppState,
    id: Uuid,
    code: PaymentCode,
    update_id: Option<(String, bool)>,
) -> Tried {
    let accepted = || {
        Tried::done(Answer::new(
            StatusCode::ACCEPTED,
            Ack {
                order_id: id,
                status: OrderStatus::PaymentProcessing,
            },
        ))
    };
    let sent_before = update_id.as_ref().is_some_and(|(_, retry)| *retry);
    let order = match orders::find(&state.pool, id).await {
        Ok(order) => order,
        Err(e) => return Tried::failed(e.into()),
    };
    if order.status.is_terminal() {
        // An attempt sent before may be the payment this order went through.
        return match sent_before && order.payment_attempts > 0 {
            true => accepted(),
            false => Tried::failed(closed(&order)),
        };
    }
    let _ticket = match state.admission.enter(Call::Checkout) {
        Ok(ticket) => ticket,
        Err(e) => return Tried::failed(e),
    };
    let pay = Pay {
        code,
        deadline_ms: state.engine.deadline(),
        request_id: request_id::current(),
    };
    match state.engine.pay(id, pay, update_id.map(|(u, _)| u)).await {
        Ok(Ok(_)) => accepted(),
        Ok(Err(refusal)) => Tried::refused(refusal),
        Err(CallError::NotRunning) => match orders::find(&state.pool, id).await {
            Ok(order) if sent_before && order.payment_attempts > 0 => accepted(),
            Ok(order) => Tried::failed(closed(&order)),
            Err(e) => Tried::failed(e.into()),
        },
        Err(e) => Tried::unanswered(id, e),
    }
}
