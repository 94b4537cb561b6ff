//! A create, under a flash sale: the cheap refusals first (no workflow for
//! a loser), admission, a short claim on the seats in Redis, then
//! update-with-start of the order's workflow with a deadline. With an
//! `Idempotency-Key`, the key's state (`idempotency`) decides what a
//! request does: replay an answer, send the running attempt again (same
//! order, same update id), or start the next attempt with a fresh order.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::admission::Call;
use super::calls::{Stop, admit, answer, finish, past};
use super::idempotency::{Attempt, Kept, Key, Reply, Request, walk};
use super::{Context, Flow, Outcome, Refusal, count, share};
use crate::booking::messages::{BookingInput, Deadline, SelectSeats};
use crate::booking::service::CallError;
use crate::domain::{FlightId, OrderId, OrderStatus, SeatId, SeatSelection};
use crate::store::holds::Lock;
use crate::store::orders::{self, Order};
use crate::store::{StoreError, fares, flights};

/// Seats of one flight, as a create asks for them, parsed.
pub struct SeatRequest {
    pub flight_id: FlightId,
    pub seats: SeatSelection,
}

impl SeatRequest {
    /// What makes two creates the same request.
    pub fn fingerprint_parts(&self) -> Vec<String> {
        let mut parts = vec![self.flight_id.to_string()];
        parts.extend(self.seats.ids());
        parts
    }
}

/// The seats an order holds, and until when.
#[derive(Debug)]
pub struct Hold {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub seats: Vec<SeatId>,
    /// When the hold ends unless paid or changed.
    pub expires_at: Option<DateTime<Utc>>,
    /// The latest a change can make it end: the order's creation plus
    /// `HOLD_MAX_LIFETIME`.
    pub max_expires_at: Option<DateTime<Utc>>,
}

/// Create an order holding `new`'s seats: one try for a fresh order, or,
/// with a key, the key's walk until an answer.
pub async fn create<A: Kept>(
    ctx: &Context<'_>,
    new: &SeatRequest,
    key: Option<Key<'_, Hold, A>>,
) -> Flow<Reply<A, Hold>> {
    let Some(key) = key else {
        let tried = finish(attempt(ctx, new, OrderId::random(), None).await);
        count("create", &tried);
        return tried.map(|outcome| outcome.map(Reply::Fresh));
    };
    let parts = new.fingerprint_parts();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let request = Request {
        scope: "create".into(),
        what: "create",
        parts: &parts,
    };
    let walked = walk(ctx, request, key, &mut KeyedCreate { ctx, new }).await;
    if !matches!(walked, Ok(Outcome::Done(Reply::Replayed(_)))) {
        count("create", &walked);
    }
    walked
}

/// A keyed create: each attempt after an abandoned one is a fresh order.
struct KeyedCreate<'a> {
    ctx: &'a Context<'a>,
    new: &'a SeatRequest,
}

impl Attempt for KeyedCreate<'_> {
    type Done = Hold;

    /// The up-front refusals for a fresh order: a refusal is the key's
    /// answer; a store that is down is none.
    async fn first(&mut self) -> Result<(OrderId, Option<Refusal>), Stop> {
        let order_id = OrderId::random();
        match refuse_taken(self.ctx, self.new, order_id).await {
            Ok(()) => Ok((order_id, None)),
            Err(Stop::Refused(refusal)) => Ok((order_id, Some(refusal))),
            Err(e) => Err(e),
        }
    }

    fn renewed(&self, _order_id: OrderId) -> OrderId {
        OrderId::random()
    }

    /// A retry of the running attempt meets the seats it may hold already
    /// (its claim and locks are the order's own).
    async fn send(&mut self, order_id: OrderId, update_id: String, _resend: bool) -> Flow<Hold> {
        finish(attempt(self.ctx, self.new, order_id, Some(update_id)).await)
    }

    fn refused_first(&mut self, refusal: &Refusal) {
        count::<()>("create", &Ok(Outcome::Refused(refusal.clone())));
    }
}

/// One try: the up-front refusals, then the create itself.
async fn attempt(
    ctx: &Context<'_>,
    new: &SeatRequest,
    order_id: OrderId,
    update_id: Option<String>,
) -> Result<Hold, Stop> {
    refuse_taken(ctx, new, order_id).await?;
    try_create(ctx, new, order_id, update_id).await
}

/// Refuse, without touching Temporal, a seat held by another order (one
/// Redis read, first: the common loser of a flash sale), sold or claimed
/// by another order's payment, unknown, or on a flight that does not
/// exist. Postgres stays the authority: the workflow checks again.
pub async fn refuse_taken(
    ctx: &Context<'_>,
    new: &SeatRequest,
    order_id: OrderId,
) -> Result<(), Stop> {
    let ids = new.seats.seats();
    let held = ctx
        .holds
        .held_by_others(new.flight_id, order_id, ids)
        .await?;
    if !held.is_empty() {
        return Err(Refusal::SeatsTaken(held).into());
    }
    let check = flights::check_seats(ctx.pool, new.flight_id, order_id, ids).await?;
    if check.unknown.len() == ids.len() {
        // No seat at all: most likely no such flight (refused as such).
        flights::find(ctx.pool, new.flight_id).await?;
    }
    if !check.unknown.is_empty() {
        return Err(Refusal::UnknownSeats(check.unknown).into());
    }
    if !check.taken.is_empty() {
        return Err(Refusal::SeatsTaken(check.taken).into());
    }
    Ok(())
}

/// Admission (the client's share of calls in flight and a slot), the
/// client's place among its live orders, then the create itself. A place
/// taken for this order is given back unless the create made the order or
/// its outcome is unknown: a refused create counts for nothing.
async fn try_create(
    ctx: &Context<'_>,
    new: &SeatRequest,
    order_id: OrderId,
    update_id: Option<String>,
) -> Result<Hold, Stop> {
    (ctx.name_order)(order_id);
    let _admitted = admit(ctx, Call::Create).await?;
    let placed = share::place(ctx, order_id).await?;
    let made = create_admitted(ctx, new, order_id, update_id).await;
    if placed && !matches!(made, Ok(_) | Err(Stop::Unknown { .. })) {
        share::give_back(ctx, order_id).await;
    }
    made
}

/// The claim, then update-with-start of the order's workflow.
/// The workflow adopts the claim (stretching it to the full hold), or drops
/// it when it refuses the creation; with no answer, the flow drops it only
/// if it is still a claim, so a hold the workflow took is never released.
async fn create_admitted(
    ctx: &Context<'_>,
    new: &SeatRequest,
    order_id: OrderId,
    update_id: Option<String>,
) -> Result<Hold, Stop> {
    let flight = flights::find(ctx.pool, new.flight_id).await?;
    if !flight.sales_open {
        let flight_number = flight.flight_number;
        return Err(Refusal::SalesClosed { flight_number }.into());
    }
    claim(ctx, new, order_id).await?;
    let input = booking_input(ctx, new, order_id);
    let prices = fares::prices(ctx.pool, new.flight_id, new.seats.seats()).await?;
    let deadline = ctx.engine.deadline();
    let select = SelectSeats {
        seats: new.seats.clone(),
        prices,
        deadline_ms: deadline,
        request_id: ctx.request_id.clone(),
    };
    let outcome = ctx.engine.create(input, select, update_id).await;
    if let Err(CallError::Lost(why)) = outcome {
        return lost(ctx, new, (order_id, deadline), why).await;
    }
    if !matches!(outcome, Ok(Ok(_))) {
        // No order holds the seats for this try: a claim the workflow has
        // not adopted goes now (one it adopted is never touched).
        drop_claim(ctx, new, order_id).await;
    }
    match answer(order_id, outcome)? {
        Some(held) => Ok(Hold {
            order_id,
            status: OrderStatus::SeatsReserved,
            max_expires_at: held.max_expires_at(),
            expires_at: DateTime::from_timestamp_millis(held.expires_at_ms as i64),
            seats: held.seats,
        }),
        None => ended(ctx, order_id).await,
    }
}

fn booking_input(ctx: &Context<'_>, new: &SeatRequest, order_id: OrderId) -> BookingInput {
    let booking = &ctx.settings.booking;
    BookingInput {
        order_id,
        flight_id: new.flight_id,
        hold_ms: booking.seat_reservation_timeout.as_millis() as u64,
        hold_max_lifetime_ms: booking.hold_max_lifetime.as_millis() as u64,
        payment_timeout_ms: booking.payment_validation_timeout.as_millis() as u64,
        payment_max_attempts: booking.payment_max_attempts,
        creation_wait_ms: None,
    }
}

/// The order's run has ended (an earlier try started it). If it became an
/// order, that was the create's outcome; if not, nothing came of it.
async fn ended(ctx: &Context<'_>, order_id: OrderId) -> Result<Hold, Stop> {
    match orders::find(ctx.pool, order_id).await {
        Ok(order) => Ok(hold_of(order)),
        Err(StoreError::OrderNotFound(_)) => Err(Refusal::EndedWithoutOrder.into()),
        Err(e) => Err(e.into()),
    }
}

/// A create whose answer was lost on its way back: once its deadline has
/// passed (the workflow saves no order after it), a row for the order is
/// the create done, answered from the row as [`ended`] does, and no row is
/// nothing created, now or later (then "unavailable" is true). A row that
/// cannot be read leaves it unknown. Without an order, the claim goes as
/// after any create that made none.
async fn lost(
    ctx: &Context<'_>,
    new: &SeatRequest,
    (order_id, deadline): (OrderId, Deadline),
    why: String,
) -> Result<Hold, Stop> {
    past(deadline).await;
    let stop = match orders::find(ctx.pool, order_id).await {
        Ok(order) => return Ok(hold_of(order)),
        Err(StoreError::OrderNotFound(_)) => Stop::Unavailable(why),
        Err(_) => Stop::Unknown { order_id },
    };
    drop_claim(ctx, new, order_id).await;
    Err(stop)
}

/// The hold an order's row tells of.
fn hold_of(order: Order) -> Hold {
    Hold {
        order_id: order.id,
        status: order.status,
        seats: order.seats,
        expires_at: order.expires_at,
        max_expires_at: order.max_expires_at,
    }
}

/// How long a create's up-front claim lives (one setting, shared with the
/// reconciliation sweep, which leaves an unknown order's hold alone that
/// long).
fn claim_ttl(ctx: &Context<'_>) -> Duration {
    ctx.settings.server.claim_ttl()
}

/// Claim the seats for the order in Redis before the workflow runs, so
/// simultaneous buyers of a seat are told apart here. The workflow adopts the
/// claim (its lock is re-entrant for the same order, and a hold never gets
/// shorter); otherwise it lapses by itself shortly after the call's deadline.
async fn claim(ctx: &Context<'_>, new: &SeatRequest, order_id: OrderId) -> Result<(), Stop> {
    let ids = new.seats.seats();
    let ttl = claim_ttl(ctx);
    match ctx.holds.lock(new.flight_id, order_id, ids, ttl).await? {
        Lock::Locked => Ok(()),
        Lock::Taken(seats) => Err(Refusal::SeatsTaken(seats).into()),
    }
}

/// The claim goes now unless the workflow adopted it. Compensation, so
/// not bounded by the request's deadline (it may have passed).
async fn drop_claim(ctx: &Context<'_>, new: &SeatRequest, order_id: OrderId) {
    let (ids, ttl) = (new.seats.seats(), claim_ttl(ctx));
    let holds = ctx.holds.unhurried();
    let dropped = match holds.drop_claim(new.flight_id, order_id, ids, ttl).await {
        Ok(0) => Ok(()),
        Ok(_) => flights::announce(ctx.pool, new.flight_id).await,
        Err(e) => Err(e),
    };
    if let Err(e) = dropped {
        tracing::warn!(error = %e, "dropping an unadopted claim failed; it lapses by itself");
    }
}
