//! What every flow does on its way: stop short with an outcome, read the
//! live order, take an admission slot, and read the engine's answer (a
//! lost one told by the order's row once the call's deadline has passed).

use super::admission::{Call, Ticket};
use super::{Context, Flow, Outcome, Refusal};
use crate::booking::messages::{Answer, Deadline};
use crate::booking::service::{ANSWER_GRACE, CallError};
use crate::domain::OrderId;
use crate::store::StoreError;
use crate::store::fairshare::Lease;
use crate::store::orders::{self, Order};

/// Why a flow stopped before its end: what it came to, or the store
/// failing. `?` on a store call stops with the store's error, a missing
/// order or flight being the flow's refusal.
#[derive(Debug)]
pub enum Stop {
    Refused(Refusal),
    Busy(String),
    Unavailable(String),
    Unknown { order_id: OrderId },
    Failed(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::FlightNotFound(id) => Stop::Refused(Refusal::NoSuchFlight(id)),
            StoreError::OrderNotFound(id) => Stop::Refused(Refusal::NoSuchOrder(id)),
            e => Stop::Failed(e),
        }
    }
}

impl From<Refusal> for Stop {
    fn from(refusal: Refusal) -> Self {
        Stop::Refused(refusal)
    }
}

/// What a flow that ran to its end, or stopped, came to.
pub fn finish<T>(ran: Result<T, Stop>) -> Flow<T> {
    Ok(match ran {
        Ok(done) => Outcome::Done(done),
        Err(Stop::Refused(refusal)) => Outcome::Refused(refusal),
        Err(Stop::Busy(why)) => Outcome::Busy(why),
        Err(Stop::Unavailable(why)) => Outcome::Unavailable(why),
        Err(Stop::Unknown { order_id }) => Outcome::Unknown { order_id },
        Err(Stop::Failed(e)) => return Err(e),
    })
}

/// A flow's outcome, as a step of another: done goes on, the rest stops.
pub fn resume<T>(flow: Flow<T>) -> Result<T, Stop> {
    match flow {
        Ok(Outcome::Done(done)) => Ok(done),
        Ok(Outcome::Refused(refusal)) => Err(Stop::Refused(refusal)),
        Ok(Outcome::Busy(why)) => Err(Stop::Busy(why)),
        Ok(Outcome::Unavailable(why)) => Err(Stop::Unavailable(why)),
        Ok(Outcome::Unknown { order_id }) => Err(Stop::Unknown { order_id }),
        Err(e) => Err(Stop::Failed(e)),
    }
}

/// A booking call admitted: one of its client's share of calls in flight
/// (across every `serve`) and a slot of this `serve`; both free when it
/// drops.
pub struct Admitted {
    _share: Lease,
    _slot: Ticket,
}

/// Admit a booking call: its client's share first (one client's flood is
/// refused, [`Refusal::TooManyCalls`], while others' calls get the slots),
/// then a slot of this server, or Busy.
pub async fn admit(ctx: &Context<'_>, call: Call) -> Result<Admitted, Stop> {
    let server = &ctx.settings.server;
    let share = server.in_flight_share();
    // A call lasts at most its deadline and the wait for a late answer;
    // the lease of one lost with its instance lapses then.
    let lease = server.claim_ttl();
    let entered = ctx.share.enter_call(&ctx.client, share, lease).await?;
    let share = entered.map_err(|_| Refusal::TooManyCalls { share })?;
    let slot = ctx.admission.enter(call).map_err(Stop::Busy)?;
    Ok(Admitted {
        _share: share,
        _slot: slot,
    })
}

/// The order row of a live order, or why it cannot change.
pub async fn live_order(ctx: &Context<'_>, id: OrderId) -> Result<Order, Stop> {
    let order = orders::find(ctx.pool, id).await?;
    if order.status.is_terminal() {
        return Err(Refusal::Closed(order.status).into());
    }
    Ok(order)
}

/// The engine's answer to a call for `order_id`: what it did, or `None`
/// when the order's run is not running (the flow explains that). A lost
/// answer no row has told ([`told`]) may have been done: unknown.
pub fn answer<T>(
    order_id: OrderId,
    answer: Result<Answer<T>, CallError>,
) -> Result<Option<T>, Stop> {
    match answer {
        Ok(Ok(done)) => Ok(Some(done)),
        Ok(Err(refusal)) => Err(Refusal::Engine(refusal).into()),
        Err(CallError::NotRunning) => Ok(None),
        Err(CallError::Unknown | CallError::Lost(_)) => Err(Stop::Unknown { order_id }),
        Err(CallError::Unavailable(why)) => Err(Stop::Unavailable(why)),
    }
}

/// The answer to a call on the order `before` (read before the call, with
/// `deadline`), a lost one told by the order's row once the deadline has
/// passed: the workflow commits nothing after it, so a row as it was means
/// nothing happened and nothing will (then "unavailable" is true); a row
/// that changed, or one that cannot be read, leaves the outcome unknown.
pub async fn told<T>(
    ctx: &Context<'_>,
    before: &Order,
    deadline: Deadline,
    answered: Result<Answer<T>, CallError>,
) -> Result<Answer<T>, CallError> {
    let Err(CallError::Lost(why)) = answered else {
        return answered;
    };
    past(deadline).await;
    match orders::find(ctx.pool, before.id).await {
        Ok(after) if after.version == before.version => Err(CallError::Unavailable(why)),
        _ => Err(CallError::Unknown),
    }
}

/// Wait until no save of a call with `deadline` can commit any more: the
/// deadline, checked by Postgres's clock, plus [`ANSWER_GRACE`] for that
/// clock and ours to differ. It ends no later than waiting for an answer
/// would have (the call's wait is its deadline plus the same grace).
pub async fn past(deadline: Deadline) {
    let left = deadline.remaining(crate::time::now_ms());
    tokio::time::sleep(left + ANSWER_GRACE).await;
}

/// The order's run has ended under a change: its row says how.
pub async fn ended(ctx: &Context<'_>, id: OrderId) -> Stop {
    match orders::find(ctx.pool, id).await {
        Ok(order) => Refusal::Closed(order.status).into(),
        Err(e) => e.into(),
    }
}
