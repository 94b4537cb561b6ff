//! The workflow's steps: each runs its I/O as one activity and applies the
//! result to the [`Phase`](super::Phase) as a transition. The store calls
//! are local activities (a marker in the workflow task that asked, no
//! server round trip); the payment validation is a normal activity with its
//! own timeout and retries, visible in history.

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_common::error::IncomingError;
use temporalio_sdk::{ActivityExecutionError, ActivityOptions, WorkflowContext, WorkflowResult};

use super::retry::{Due, Retry};
use super::{Booking, Ending, Hold, HoldEnd, Phase};
use crate::booking::activities::BookingActivities as Acts;
use crate::booking::mails::{self, MailOrder, Notice};
use crate::booking::messages::{
    Answer, AttemptRecord, Cancel, Deadline, EndOrder, Ended, Held, HoldSeats, LockSeats, Locked,
    OrderState, Pay, PaymentAttempt, Refusal, Release, Sale, SaveQuery, SelectSeats, SellSeats,
    SetPassengers, Verdict,
};
use crate::booking::payment;
use crate::booking::refund::AfterSale;
use crate::domain::{OrderStatus, SeatId, seat_list};
use crate::fares::{self, SeatPrice};
use crate::passengers::Passenger;
use crate::store::orders::AttemptOutcome;
use crate::time::unix_ms;

/// Redis keeps a hold this much longer than the workflow timer: a safety net
/// should the workflow be late to release it.
pub const TTL_MARGIN: Duration = Duration::from_secs(60);

/// Take a selection (the creating one or a change) before `deadline`: the
/// hold restarts in full, but never past the order's cap.
pub async fn select(
    ctx: &mut WorkflowContext<Booking>,
    req: SelectSeats,
    now: u64,
) -> Answer<Held> {
    let wanted = req.seats.seats().to_vec();
    // The passengers of kept seats stay; the others go with their seats.
    let kept = ctx.state(|s| {
        let mut kept = s.passengers.clone();
        kept.retain(|p| wanted.contains(&p.seat));
        kept
    });
    // Kept seats keep their price; new ones take the price sent with them.
    let (prices, unpriced) = ctx.state(|s| {
        let mut prices = Vec::new();
        let mut unpriced = Vec::new();
        for seat in &wanted {
            let kept = s.seat_prices.iter().find(|p| &p.seat == seat);
            match kept.or_else(|| req.prices.iter().find(|p| &p.seat == seat)) {
                Some(p) => prices.push(p.clone()),
                None => unpriced.push(seat.clone()),
            }
        }
        (prices, unpriced)
    });
    let due = Due::at(req.deadline_ms, now);
    let before = begin(ctx, due, &req.request_id)?;
    if !unpriced.is_empty() {
        ctx.state_mut(|s| s.phase.restore());
        return Err(Refusal::UnknownSeats(unpriced));
    }
    let end = ctx.state(|s| s.phase.restarted_end(due.now, s.hold_rules()));
    let seats = wanted.clone();
    hold_with(
        ctx,
        before,
        (wanted, kept, prices),
        end,
        due,
        move |phase| {
            phase.hold(seats, end);
        },
    )
    .await
}

/// Name the passengers: the held seats again, with the new list, until the
/// hold's end as it was (naming passengers restarts no hold).
pub async fn name_passengers(
    ctx: &mut WorkflowContext<Booking>,
    req: SetPassengers,
    now: u64,
) -> Answer<Held> {
    let due = Due::at(req.deadline_ms, now);
    let before = begin(ctx, due, &req.request_id)?;
    let Some(hold) = before.clone() else {
        // Only a live hold is named (checked by the update); nothing changed.
        ctx.state_mut(|s| s.phase.restore());
        return Err(Refusal::NotModifiable(OrderStatus::Created));
    };
    let end = hold.end();
    let prices = ctx.state(|s| s.prices_of(&hold.seats));
    hold_with(
        ctx,
        before,
        (hold.seats, req.passengers, prices),
        end,
        due,
        Phase::keep,
    )
    .await
}

/// Hold `wanted` with `passengers` until `end`, before `deadline`: the
/// order's row is saved with both and `settle` moves the phase on, or
/// nothing changes. Redis keeps the seats until the hold's end plus the
/// margin (a lock never shortens a hold), so never past the cap's.
async fn hold_with(
    ctx: &mut WorkflowContext<Booking>,
    before: Option<Hold>,
    (wanted, passengers, prices): (Vec<SeatId>, Vec<Passenger>, Vec<SeatPrice>),
    end: HoldEnd,
    due: Due,
    settle: impl FnOnce(&mut Phase),
) -> Answer<Held> {
    let order = ctx.state_mut(|s| OrderState {
        status: OrderStatus::SeatsReserved,
        total_price_cents: fares::total_of(&prices),
        seat_prices: prices.clone(),
        seats: wanted.clone(),
        expires_at_ms: Some(end.expires_at_ms),
        max_expires_at_ms: Some(end.max_expires_at_ms),
        passengers: passengers.clone(),
        ..s.next_save()
    });
    let ttl = Duration::from_millis(end.expires_at_ms.saturating_sub(due.now)) + TTL_MARGIN;
    take(ctx, before, order, ttl, due, |s| {
        s.passengers = passengers;
        s.seat_prices = prices;
        settle(&mut s.phase);
        Held {
            seats: wanted,
            expires_at_ms: end.expires_at_ms,
            max_expires_at_ms: Some(end.max_expires_at_ms),
        }
    })
    .await
}

/// Before a payment is accepted: lock every seat of the order again for
/// the whole payment window (re-entrant: a hold lost but still free is
/// taken back) and save the row PAYMENT_PROCESSING (with the passengers
/// the payment names, if it names them), before `deadline`; the
/// save claims every seat in Postgres, so no other order can take one
/// while the payment runs, whatever Redis loses. A seat sold, held or
/// claimed by another order refuses the payment, naming it; the order
/// keeps what it holds and stays changeable.
pub async fn accept_payment(
    ctx: &mut WorkflowContext<Booking>,
    req: Pay,
    now: u64,
) -> Answer<OrderStatus> {
    let due = Due::at(req.deadline_ms, now);
    let before = begin(ctx, due, &req.request_id)?;
    let order = ctx.state_mut(|s| {
        let save = s.next_save();
        OrderState {
            status: OrderStatus::PaymentProcessing,
            expires_at_ms: None,
            max_expires_at_ms: None,
            passengers: req
                .passengers
                .clone()
                .unwrap_or_else(|| save.passengers.clone()),
            ..save
        }
    });
    let input = ctx.state(|s| s.input.clone());
    let timeout = Duration::from_millis(input.payment_timeout_ms);
    let cover = payment::window(timeout, input.payment_max_attempts) + TTL_MARGIN;
    take(ctx, before, order, cover, due, |s| {
        if let Some(passengers) = req.passengers {
            s.passengers = passengers;
        }
        s.phase.pay(req.code);
        OrderStatus::PaymentProcessing
    })
    .await
}

/// A message starts committing, unless its deadline has passed: then it
/// changes nothing (a refused creation ends the run without an order).
/// Returns the hold the order has meanwhile.
fn begin(
    ctx: &mut WorkflowContext<Booking>,
    due: Due,
    request_id: &Option<String>,
) -> Result<Option<Hold>, Refusal> {
    let before = ctx.state_mut(|s| {
        s.request_id = request_id.clone();
        s.phase.begin()
    });
    if due.passed() {
        ctx.state_mut(|s| s.phase.restore());
        return Err(Refusal::Late);
    }
    Ok(before)
}

/// A step that takes seats before its deadline: lock `order.seats` for
/// `ttl` and save `order`. Taken: `then` moves the order on, and what it
/// no longer wants goes back. Refused: the order is as it was `before`.
async fn take<T>(
    ctx: &mut WorkflowContext<Booking>,
    before: Option<Hold>,
    order: OrderState,
    ttl: Duration,
    due: Due,
    then: impl FnOnce(&mut Booking) -> T,
) -> Answer<T> {
    let held = before.map(|h| h.seats).unwrap_or_default();
    match lock(ctx, order, ttl, held, due).await {
        Ok(()) => {
            let taken = ctx.state_mut(then);
            give_back(ctx).await;
            Ok(taken)
        }
        Err(refusal) => {
            ctx.state_mut(|s| s.phase.restore());
            Err(refusal)
        }
    }
}

/// Cancel a live order before `deadline`: the row is saved CANCELLED and
/// every hold released, or nothing changes.
pub async fn cancel(
    ctx: &mut WorkflowContext<Booking>,
    req: Cancel,
    now: u64,
) -> Answer<OrderStatus> {
    let due = Due::at(req.deadline_ms, now);
    let before = begin(ctx, due, &req.request_id)?;
    let seats = before.map(|h| h.seats).unwrap_or_default();
    let order = ctx.state_mut(|s| OrderState {
        status: OrderStatus::Cancelled,
        seats: seats.clone(),
        total_price_cents: s.total_price_cents(&seats),
        seat_prices: s.prices_of(&seats),
        expires_at_ms: None,
        max_expires_at_ms: None,
        ..s.next_save()
    });
    let seq = order.seq;
    let opts = Retry::Lock.local(Some(due));
    let req = ctx.state(|s| EndOrder {
        release: s.release(seats),
        order: Some(order),
        deadline_ms: Some(due.deadline),
        request_id: s.request_id.clone(),
    });
    match ctx.execute_local_activity(Acts::end_order, req, opts).await {
        Ok(Ended::Ended) => {
            ctx.state_mut(|s| {
                s.unsettled.seats.clear();
                s.phase.cancelled();
            });
            Ok(OrderStatus::Cancelled)
        }
        Ok(Ended::Late) => {
            ctx.state_mut(|s| s.phase.restore());
            Err(Refusal::Late)
        }
        Err(_) if committed(ctx, LostSave::of(seq, due)).await => {
            // Saved CANCELLED, the holds perhaps not released: the run
            // loop ends the order (saved again, every hold released).
            ctx.state_mut(|s| s.phase.end(Ending::cancelled(None)));
            Ok(OrderStatus::Cancelled)
        }
        Err(_) => {
            ctx.state_mut(|s| s.phase.restore());
            Err(Refusal::StoreUnavailable)
        }
    }
}

/// A step whose activity gave no outcome (its retries ran out, or its
/// deadline came): once the deadline has passed its save can no longer
/// commit, so wait for it, then read whether the save did commit. The
/// caller's answer is late by then; a keyed retry gets this one.
async fn committed(ctx: &mut WorkflowContext<Booking>, save: LostSave) -> bool {
    let now = ctx.workflow_time().map_or(0, unix_ms);
    if !save.deadline.has_passed(now) {
        ctx.timer(save.deadline.remaining(now) + SETTLE_AFTER).await;
    }
    let query = ctx.state(|s| SaveQuery {
        order_id: s.input.order_id,
        seq: save.seq,
    });
    let opts = Retry::Durable.local(None);
    ctx.execute_local_activity(Acts::was_saved, query, opts)
        .await
        .unwrap_or(false)
}

/// A save whose outcome was lost: its number, and the deadline after which
/// it can no longer commit.
#[derive(Clone, Copy, Debug)]
struct LostSave {
    seq: u64,
    deadline: Deadline,
}

impl LostSave {
    fn of(seq: u64, due: Due) -> Self {
        Self {
            seq,
            deadline: due.deadline,
        }
    }
}

/// How long after a deadline a step's outcome is read: past the database's
/// clock skew.
const SETTLE_AFTER: Duration = Duration::from_secs(1);

/// Lock `order.seats` for `ttl` and save `order`, releasing what the order
/// held or may have taken and no longer wants; `held` are the seats the
/// order holds now. A lock whose outcome stays unknown leaves its seats
/// unsettled and gives them back at once.
async fn lock(
    ctx: &mut WorkflowContext<Booking>,
    order: OrderState,
    ttl: Duration,
    held: Vec<SeatId>,
    due: Due,
) -> Result<(), Refusal> {
    let (wanted, seq) = (order.seats.clone(), order.seq);
    let mut dropped = held.clone();
    add_missing(&mut dropped, &ctx.state(|s| s.unsettled.seats.clone()));
    dropped.retain(|s| !wanted.contains(s));
    let req = ctx.state(|s| HoldSeats {
        lock: LockSeats {
            order_id: s.input.order_id,
            flight_id: s.input.flight_id,
            seats: wanted.clone(),
            ttl_ms: ttl.as_millis() as u64,
            held: held.clone(),
        },
        order,
        dropped: dropped.clone(),
        deadline_ms: Some(due.deadline),
        request_id: s.request_id.clone(),
    });
    let opts = Retry::Lock.local(Some(due));
    match ctx
        .execute_local_activity(Acts::hold_seats, req, opts)
        .await
    {
        Ok(Locked::All) => {
            ctx.state_mut(|s| s.unsettled.seats.clear());
            Ok(())
        }
        Ok(Locked::Unavailable(seats)) => Err(Refusal::SeatsUnavailable(seats)),
        Ok(Locked::Unknown(seats)) => Err(Refusal::UnknownSeats(seats)),
        Ok(Locked::Late) => Err(Refusal::Late),
        Err(_) => {
            let taken: Vec<SeatId> = wanted.into_iter().filter(|s| !held.contains(s)).collect();
            lost(ctx, taken, dropped, LostSave::of(seq, due)).await
        }
    }
}

/// A lock whose outcome was lost: it may have `taken` seats. If its save
/// committed it took effect, and the `dropped` seats go back once the
/// caller has moved the order on; if not, what it took goes back now.
async fn lost(
    ctx: &mut WorkflowContext<Booking>,
    taken: Vec<SeatId>,
    dropped: Vec<SeatId>,
    save: LostSave,
) -> Result<(), Refusal> {
    ctx.state_mut(|s| add_missing(&mut s.unsettled.seats, &taken));
    if committed(ctx, save).await {
        ctx.state_mut(|s| add_missing(&mut s.unsettled.seats, &dropped));
        return Ok(());
    }
    give_back(ctx).await;
    Err(Refusal::StoreUnavailable)
}

/// Release the unsettled seats the order does not hold; should it fail,
/// they stay unsettled and the next selection or the ending releases them.
async fn give_back(ctx: &mut WorkflowContext<Booking>) {
    let seats = ctx.state(|s| {
        let held = s.phase.seats();
        let unsettled = s.unsettled.seats.iter().filter(|p| !held.contains(p));
        unsettled.cloned().collect::<Vec<_>>()
    });
    if seats.is_empty() {
        return;
    }
    let release = ctx.state(|s| s.release(seats));
    let opts = Retry::Lock.local(None);
    if ctx
        .execute_local_activity(Acts::release_seats, release, opts)
        .await
        .is_ok()
    {
        ctx.state_mut(|s| s.unsettled.seats.clear());
    }
}

/// Mail the confirmed booking to its passengers' emails, if any gave one.
/// Retried for a day by Temporal; a mail that never goes changes nothing
/// about the booking.
pub async fn mail_confirmation(ctx: &mut WorkflowContext<Booking>) {
    let wanted = ctx.state(|s| s.passengers.iter().any(|p| p.email.is_some()));
    if !wanted {
        return;
    }
    let mail = MailOrder {
        order_id: ctx.state(|s| s.input.order_id),
        notice: Notice::Confirmation,
    };
    let opts = mails::mail_options();
    let _ = ctx
        .execute_activity(AfterSale::send_booking_mail, mail, opts)
        .await;
}

/// Validate the payment, attempt by attempt; sell the seats on success,
/// end the order FAILED after the last attempt.
pub async fn collect_payment(ctx: &mut WorkflowContext<Booking>) -> WorkflowResult<()> {
    let input = ctx.state(|s| s.input.clone());
    let timeout = Duration::from_millis(input.payment_timeout_ms);
    let max = input.payment_max_attempts;
    for attempt in 1..=max {
        ctx.state_mut(|s| s.phase.attempt(attempt));
        let (outcome, error) = attempt_payment(ctx, attempt, timeout).await;
        ctx.state_mut(|s| s.phase.attempted(error.clone()));
        let rec = AttemptRecord {
            order_id: input.order_id,
            attempt,
            outcome,
            error,
        };
        if outcome == AttemptOutcome::Succeeded {
            return sell(ctx, rec).await;
        }
        let opts = Retry::Durable.local(None);
        ctx.execute_local_activity(Acts::record_attempt, rec, opts)
            .await?;
        if attempt < max {
            ctx.timer(payment::backoff(attempt)).await;
        }
    }
    let last = ctx.state(|s| s.phase.attempts().last_error.clone());
    let last = last.unwrap_or_default();
    let reason = format!("payment failed after {max} attempts: {last}");
    fail(ctx, reason);
    Ok(())
}

async fn attempt_payment(
    ctx: &mut WorkflowContext<Booking>,
    attempt: u32,
    timeout: Duration,
) -> (AttemptOutcome, Option<String>) {
    let Some(req) = ctx.state(|s| {
        let code = match &s.phase {
            Phase::Paying(payment) => payment.code.clone(),
            _ => return None,
        };
        Some(PaymentAttempt {
            order_id: s.input.order_id,
            attempt,
            code,
            timeout_ms: timeout.as_millis() as u64,
            request_id: s.request_id.clone(),
        })
    }) else {
        return (AttemptOutcome::Error, Some("no payment to validate".into()));
    };
    let opts = ActivityOptions::with_start_to_close_timeout(timeout)
        .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
        .build();
    match ctx
        .execute_activity(Acts::validate_payment, req, opts)
        .await
    {
        Ok(Verdict::Approved) => (AttemptOutcome::Succeeded, None),
        Ok(Verdict::Declined(reason)) => (AttemptOutcome::Declined, Some(reason)),
        Err(e) if is_timeout(&e) => (
            AttemptOutcome::TimedOut,
            Some(format!(
                "payment validation timed out after {}",
                humantime::format_duration(timeout)
            )),
        ),
        Err(e) => (AttemptOutcome::Error, Some(e.to_string())),
    }
}

/// What an order that was paid and not sold tells its customer:
/// `sell_seats` has recorded the payment's refund.
const REFUNDING: &str = "and your payment is being refunded";

/// Record the attempt, sell the seats, release the holds: one local
/// activity. Seats sold meanwhile fail the order whole, and its payment is
/// refunded.
async fn sell(ctx: &mut WorkflowContext<Booking>, attempt: AttemptRecord) -> WorkflowResult<()> {
    let req = ctx.state(|s| SellSeats {
        held: s.release(s.phase.seats().to_vec()),
        attempt,
        request_id: s.request_id.clone(),
    });
    let opts = Retry::Durable.local(None);
    match ctx
        .execute_local_activity(Acts::sell_seats, req, opts)
        .await?
    {
        Sale::Sold => ctx.state_mut(|s| s.phase.sold()),
        Sale::SeatsTaken(seats) => fail(
            ctx,
            format!(
                "seats {} were sold to another order; nothing was booked {REFUNDING}",
                seat_list(&seats)
            ),
        ),
        Sale::NotLive(status) => fail(
            ctx,
            format!(
                "the order was ended ({status}) before it could be sold; nothing was booked \
                 {REFUNDING}"
            ),
        ),
    }
    Ok(())
}

fn fail(ctx: &mut WorkflowContext<Booking>, reason: String) {
    ctx.state_mut(|s| {
        s.phase.end(Ending::Unsold {
            status: OrderStatus::Failed,
            reason: Some(reason),
        })
    });
}

/// Release every hold of the order and save its last row (none for a
/// creation that never became an order). Not cancelled with the workflow:
/// compensation runs.
pub async fn end_order(ctx: &mut WorkflowContext<Booking>, ending: Ending) -> WorkflowResult<()> {
    let order = match ending {
        Ending::NeverCreated => None,
        Ending::Unsold { status, reason } => Some(ctx.state_mut(|s| OrderState {
            status,
            failure_reason: reason,
            expires_at_ms: None,
            max_expires_at_ms: None,
            ..s.next_save()
        })),
    };
    let req = ctx.state(|s| {
        let mut seats = s.phase.seats().to_vec();
        add_missing(&mut seats, &s.unsettled.seats);
        EndOrder {
            release: s.release(seats),
            order,
            deadline_ms: None,
            request_id: s.request_id.clone(),
        }
    });
    let opts = Retry::Cleanup.local(None);
    ctx.execute_local_activity(Acts::end_order, req, opts)
        .await?;
    ctx.state_mut(|s| s.unsettled.seats.clear());
    Ok(())
}

impl Booking {
    /// The order's holds on `seats`.
    fn release(&self, seats: Vec<SeatId>) -> Release {
        Release {
            order_id: self.input.order_id,
            flight_id: self.input.flight_id,
            seats,
        }
    }
}

/// Append the seats of `more` that `seats` lacks, keeping its order.
fn add_missing(seats: &mut Vec<SeatId>, more: &[SeatId]) {
    for seat in more {
        if !seats.contains(seat) {
            seats.push(seat.clone());
        }
    }
}

fn is_timeout(e: &ActivityExecutionError) -> bool {
    matches!(e.cause(), Some(IncomingError::Timeout(_)))
}
