//! The booking workflow: one per order, id `booking-<orderId>`.
//!
//! It owns the order. Its state is one [`Phase`] (`phase.rs`, the state
//! machine and its diagram: the hold, the payment's attempts, the ending)
//! plus the record of a lock whose outcome is unknown, the passengers and
//! the save counter. Seat changes arrive as the `select_seats` update (the caller
//! learns synchronously whether the seats were taken), payment as `pay`,
//! cancellation as `cancel`; `status` is a query. Every update carries the
//! caller's deadline, and the step that commits it (the row's save) refuses
//! to commit after it, so an answer the caller never saw changed nothing.
//! A change restarts the hold, never past the order's creation plus its
//! maximum lifetime (from the input); naming passengers restarts nothing.
//! The run loop keeps the hold timer, collects payment and ends the order;
//! every ending other than CONFIRMED releases every hold.
//!
//! One path: changes ship as new worker deployment versions (Pinned), never
//! as `ctx.patched` branches. Deterministic: time, timers and waiting only
//! through `ctx`; all I/O in activities.

mod phase;
mod retry;
mod steps;

use crate::fares::{self, SeatPrice};
use crate::money::Cents;
use std::error::Error;
use std::time::Duration;

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    WaitConditionOptions, WorkflowCancellationToken, WorkflowContext, WorkflowContextView,
    WorkflowResult, WorkflowTermination,
};

pub use phase::{Attempts, Ending, Fate, Hold, HoldEnd, HoldRules, Payment, Phase};
pub use steps::TTL_MARGIN;

use super::messages::{
    Answer, BookingInput, CREATION_WAIT_MS, Cancel, Held, OrderState, Pay, Refusal, SelectSeats,
    SetPassengers, Snapshot,
};
use crate::domain::{OrderStatus, SeatId};
use crate::passengers::Passenger;
use crate::time::unix_ms;

/// Seats a lock may have taken though its outcome is unknown (its retries
/// ran out): released at once, else with the next selection or the ending.
#[derive(Clone, Debug, Default)]
struct Unsettled {
    seats: Vec<SeatId>,
}

#[workflow]
pub struct Booking {
    input: BookingInput,
    phase: Phase,
    unsettled: Unsettled,
    /// Numbers the row's saves, so a late one never overwrites a newer one.
    saves: u64,
    /// Who flies, one per held seat at most (payloads carrying them are
    /// encrypted by the payload codec).
    passengers: Vec<Passenger>,
    /// The held seats' prices and fare rules, fixed when each was taken.
    seat_prices: Vec<SeatPrice>,
    /// The API request the workflow last acted on, for the worker's logs.
    request_id: Option<String>,
}

#[workflow_methods]
impl Booking {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: BookingInput) -> Self {
        Self {
            input,
            phase: Phase::AwaitingCreation,
            unsettled: Unsettled::default(),
            saves: 0,
            passengers: Vec::new(),
            seat_prices: Vec::new(),
            request_id: None,
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderStatus> {
        let outcome = Self::drive(ctx).await;
        if let Err(e @ (WorkflowTermination::Evicted | WorkflowTermination::ContinueAsNew(_))) =
            outcome
        {
            return Err(e);
        }
        if !ctx.state(|s| s.phase.is_done()) {
            // Cancelled, or a step failed: a message committing settles
            // first, then the order ends and its holds go back on sale.
            let detached = WaitConditionOptions::builder()
                .cancellation_token(WorkflowCancellationToken::new())
                .build();
            let _ = ctx
                .wait_condition_with_options(|s| !s.phase.is_committing(), detached)
                .await;
            let status = match &outcome {
                Err(WorkflowTermination::Cancelled { .. }) => OrderStatus::Cancelled,
                _ => OrderStatus::Failed,
            };
            let reason = outcome.as_ref().err().map(|e| e.to_string());
            ctx.state_mut(|s| s.phase.end(Ending::Unsold { status, reason }));
            Self::end(ctx).await?;
        }
        let status = ctx.state(|s| s.phase.status());
        if outcome.is_ok() && status == OrderStatus::Confirmed {
            steps::mail_confirmation(ctx).await;
        }
        outcome.map(|_| status)
    }

    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> Snapshot {
        Snapshot {
            order_id: self.input.order_id,
            flight_id: self.input.flight_id,
            status: self.phase.status(),
            seats: self.phase.seats().to_vec(),
            deadline_ms: self.phase.expires_at_ms(),
            max_deadline_ms: self.phase.max_expires_at_ms(),
            payment_attempts: self.phase.attempts().made,
            max_payment_attempts: self.input.payment_max_attempts,
            last_error: self.last_error(),
            total_price_cents: self.total_price_cents(self.phase.seats()),
            seat_prices: self.prices_of(self.phase.seats()),
        }
    }

    /// Replace the selection: lock the new set all-or-nothing, release the
    /// seats no longer wanted, restart the hold (never past the order's
    /// cap). A refused change (or one that would commit after the deadline)
    /// changes nothing.
    #[update]
    pub async fn select_seats(
        ctx: &mut WorkflowContext<Self>,
        req: SelectSeats,
    ) -> Result<Answer<Held>, Box<dyn Error + Send + Sync>> {
        ctx.wait_condition(|s| !s.phase.is_committing()).await?;
        let now = ctx.workflow_time().map_or(0, unix_ms);
        if let Err(refusal) = ctx.state(|s| s.phase.may_select(now)) {
            return Ok(Err(refusal));
        }
        Ok(steps::select(ctx, req, now).await)
    }

    /// Name the passengers of held seats (the whole list: it replaces the
    /// one before). Saved with the row like a selection, but the hold goes
    /// on as it was: naming passengers never restarts it.
    #[update]
    pub async fn set_passengers(
        ctx: &mut WorkflowContext<Self>,
        req: SetPassengers,
    ) -> Result<Answer<Held>, Box<dyn Error + Send + Sync>> {
        ctx.wait_condition(|s| !s.phase.is_committing()).await?;
        let now = ctx.workflow_time().map_or(0, unix_ms);
        let checked = ctx.state(|s| not_held(s.phase.live_hold(now)?, &req.passengers));
        if let Err(refusal) = checked {
            return Ok(Err(refusal));
        }
        Ok(steps::name_passengers(ctx, req, now).await)
    }

    /// Accept payment while the hold is live and every seat has its
    /// passenger (those named before, or the list the payment brings, which
    /// replaces them when the payment is accepted), once every seat is held for the whole payment window and
    /// the row is saved PAYMENT_PROCESSING. From here the order cannot
    /// expire.
    #[update]
    pub async fn pay(
        ctx: &mut WorkflowContext<Self>,
        req: Pay,
    ) -> Result<Answer<OrderStatus>, Box<dyn Error + Send + Sync>> {
        ctx.wait_condition(|s| !s.phase.is_committing()).await?;
        let now = ctx.workflow_time().map_or(0, unix_ms);
        let checked = ctx.state(|s| {
            let hold = s.phase.live_hold(now)?;
            let named = match &req.passengers {
                Some(list) => {
                    not_held(hold, list)?;
                    list
                }
                None => &s.passengers,
            };
            let unnamed: Vec<SeatId> = (hold.seats.iter())
                .filter(|seat| !named.iter().any(|p| &p.seat == *seat))
                .cloned()
                .collect();
            if unnamed.is_empty() {
                Ok(())
            } else {
                Err(Refusal::PassengersRequired(unnamed))
            }
        });
        if let Err(refusal) = checked {
            return Ok(Err(refusal));
        }
        Ok(steps::accept_payment(ctx, req, now).await)
    }

    /// Cancel before payment: save the row CANCELLED, release the holds.
    #[update]
    pub async fn cancel(
        ctx: &mut WorkflowContext<Self>,
        req: Cancel,
    ) -> Result<Answer<OrderStatus>, Box<dyn Error + Send + Sync>> {
        ctx.wait_condition(|s| !s.phase.is_committing()).await?;
        let now = ctx.workflow_time().map_or(0, unix_ms);
        if let Err(refusal) = ctx.state(|s| s.phase.live_hold(now).map(|_| ())) {
            return Ok(Err(refusal));
        }
        Ok(steps::cancel(ctx, req, now).await)
    }
}

/// Passengers are named only for seats of the live `hold`.
fn not_held(hold: &Hold, passengers: &[Passenger]) -> Result<(), Refusal> {
    let not_held: Vec<SeatId> = (passengers.iter())
        .filter(|p| !hold.seats.contains(&p.seat))
        .map(|p| p.seat.clone())
        .collect();
    if not_held.is_empty() {
        Ok(())
    } else {
        Err(Refusal::NotHeld(not_held))
    }
}

impl Booking {
    /// Why the order failed, else why its last payment attempt did.
    fn last_error(&self) -> Option<String> {
        let attempts = self.phase.attempts();
        let error = self
            .phase
            .failure_reason()
            .or(attempts.last_error.as_deref());
        error.map(str::to_string)
    }

    /// How long a hold lasts and its cap, as the order was started with.
    fn hold_rules(&self) -> HoldRules {
        HoldRules {
            hold_ms: self.input.hold_ms,
            max_lifetime_ms: self.input.hold_max_lifetime_ms,
        }
    }

    /// What `seats` cost at the prices they were taken at.
    fn total_price_cents(&self, seats: &[SeatId]) -> Cents {
        fares::total_of(&self.prices_of(seats))
    }

    /// The prices the order took `seats` at (the held ones).
    fn prices_of(&self, seats: &[SeatId]) -> Vec<SeatPrice> {
        (self.seat_prices.iter())
            .filter(|p| seats.contains(&p.seat))
            .cloned()
            .collect()
    }

    /// The row as the order is now, with the next save number.
    fn next_save(&mut self) -> OrderState {
        self.saves += 1;
        OrderState {
            order_id: self.input.order_id,
            flight_id: self.input.flight_id,
            status: self.phase.status(),
            seats: self.phase.seats().to_vec(),
            total_price_cents: self.total_price_cents(self.phase.seats()),
            seat_prices: self.prices_of(self.phase.seats()),
            expires_at_ms: self.phase.expires_at_ms(),
            max_expires_at_ms: self.phase.max_expires_at_ms(),
            failure_reason: self.phase.failure_reason().map(str::to_string),
            payment_attempts: self.phase.attempts().made,
            last_payment_error: self.phase.attempts().last_error.clone(),
            seq: self.saves,
            passengers: self.passengers.clone(),
        }
    }

    /// The run loop: each phase waits for what moves it on.
    async fn drive(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        Self::await_creation(ctx).await?;
        loop {
            let phase = ctx.state(|s| s.phase.clone());
            match phase {
                Phase::AwaitingCreation | Phase::Committing(_) => {
                    ctx.wait_condition(|s| !s.phase.is_committing()).await?;
                }
                Phase::Holding(hold) => Self::hold(ctx, hold).await?,
                Phase::Paying(_) => steps::collect_payment(ctx).await?,
                Phase::Ending { .. } => Self::end(ctx).await?,
                Phase::Done { .. } => return Ok(()),
            }
        }
    }

    /// A workflow started without its creating selection (or whose
    /// selection was lost) ends without an order after a while instead of
    /// waiting forever. The usual start brings the selection with it, so
    /// its history records no timer.
    async fn await_creation(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let arrived = |s: &Self| s.phase != Phase::AwaitingCreation;
        if ctx.state(arrived) {
            return Ok(());
        }
        let wait = ctx.state(|s| s.input.creation_wait_ms.unwrap_or(CREATION_WAIT_MS));
        let mut timer = ctx.timer(Duration::from_millis(wait));
        let mut started = ctx.wait_condition(arrived);
        temporalio_sdk::workflows::select! {
            _ = timer => {}
            res = started => return Ok(res?),
        }
        ctx.state_mut(|s| {
            if s.phase == Phase::AwaitingCreation {
                s.phase.end(Ending::NeverCreated);
            }
        });
        Ok(())
    }

    /// Wait for the hold to run out, or for a message to move the order on.
    /// A message that settles leaving the hold as it was (a passenger
    /// update, a refused change) leaves its timer running.
    async fn hold(ctx: &mut WorkflowContext<Self>, hold: Hold) -> WorkflowResult<()> {
        let now = ctx.workflow_time().map_or(0, unix_ms);
        if now < hold.expires_at_ms {
            let mut timer = ctx.timer(Duration::from_millis(hold.expires_at_ms - now));
            let current = Phase::Holding(hold.clone());
            let mut moved =
                ctx.wait_condition(move |s: &Self| !s.phase.is_committing() && s.phase != current);
            temporalio_sdk::workflows::select! {
                _ = timer => {}
                res = moved => return Ok(res?),
            }
        }
        ctx.wait_condition(|s| !s.phase.is_committing()).await?;
        ctx.state_mut(|s| s.phase.expire(hold.version));
        Ok(())
    }

    /// End the order without a sale: save its last row, release every hold
    /// it has, then show the ending. Runs even when the workflow is being
    /// cancelled.
    async fn end(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let Phase::Ending { ending, .. } = ctx.state(|s| s.phase.clone()) else {
            return Ok(());
        };
        steps::end_order(ctx, ending).await?;
        ctx.state_mut(|s| s.phase.finish());
        Ok(())
    }
}
