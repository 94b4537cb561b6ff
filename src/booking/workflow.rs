//! The booking workflow: one per order, id `booking-<orderId>`.
//!
//! It owns the order's state. Seat changes arrive as the `select_seats`
//! update (the caller learns synchronously whether the seats were taken),
//! payment as `pay`, cancellation as `cancel`; `status` is a query. The run
//! loop keeps the hold timer, collects payment and compensates: every ending
//! other than CONFIRMED releases every hold.
//!
//! Deterministic: time, timers and waiting only through `ctx`; all I/O in
//! activities.

use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use temporalio_common::data_converters::TemporalDeserializable;
use temporalio_common::error::IncomingError;
use temporalio_common::{ActivityDefinition, RetryPolicy};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, LocalActivityOptions, WaitConditionOptions,
    WorkflowCancellationToken, WorkflowContext, WorkflowContextView, WorkflowResult,
    WorkflowTermination,
};

use super::activities::BookingActivities as Acts;
use super::messages::{
    AttemptRecord, BookingInput, CREATION_WAIT_MS, EndOrder, HeldSeats, HoldSeats, LockSeats,
    Locked, ORDER_EXPIRED, ORDER_NOT_MODIFIABLE, Pay, PaymentAttempt, SEATS_UNAVAILABLE,
    SERVICE_BUSY, SERVICE_UNAVAILABLE, SelectSeats, Selection, SellSeats, Snapshot, StartPayment,
    Verdict,
};
use super::payment;
use crate::domain::{OrderStatus, PaymentCode, workflow_id};
use crate::store::orders::{AttemptOutcome, Confirm, Order};

/// Redis keeps a hold this much longer than the workflow timer: a safety net
/// should the workflow be late to release it.
const TTL_MARGIN: Duration = Duration::from_secs(60);

/// Workflows started since this patch run their short store calls (lock,
/// release, extend, save, record attempt, confirm) as local activities: no
/// server round trip each. Histories without it replay on the old path.
const LOCAL_STORE_CALLS: &str = "local-store-calls";
/// Workflows that pass this patch in `pay` re-check their holds before
/// accepting a payment: every seat is locked again (re-entrant) for the
/// whole payment window and the row saved PAYMENT_PROCESSING, or the payment
/// is refused naming the seats another order has taken.
const PAY_RECHECK: &str = "pay-recheck";
/// Workflows started since this patch give back at once what a lock whose
/// outcome is unknown may have taken, and end when their creating selection
/// never arrives ([`CREATION_WAIT_MS`]).
const SETTLE_FAILED_LOCKS: &str = "settle-failed-locks";

/// Workflows that pass this patch end a creation that never became an
/// order (refused, or cancelled before it held seats) by releasing what an
/// attempt lost with its worker may have locked and deleting the live row it
/// may have saved: without it such a row stayed SEATS_RESERVED for ever.
const FORGET_LOST_CREATION: &str = "forget-lost-creation";
/// Workflows that pass this patch refuse a selection that reaches them
/// after their creation was refused or never came: the run is ending.
const REFUSE_AFTER_REFUSAL: &str = "refuse-after-refusal";

type UpdateResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

#[workflow]
pub struct Booking {
    input: BookingInput,
    status: OrderStatus,
    seats: Vec<String>,
    /// End of the hold, Unix ms.
    deadline_ms: Option<u64>,
    /// Bumped on every successful selection; restarts the timer.
    hold_version: u64,
    /// A selection or cancellation handler is doing I/O; others wait.
    busy: bool,
    /// Seats a lock may have taken whose outcome is not settled yet (a lock
    /// in flight, or one that failed midway): compensation releases them too.
    pending: Vec<String>,
    /// A lock is in flight; compensation waits for its outcome.
    locking: bool,
    /// The creating selection was refused: end without an order.
    refused: bool,
    /// No hold of this order is left in Redis.
    released: bool,
    payment: Option<PaymentCode>,
    /// The holds were re-checked, extended and the row saved when the
    /// payment was accepted ([`PAY_RECHECK`]).
    secured: bool,
    attempts: u32,
    last_error: Option<String>,
    failure_reason: Option<String>,
    /// The API request the workflow last acted on, passed to its activities
    /// so the worker's logs name it.
    request_id: Option<String>,
}

#[workflow_methods]
impl Booking {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: BookingInput) -> Self {
        Self {
            input,
            status: OrderStatus::Created,
            seats: Vec::new(),
            deadline_ms: None,
            hold_version: 0,
            busy: false,
            pending: Vec::new(),
            locking: false,
            refused: false,
            released: true,
            payment: None,
            secured: false,
            attempts: 0,
            last_error: None,
            failure_reason: None,
            request_id: None,
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderStatus> {
        let outcome = Self::drive(ctx).await;
        if let Err(WorkflowTermination::Evicted | WorkflowTermination::ContinueAsNew(_)) = outcome {
            return outcome;
        }
        // A lock still in flight (the workflow is being cancelled) settles
        // first, so compensation knows every seat it may have taken.
        let detached = WaitConditionOptions::builder()
            .cancellation_token(WorkflowCancellationToken::new())
            .build();
        let _ = ctx
            .wait_condition_with_options(|s| !s.locking, detached)
            .await;
        let (status, released) = ctx.state(|s| (s.status, s.released));
        if status != OrderStatus::Confirmed && !released {
            // Something failed midway: the holds still go back on sale.
            let end = match (&outcome, status.is_terminal()) {
                (_, true) => status,
                (Err(WorkflowTermination::Cancelled { .. }), _) => OrderStatus::Cancelled,
                _ => OrderStatus::Failed,
            };
            let reason = outcome.as_ref().err().map(|e| e.to_string());
            Self::finish(ctx, end, reason).await?;
        }
        if status == OrderStatus::Created && ctx.patched(FORGET_LOST_CREATION) {
            // No hold of this run became the order's, but a hold_seats
            // attempt lost with a killed worker may have locked and saved.
            // No selection may slip in while the run ends.
            let held = ctx.state_mut(|s| {
                s.refused = true;
                s.held_or_pending()
            });
            Self::store(ctx, Acts::forget_order, held, Retry::Cleanup).await?;
        }
        outcome
    }

    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> Snapshot {
        Snapshot {
            order_id: self.input.order_id,
            flight_id: self.input.flight_id,
            status: self.status,
            seats: self.seats.clone(),
            deadline_ms: self.deadline_ms,
            payment_attempts: self.attempts,
            max_payment_attempts: self.input.payment_max_attempts,
            last_error: self.failure_reason.clone().or(self.last_error.clone()),
            total_price_cents: self.total_price_cents(),
        }
    }

    #[update_validator(select_seats)]
    fn validate_select(&self, _ctx: &WorkflowContextView, _req: &SelectSeats) -> UpdateResult<()> {
        self.modifiable(None)
    }

    /// Replace the selection: lock the new set all-or-nothing, release seats
    /// no longer wanted, restart the hold. A refused change changes nothing.
    #[update]
    pub async fn select_seats(
        ctx: &mut WorkflowContext<Self>,
        req: SelectSeats,
    ) -> Result<Selection, Box<dyn Error + Send + Sync>> {
        ctx.wait_condition(|s| !s.busy).await?;
        let now = now_ms(ctx.workflow_time());
        ctx.state(|s| s.modifiable(Some(now)))?;
        // Histories from before the patch let such a selection through.
        if ctx.state(|s| s.refused) && ctx.patched(REFUSE_AFTER_REFUSAL) {
            return Err(format!("{ORDER_NOT_MODIFIABLE}: the order was never created").into());
        }
        ctx.state_mut(|s| {
            s.busy = true;
            s.request_id = req.request_id.clone();
        });
        let creating = ctx.state(|s| s.status == OrderStatus::Created);
        let late = req.deadline_ms.is_some_and(|d| now > d);
        let result = if late {
            Ok(Selection::Late)
        } else {
            Self::apply_selection(ctx, req.seats.ids()).await
        };
        let held = matches!(result, Ok(Selection::Held { .. }));
        if creating && !held && ctx.patched(LOCAL_STORE_CALLS) {
            // Drop whatever this order id may hold of the requested seats
            // (the API's claim, or a lock from an attempt that crashed before
            // it was recorded), so nothing lingers until its TTL.
            Self::give_back(ctx, req.seats.ids()).await;
        }
        ctx.state_mut(|s| {
            s.busy = false;
            s.refused |= creating && !held;
        });
        result
    }

    #[update_validator(pay)]
    fn validate_pay(&self, _ctx: &WorkflowContextView, _req: &Pay) -> UpdateResult<()> {
        self.modifiable(None)?;
        if self.busy {
            return Err(
                format!("{ORDER_NOT_MODIFIABLE}: the order is being changed; try again").into(),
            );
        }
        Ok(())
    }

    /// Accept payment while the hold is live, once every seat is held for
    /// the whole payment window. From here the order cannot expire.
    #[update]
    pub async fn pay(
        ctx: &mut WorkflowContext<Self>,
        req: Pay,
    ) -> Result<OrderStatus, Box<dyn Error + Send + Sync>> {
        let now = now_ms(ctx.workflow_time());
        if req.deadline_ms.is_some_and(|d| now > d) {
            return Err(format!(
                "{SERVICE_BUSY}: the payment reached the order after the caller stopped waiting"
            )
            .into());
        }
        ctx.state(|s| s.modifiable(Some(now)))?;
        ctx.state_mut(|s| s.request_id = req.request_id.clone());
        if ctx.patched(PAY_RECHECK) {
            // Two payments accepted together: the second waits for the
            // first, then finds the order no longer modifiable.
            ctx.wait_condition(|s| !s.busy).await?;
            let now = now_ms(ctx.workflow_time());
            ctx.state(|s| s.modifiable(Some(now)))?;
            ctx.state_mut(|s| {
                s.busy = true;
                s.locking = true;
            });
            let secured = Self::secure_seats(ctx).await;
            ctx.state_mut(|s| {
                s.busy = false;
                s.locking = false;
                s.secured = secured.is_ok();
            });
            secured?;
        }
        ctx.state_mut(|s| {
            s.payment = Some(req.code);
            s.status = OrderStatus::PaymentProcessing;
        });
        Ok(OrderStatus::PaymentProcessing)
    }

    #[update_validator(cancel)]
    fn validate_cancel(&self, _ctx: &WorkflowContextView, _req: &()) -> UpdateResult<()> {
        self.modifiable(None)
    }

    /// Cancel before payment: release the holds, end CANCELLED.
    #[update]
    pub async fn cancel(
        ctx: &mut WorkflowContext<Self>,
        _req: (),
    ) -> Result<OrderStatus, Box<dyn Error + Send + Sync>> {
        ctx.wait_condition(|s| !s.busy).await?;
        let now = now_ms(ctx.workflow_time());
        ctx.state(|s| s.modifiable(Some(now)))?;
        Self::finish(ctx, OrderStatus::Cancelled, None)
            .await
            .map_err(|e| format!("{SERVICE_UNAVAILABLE}: {e}"))?;
        Ok(OrderStatus::Cancelled)
    }
}

impl Booking {
    /// The order may still change seats, pay or cancel. Validators see no
    /// clock, so they pass `None`; handlers pass workflow time.
    fn modifiable(&self, now_ms: Option<u64>) -> UpdateResult<()> {
        let expired = matches!((self.deadline_ms, now_ms), (Some(d), Some(now)) if now >= d);
        match self.status {
            OrderStatus::Expired => {
                Err(format!("{ORDER_EXPIRED}: the hold on this order has expired").into())
            }
            OrderStatus::SeatsReserved if expired => {
                Err(format!("{ORDER_EXPIRED}: the hold on this order has expired").into())
            }
            OrderStatus::Created | OrderStatus::SeatsReserved => Ok(()),
            other => Err(format!("{ORDER_NOT_MODIFIABLE}: the order is {other}").into()),
        }
    }

    fn total_price_cents(&self) -> i64 {
        self.input.seat_price_cents * self.seats.len() as i64
    }

    fn held(&self, ttl: Duration) -> HeldSeats {
        HeldSeats {
            order_id: self.input.order_id,
            flight_id: self.input.flight_id,
            seats: self.seats.clone(),
            ttl_ms: ttl.as_millis() as u64,
        }
    }

    /// A selection was taken: the hold restarts in full.
    fn apply_hold(&mut self, seats: Vec<String>, expires_at_ms: u64) {
        self.seats = seats;
        self.deadline_ms = Some(expires_at_ms);
        self.hold_version += 1;
        self.status = OrderStatus::SeatsReserved;
    }

    /// Every seat the order may hold: its selection and any unsettled lock.
    fn held_or_pending(&self) -> HeldSeats {
        let mut held = self.held(Duration::ZERO);
        add_missing(&mut held.seats, &self.pending);
        held
    }

    /// The order row as of now; `at` (the history length) orders the saves,
    /// so an older save arriving late never overwrites a newer one.
    fn record(&self, at: u32) -> Order {
        Order {
            id: self.input.order_id,
            flight_id: self.input.flight_id,
            workflow_id: workflow_id(self.input.order_id),
            status: self.status,
            seats: self.seats.clone(),
            total_price_cents: self.total_price_cents(),
            expires_at: self
                .deadline_ms
                .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64)),
            confirmed_at: None,
            failure_reason: self.failure_reason.clone(),
            payment_attempts: self.attempts as i32,
            last_payment_error: self.last_error.clone(),
            saved_at_event: i64::from(at),
            version: 0,
        }
    }

    async fn drive(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderStatus> {
        Self::await_creation(ctx).await?;
        ctx.wait_condition(|s| s.status != OrderStatus::Created || s.refused)
            .await?;
        loop {
            match ctx.state(|s| s.status) {
                OrderStatus::SeatsReserved => Self::hold(ctx).await?,
                OrderStatus::PaymentProcessing => Self::collect_payment(ctx).await?,
                _ => break,
            }
        }
        // Let a running handler (a cancellation) finish before completing.
        ctx.wait_condition(|s| !s.busy).await?;
        Ok(ctx.state(|s| s.status))
    }

    /// A workflow started without its creating selection (or whose
    /// selection was lost) ends without an order after a while instead of
    /// waiting forever. The timer is only started while nothing has arrived,
    /// so the usual start (the selection comes with it) records none.
    async fn await_creation(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let arrived = |s: &Self| s.busy || s.status != OrderStatus::Created || s.refused;
        // Checked before the patch, so the usual start records no marker.
        if ctx.state(arrived) || !ctx.patched(SETTLE_FAILED_LOCKS) {
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
            if !arrived(s) {
                s.refused = true;
            }
        });
        Ok(())
    }

    /// Wait for the hold to run out, a new selection, or a change of status.
    async fn hold(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let (version, deadline) = ctx.state(|s| (s.hold_version, s.deadline_ms.unwrap_or(0)));
        let now = now_ms(ctx.workflow_time());
        if now < deadline {
            let mut timer = ctx.timer(Duration::from_millis(deadline - now));
            let mut changed = ctx.wait_condition(move |s: &Self| {
                s.hold_version != version || s.status != OrderStatus::SeatsReserved
            });
            temporalio_sdk::workflows::select! {
                _ = timer => {}
                res = changed => return Ok(res?),
            }
        }
        ctx.wait_condition(|s| !s.busy).await?;
        let expired =
            ctx.state(|s| s.status == OrderStatus::SeatsReserved && s.hold_version == version);
        if expired {
            Self::finish(ctx, OrderStatus::Expired, None).await?;
        }
        Ok(())
    }

    async fn apply_selection(
        ctx: &mut WorkflowContext<Self>,
        wanted: Vec<String>,
    ) -> Result<Selection, Box<dyn Error + Send + Sync>> {
        let (input, old) = ctx.state(|s| (s.input.clone(), s.seats.clone()));
        let hold = Duration::from_millis(input.hold_ms);
        let lock = LockSeats {
            order_id: input.order_id,
            flight_id: input.flight_id,
            seats: wanted.clone(),
            ttl_ms: (hold + TTL_MARGIN).as_millis() as u64,
            held: Some(old.clone()),
        };
        // Seats no longer wanted, and any an earlier lock may have left.
        let earlier = ctx.state(|s| s.pending.clone());
        let mut dropped = old;
        add_missing(&mut dropped, &earlier);
        dropped.retain(|s| !wanted.contains(s));
        let local = ctx.patched(LOCAL_STORE_CALLS);
        let expires_at_ms = now_ms(ctx.workflow_time()) + input.hold_ms;
        let was_released = ctx.state_mut(|s| {
            s.locking = true;
            add_missing(&mut s.pending, &wanted);
            std::mem::replace(&mut s.released, false)
        });
        let outcome = if local {
            // Lock, save and release in one local activity: the order saved
            // is the order as it becomes if the lock succeeds.
            let at = ctx.history_length();
            let order = ctx.state(|s| Order {
                seats: wanted.clone(),
                total_price_cents: input.seat_price_cents * wanted.len() as i64,
                status: OrderStatus::SeatsReserved,
                expires_at: chrono::DateTime::from_timestamp_millis(expires_at_ms as i64),
                ..s.record(at)
            });
            let req = HoldSeats {
                lock,
                order,
                dropped: dropped.clone(),
                request_id: ctx.state(|s| s.request_id.clone()),
            };
            let opts = Retry::Lock.local();
            ctx.execute_local_activity(Acts::hold_seats, req, opts)
                .await
        } else {
            ctx.execute_activity(Acts::lock_seats, lock, Retry::Lock.remote())
                .await
        };
        // A lock that failed midway may have taken seats: they stay pending
        // for compensation (histories from before the patch did not track it).
        let settled = outcome.is_ok() || !local;
        ctx.state_mut(|s| {
            s.locking = false;
            if settled {
                match outcome {
                    // The selection's seats are held; earlier leftovers were
                    // released with the dropped seats.
                    Ok(Locked::All) => s.pending.clear(),
                    // Nothing of this lock is held; earlier leftovers stay.
                    _ => {
                        s.pending = earlier.clone();
                        s.released = was_released && earlier.is_empty();
                    }
                }
            }
        });
        // (A failed creation is undone whole by the selection's `give_back`.)
        let changing = ctx.state(|s| s.status != OrderStatus::Created);
        if outcome.is_err() && local && changing && ctx.patched(SETTLE_FAILED_LOCKS) {
            Self::settle_failed_lock(ctx).await;
        }
        let outcome = outcome
            .map_err(|e| format!("{SERVICE_UNAVAILABLE}: the seat store did not answer: {e}"))?;
        match outcome {
            Locked::All => {}
            Locked::Unavailable(seats) => return Ok(Selection::Unavailable { seats }),
            Locked::Unknown(seats) => return Ok(Selection::Unknown { seats }),
        }
        if local {
            ctx.state_mut(|s| s.apply_hold(wanted.clone(), expires_at_ms));
        } else {
            Self::apply_selection_v1(ctx, dropped, wanted.clone()).await?;
        }
        let expires_at_ms = ctx.state(|s| s.deadline_ms.unwrap_or(expires_at_ms));
        Ok(Selection::Held {
            seats: wanted,
            expires_at_ms,
        })
    }

    /// The rest of a selection as histories from before [`LOCAL_STORE_CALLS`]
    /// recorded it: release, then save, each a normal activity.
    async fn apply_selection_v1(
        ctx: &mut WorkflowContext<Self>,
        dropped: Vec<String>,
        wanted: Vec<String>,
    ) -> WorkflowResult<()> {
        if !dropped.is_empty() {
            let release = ctx.state(|s| HeldSeats {
                seats: dropped,
                ..s.held(Duration::ZERO)
            });
            let opts = Retry::Durable.remote();
            ctx.execute_activity(Acts::release_seats, release, opts)
                .await?;
        }
        let hold_ms = ctx.state(|s| s.input.hold_ms);
        let expires_at_ms = now_ms(ctx.workflow_time()) + hold_ms;
        let at = ctx.history_length();
        let record = ctx.state_mut(|s| {
            s.apply_hold(wanted, expires_at_ms);
            s.record(at)
        });
        let opts = Retry::Durable.remote();
        ctx.execute_activity(Acts::save_order, record, opts).await?;
        Ok(())
    }

    /// A lock whose outcome is unknown (its retries ran out) may hold seats
    /// the order does not want: give back every seat pending that is not
    /// in the selection.
    async fn settle_failed_lock(ctx: &mut WorkflowContext<Self>) {
        let unwanted = ctx.state(|s| {
            let pending = s.pending.iter().filter(|p| !s.seats.contains(p));
            pending.cloned().collect()
        });
        Self::give_back(ctx, unwanted).await;
    }

    /// Release seats this order may hold but does not want; then nothing is
    /// pending and the order holds only its selection. Should it fail, the
    /// seats stay pending: the next selection or the ending releases them.
    async fn give_back(ctx: &mut WorkflowContext<Self>, seats: Vec<String>) {
        let release = ctx.state(|s| HeldSeats {
            seats,
            ..s.held(Duration::ZERO)
        });
        if Self::store(ctx, Acts::release_seats, release, Retry::Lock)
            .await
            .is_ok()
        {
            ctx.state_mut(|s| {
                s.pending.clear();
                s.released = s.seats.is_empty();
            });
        }
    }

    /// Before a payment is accepted: lock every seat of the order again for
    /// the whole payment window (re-entrant: a hold lost but still free is
    /// taken back) and save the row PAYMENT_PROCESSING, in one local
    /// activity. A seat sold or held by another order refuses the payment,
    /// naming it; the order keeps what it holds and stays changeable.
    async fn secure_seats(ctx: &mut WorkflowContext<Self>) -> UpdateResult<()> {
        let input = ctx.state(|s| s.input.clone());
        let timeout = Duration::from_millis(input.payment_timeout_ms);
        let cover = payment::window(timeout, input.payment_max_attempts) + TTL_MARGIN;
        let held = ctx.state(|s| s.held(cover));
        let at = ctx.history_length();
        let order = ctx.state(|s| Order {
            status: OrderStatus::PaymentProcessing,
            ..s.record(at)
        });
        let req = HoldSeats {
            lock: LockSeats {
                order_id: held.order_id,
                flight_id: held.flight_id,
                held: Some(held.seats.clone()),
                seats: held.seats,
                ttl_ms: held.ttl_ms,
            },
            order,
            dropped: Vec::new(),
            request_id: ctx.state(|s| s.request_id.clone()),
        };
        let outcome = ctx
            .execute_local_activity(Acts::hold_seats, req, Retry::Lock.local())
            .await
            .map_err(|e| format!("{SERVICE_UNAVAILABLE}: the seat store did not answer: {e}"))?;
        match outcome {
            Locked::All => Ok(()),
            Locked::Unavailable(seats) | Locked::Unknown(seats) => Err(format!(
                "{SEATS_UNAVAILABLE}: seats {} are no longer held for this order; \
                 choose other seats, then pay",
                seats.join(", ")
            )
            .into()),
        }
    }

    async fn collect_payment(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let input = ctx.state(|s| s.input.clone());
        let timeout = Duration::from_millis(input.payment_timeout_ms);
        let max = input.payment_max_attempts;
        let cover = payment::window(timeout, max) + TTL_MARGIN;
        let extend = ctx.state(|s| s.held(cover));
        let at = ctx.history_length();
        let order = ctx.state(|s| s.record(at));
        if ctx.state(|s| s.secured) {
            // Extended and saved when the payment was accepted.
        } else if ctx.patched(LOCAL_STORE_CALLS) {
            let request_id = ctx.state(|s| s.request_id.clone());
            let req = StartPayment {
                extend,
                order,
                request_id,
            };
            let opts = Retry::Durable.local();
            ctx.execute_local_activity(Acts::start_payment, req, opts)
                .await?;
        } else {
            let opts = Retry::Durable.remote();
            ctx.execute_activity(Acts::extend_holds, extend, opts.clone())
                .await?;
            ctx.execute_activity(Acts::save_order, order, opts).await?;
        }
        for attempt in 1..=max {
            ctx.state_mut(|s| s.attempts = attempt);
            let (outcome, error) = Self::attempt_payment(ctx, attempt, timeout).await;
            ctx.state_mut(|s| s.last_error = error.clone());
            let rec = AttemptRecord {
                order_id: input.order_id,
                attempt,
                outcome,
                error: error.clone(),
            };
            if outcome == AttemptOutcome::Succeeded {
                return Self::confirm(ctx, rec).await;
            }
            Self::store(ctx, Acts::record_attempt, rec, Retry::Durable).await?;
            if attempt < max {
                ctx.timer(payment::backoff(attempt)).await;
            }
        }
        let last = ctx.state(|s| s.last_error.clone()).unwrap_or_default();
        let reason = format!("payment failed after {max} attempts: {last}");
        Self::finish(ctx, OrderStatus::Failed, Some(reason)).await
    }

    async fn attempt_payment(
        ctx: &mut WorkflowContext<Self>,
        attempt: u32,
        timeout: Duration,
    ) -> (AttemptOutcome, Option<String>) {
        let req = ctx.state(|s| PaymentAttempt {
            order_id: s.input.order_id,
            attempt,
            code: s
                .payment
                .clone()
                .expect("pay sets the code before PAYMENT_PROCESSING"),
            timeout_ms: timeout.as_millis() as u64,
            request_id: s.request_id.clone(),
        });
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

    /// Sell the seats; if any was sold meanwhile the order fails whole.
    async fn confirm(
        ctx: &mut WorkflowContext<Self>,
        attempt: AttemptRecord,
    ) -> WorkflowResult<()> {
        let held = ctx.state(|s| s.held(Duration::ZERO));
        let local = ctx.patched(LOCAL_STORE_CALLS);
        let outcome = if local {
            // Record the attempt, sell, release: one local activity.
            let req = SellSeats {
                held: held.clone(),
                attempt,
                request_id: ctx.state(|s| s.request_id.clone()),
            };
            let opts = Retry::Durable.local();
            ctx.execute_local_activity(Acts::sell_seats, req, opts)
                .await?
        } else {
            let opts = Retry::Durable.remote();
            ctx.execute_activity(Acts::record_attempt, attempt, opts.clone())
                .await?;
            ctx.execute_activity(Acts::confirm_order, held.clone(), opts)
                .await?
        };
        match outcome {
            Confirm::Confirmed => {
                ctx.state_mut(|s| {
                    s.status = OrderStatus::Confirmed;
                    s.last_error = None;
                });
                if !local {
                    let opts = Retry::Durable.remote();
                    ctx.execute_activity(Acts::release_seats, held, opts)
                        .await?;
                }
                ctx.state_mut(|s| s.released = true);
                Ok(())
            }
            Confirm::SeatsTaken(seats) => {
                let reason = format!(
                    "seats {} were sold to another order; nothing was booked",
                    seats.join(", ")
                );
                Self::finish(ctx, OrderStatus::Failed, Some(reason)).await
            }
        }
    }

    /// End the order without a sale: release every hold, save the row, and
    /// only then show the ending, so whoever sees it also sees the seats
    /// free. Runs even when the workflow is being cancelled.
    async fn finish(
        ctx: &mut WorkflowContext<Self>,
        status: OrderStatus,
        reason: Option<String>,
    ) -> WorkflowResult<()> {
        let release = ctx.state_mut(|s| {
            s.busy = true;
            s.held_or_pending()
        });
        let at = ctx.history_length();
        let record = ctx.state(|s| Order {
            status,
            failure_reason: reason.clone(),
            ..s.record(at)
        });
        if ctx.patched(LOCAL_STORE_CALLS) {
            // An order that never held seats was never saved: it stays unknown.
            let saved = ctx.state(|s| s.status != OrderStatus::Created);
            let req = EndOrder {
                release,
                order: saved.then_some(record),
                request_id: ctx.state(|s| s.request_id.clone()),
            };
            let opts = Retry::Cleanup.local();
            ctx.execute_local_activity(Acts::end_order, req, opts)
                .await?;
        } else {
            let opts = Retry::Cleanup.remote();
            if !release.seats.is_empty() {
                ctx.execute_activity(Acts::release_seats, release, opts.clone())
                    .await?;
            }
            ctx.execute_activity(Acts::save_order, record, opts).await?;
        }
        ctx.state_mut(|s| {
            s.status = status;
            s.failure_reason = reason;
            s.released = true;
            s.pending.clear();
            s.busy = false;
        });
        Ok(())
    }

    /// Run a short store call: a local activity in workflows started since
    /// [`LOCAL_STORE_CALLS`], a normal activity in older histories.
    async fn store<AD>(
        ctx: &WorkflowContext<Self>,
        activity: AD,
        input: AD::Input,
        retry: Retry,
    ) -> Result<AD::Output, ActivityExecutionError>
    where
        AD: ActivityDefinition,
        AD::Output: TemporalDeserializable,
    {
        if ctx.patched(LOCAL_STORE_CALLS) {
            ctx.execute_local_activity(activity, input, retry.local())
                .await
        } else {
            ctx.execute_activity(activity, input, retry.remote()).await
        }
    }
}

/// Append the seats of `more` that `seats` lacks, keeping its order.
fn add_missing(seats: &mut Vec<String>, more: &[String]) {
    for seat in more {
        if !seats.contains(seat) {
            seats.push(seat.clone());
        }
    }
}

fn now_ms(time: Option<SystemTime>) -> u64 {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

fn is_timeout(e: &ActivityExecutionError) -> bool {
    matches!(e.cause(), Some(IncomingError::Timeout(_)))
}

/// How a store call is retried.
#[derive(Clone, Copy)]
enum Retry {
    /// A caller waits on it: a few quick tries, then give up. Not cancelled
    /// with the workflow, so its outcome is always known to compensation.
    Lock,
    /// Must eventually happen: retried until the store is back.
    Durable,
    /// Like `Durable`, and not cancelled with the workflow: compensation runs.
    Cleanup,
}

impl Retry {
    fn timeout(self) -> Duration {
        match self {
            Retry::Lock => Duration::from_secs(5),
            Retry::Durable | Retry::Cleanup => Duration::from_secs(10),
        }
    }

    fn policy(self) -> RetryPolicy {
        match self {
            Retry::Lock => RetryPolicy::builder()
                .initial_interval(Duration::from_millis(200))
                .maximum_attempts(3)
                .build(),
            Retry::Durable | Retry::Cleanup => RetryPolicy::builder()
                .initial_interval(Duration::from_millis(500))
                .maximum_interval(Duration::from_secs(10))
                .build(),
        }
    }

    /// Detached from the workflow's cancellation, where the outcome matters.
    fn token(self) -> Option<WorkflowCancellationToken> {
        match self {
            Retry::Lock | Retry::Cleanup => Some(WorkflowCancellationToken::new()),
            Retry::Durable => None,
        }
    }

    fn local(self) -> LocalActivityOptions {
        let mut opts = LocalActivityOptions::builder()
            .start_to_close_timeout(self.timeout())
            .retry_policy(self.policy())
            .build();
        opts.cancellation_token = self.token();
        opts
    }

    /// The options of the activities recorded before [`LOCAL_STORE_CALLS`]
    /// (the quick lock was cancelled with the workflow then).
    fn remote(self) -> ActivityOptions {
        let mut opts = ActivityOptions::with_start_to_close_timeout(self.timeout())
            .retry_policy(self.policy())
            .build();
        if let Retry::Cleanup = self {
            opts.cancellation_token = self.token();
        }
        opts
    }
}
