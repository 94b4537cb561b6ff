//! Activities: every piece of I/O the booking workflow does. Each is safe to
//! retry: locks are re-entrant, releases owner-checked, saves are upserts and
//! the confirm transaction is a no-op on a confirmed order.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use deadpool_postgres::Pool;
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use super::messages::{
    AttemptRecord, Deadline, EndOrder, Ended, HoldSeats, LockSeats, Locked, OrderState,
    PaymentAttempt, Release, Sale, SaveQuery, SellSeats, Verdict,
};
use super::payment::{self, Behaviour};
use super::refund::Starter;
use crate::domain::{OrderId, OrderStatus, SeatId, workflow_id};
use crate::metrics;
use crate::store::holds::{Holds, Lock};
use crate::store::orders::{self, Confirm, Order};
use crate::store::{StoreError, flights, refunds};
use crate::telemetry::activity_span;
use crate::tickets::TicketPrefix;
use crate::time::to_time;

pub struct BookingActivities {
    pool: Pool,
    holds: Holds,
    failure_rate: f64,
    /// Starts the refund of an approved payment that sold nothing; none:
    /// the reconciliation sweep starts it.
    refunds: Option<Starter>,
    /// The airline prefix of the ticket numbers a sale gives.
    ticket_prefix: TicketPrefix,
}

impl BookingActivities {
    pub fn new(pool: Pool, holds: Holds, failure_rate: f64) -> Self {
        Self {
            pool,
            holds,
            failure_rate,
            refunds: None,
            ticket_prefix: TicketPrefix::default(),
        }
    }

    /// Ticket numbers start with this airline prefix (`TICKET_AIRLINE_PREFIX`).
    pub fn ticketing(mut self, prefix: TicketPrefix) -> Self {
        self.ticket_prefix = prefix;
        self
    }

    /// Also start the refund of an approved payment that sold nothing.
    pub fn refunding(mut self, refunds: Starter) -> Self {
        self.refunds = Some(refunds);
        self
    }
}

impl BookingActivities {
    /// Lock, then check: Redis first, so a seat sold (or claimed by another
    /// order's payment) in Postgres between the two steps is seen by the
    /// check and never stays held; a claim is seen even when Redis lost
    /// the paying order's hold. A refused
    /// lock gives back every seat it took (keeping those the order held
    /// before); a check that fails gives them back too before the error.
    pub async fn lock(&self, req: &LockSeats) -> Result<Locked, ActivityError> {
        let ttl = Duration::from_millis(req.ttl_ms);
        let lock = self
            .holds
            .lock(req.flight_id, req.order_id, &req.seats, ttl);
        if let Lock::Taken(seats) = lock.await? {
            return Ok(Locked::Unavailable(seats));
        }
        let held = &req.held;
        let check = flights::check_seats(&self.pool, req.flight_id, req.order_id, &req.seats);
        let check = match check.await {
            Ok(check) => check,
            Err(e) => {
                // Best effort: the lock is failing anyway, and the workflow
                // keeps these seats pending until a release succeeds.
                let taken = req.releasing(req.seats.iter().filter(|s| !held.contains(s)));
                if let Err(r) = self.release(&taken).await {
                    tracing::warn!(error = ?r, order_id = %req.order_id, "releasing an unchecked lock failed; the workflow releases it later");
                }
                return Err(e.into());
            }
        };
        if check.unknown.is_empty() && check.taken.is_empty() {
            return Ok(Locked::All);
        }
        // Seats taken or unknown are never the order's; the others it took
        // now go back, those it held before stay held.
        let refused = |s: &&SeatId| check.taken.contains(s) || check.unknown.contains(s);
        let undo = req.seats.iter().filter(|s| refused(s) || !held.contains(s));
        self.release(&req.releasing(undo)).await?;
        Ok(if check.unknown.is_empty() {
            Locked::Unavailable(check.taken)
        } else {
            Locked::Unknown(check.unknown)
        })
    }

    /// Release the order's holds on these seats; a release that freed any
    /// is announced to the seat maps. An announcement that fails is only
    /// logged: a retry would free nothing more, and seat maps re-read every
    /// few seconds anyway.
    async fn release(&self, h: &Release) -> Result<u32, ActivityError> {
        let released = self.release_quietly(h).await?;
        if released > 0
            && let Err(e) = flights::announce(&self.pool, h.flight_id).await
        {
            tracing::warn!(error = %e.report(), flight = %h.flight_id, "announcing released seats failed");
        }
        Ok(released)
    }

    /// Release the order's holds on these seats without announcing it: for
    /// seats just sold, whose sale the seat maps were told of by the
    /// transaction that made it (the seat shows booked whatever Redis
    /// holds), so an announcement would only make every seat map read the
    /// flight again for nothing.
    async fn release_quietly(&self, h: &Release) -> Result<u32, ActivityError> {
        Ok(self
            .holds
            .release(h.flight_id, h.order_id, &h.seats)
            .await?)
    }

    /// The order ends (sold or not): release every hold it has on the
    /// flight — the seats the workflow knows and any other the flight's
    /// hold index lists for it. A lock taken by an attempt the workflow never
    /// recorded (a selection change whose task was lost with a killed worker
    /// or Temporal server) is not in the workflow's state, and would
    /// otherwise outlive the order until its TTL (hold + 1 min).
    async fn release_all(&self, h: &Release) -> Result<u32, ActivityError> {
        let all = self.all_holds(h).await?;
        self.release(&all).await
    }

    /// `h` and every other seat the flight's hold index lists for the order.
    async fn all_holds(&self, h: &Release) -> Result<Release, ActivityError> {
        let mut all = h.clone();
        for (seat, order) in self.holds.list(h.flight_id).await? {
            if order == h.order_id && !all.seats.contains(&seat) {
                all.seats.push(seat);
            }
        }
        Ok(all)
    }

    /// A creation that never became an order: an attempt lost with its
    /// worker may still have locked seats and saved a live row the workflow
    /// never saw. Add the seats that row lists to `release`, then delete
    /// the row if it is still live.
    async fn forget(&self, release: &mut Release) -> Result<(), ActivityError> {
        match orders::find(&self.pool, release.order_id).await {
            Ok(row) if !row.status.is_terminal() => {
                for seat in row.seats {
                    if !release.seats.contains(&seat) {
                        release.seats.push(seat);
                    }
                }
            }
            Ok(_) | Err(StoreError::OrderNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if orders::forget_unsold(&self.pool, release.order_id).await? {
            tracing::warn!("deleted the live row of an order that never held seats");
        }
        Ok(())
    }

    /// The payment was approved and nothing was sold: record its refund
    /// (a store error fails the step, retried), then start its workflow. A
    /// start that fails is left to the reconciliation sweep, which starts
    /// every refund pending for a minute: the booking does not wait on
    /// Temporal for it.
    async fn refund_unsold(&self, order_id: OrderId) -> Result<(), StoreError> {
        if refunds::request_unsold(&self.pool, order_id).await? {
            tracing::warn!("an approved payment sold nothing: refunding it");
        }
        let Some(starter) = &self.refunds else {
            return Ok(());
        };
        if let Err(e) = starter.start(order_id, 1).await {
            tracing::warn!(error = %e, "the unsold payment's refund did not start; the sweep starts it");
        }
        Ok(())
    }

    /// Record a payment attempt; counted once, when its row is inserted.
    async fn record(&self, rec: &AttemptRecord) -> Result<(), StoreError> {
        let attempt = rec.attempt as i32;
        let recorded = orders::record_attempt(
            &self.pool,
            rec.order_id,
            attempt,
            rec.outcome,
            rec.error.as_deref(),
        );
        if recorded.await? {
            metrics::payment_attempt(rec.outcome);
        }
        Ok(())
    }
}

#[activities]
impl BookingActivities {
    /// A step that takes seats: lock, save the order unless its deadline
    /// has passed, release the seats no longer wanted (and announce it).
    /// Saving a payment claims the seats in Postgres with the row; a seat
    /// that cannot be claimed refuses the step like a seat taken.
    /// Each part is idempotent, so a retry is safe; a lock that cannot be
    /// saved gives back what it took, so a refusal holds nothing new.
    #[activity]
    pub async fn hold_seats(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: HoldSeats,
    ) -> Result<Locked, ActivityError> {
        let span = activity_span(&ctx, req.lock.order_id, req.request_id.as_deref());
        async move {
            let outcome = self.lock(&req.lock).await?;
            if outcome != Locked::All {
                tracing::info!(seats = ?req.lock.seats, outcome = ?outcome, "seats refused");
                return Ok(outcome);
            }
            let deadline = req.deadline_ms.and_then(Deadline::to_time);
            let saved = orders::save(&self.pool, &row(&req.order), deadline).await?;
            if !saved.committed {
                let held = &req.lock.held;
                let taken = req.lock.seats.iter().filter(|s| !held.contains(s));
                self.release(&req.lock.releasing(taken)).await?;
                if !saved.unavailable.is_empty() {
                    tracing::info!(seats = ?saved.unavailable, "seats refused: claimed by another order's payment");
                    return Ok(Locked::Unavailable(saved.unavailable));
                }
                tracing::info!(seats = ?req.lock.seats, "seats refused: past the caller's deadline");
                return Ok(Locked::Late);
            }
            self.release(&req.lock.releasing(req.dropped.iter())).await?;
            tracing::info!(seats = ?req.lock.seats, status = %req.order.status, "seats held");
            Ok(Locked::All)
        }
        .instrument(span)
        .await
    }

    /// Payment succeeded: record the attempt, sell the seats, release the
    /// holds once sold; a sale refused (seats taken, row ended) refunds the
    /// payment (`refund_unsold`). An order whose row is gone cannot be sold by
    /// retrying: that failure is final (the workflow then ends it FAILED).
    #[activity]
    pub async fn sell_seats(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: SellSeats,
    ) -> Result<Sale, ActivityError> {
        let span = activity_span(&ctx, req.held.order_id, req.request_id.as_deref());
        async {
            let sold = async {
                self.record(&req.attempt).await?;
                let h = &req.held;
                let prefix = &self.ticket_prefix;
                orders::confirm_ticketing(&self.pool, h.order_id, h.flight_id, &h.seats, prefix)
                    .await
            };
            let sale = match sold.await {
                Err(e @ StoreError::OrderNotFound(_)) => {
                    tracing::warn!("the order's row is gone: nothing to sell");
                    return Err(ActivityError::application(
                        ApplicationFailure::non_retryable(e),
                    ));
                }
                Ok(Confirm::Sold) => {
                    metrics::order_ended(OrderStatus::Confirmed);
                    Sale::Sold
                }
                Ok(Confirm::Confirmed) => Sale::Sold,
                Ok(Confirm::SeatsTaken(seats)) => Sale::SeatsTaken(seats),
                Ok(Confirm::NotLive(status)) => Sale::NotLive(status),
                Err(e) => return Err(e.into()),
            };
            if sale == Sale::Sold {
                // The sale's transaction announced the seats booked.
                let all = self.all_holds(&req.held).await?;
                self.release_quietly(&all).await?;
            } else {
                self.refund_unsold(req.held.order_id).await?;
            }
            tracing::info!(seats = ?req.held.seats, sale = ?sale, "sale");
            Ok(sale)
        }
        .instrument(span)
        .await
    }

    /// The order ends without a sale: save its last row unless the
    /// deadline has passed, then release every hold it has. A creation
    /// that never became an order (`order: None`) deletes instead the live
    /// row an attempt lost with its worker may have saved, and releases
    /// the seats that row lists too.
    #[activity]
    pub async fn end_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: EndOrder,
    ) -> Result<Ended, ActivityError> {
        let span = activity_span(&ctx, req.release.order_id, req.request_id.as_deref());
        async {
            let mut release = req.release.clone();
            match &req.order {
                Some(order) => {
                    let deadline = req.deadline_ms.and_then(Deadline::to_time);
                    let saved = orders::save(&self.pool, &row(order), deadline).await?;
                    if !saved.committed {
                        tracing::info!("ending refused: past the caller's deadline");
                        return Ok(Ended::Late);
                    }
                    // Counted where the change commits, once (a retry finds
                    // the row ended already), never in replaying workflow code.
                    if let Some(status) = saved.ended {
                        metrics::order_ended(status);
                    }
                }
                None => self.forget(&mut release).await?,
            }
            let released = self.release_all(&release).await?;
            match &req.order {
                Some(order) => tracing::info!(status = %order.status, released, "order ended"),
                None => tracing::info!(released, "creation undone"),
            }
            Ok(Ended::Ended)
        }
        .instrument(span)
        .await
    }

    /// Whether the order's row holds save `seq` or a later one: a step
    /// whose outcome was lost asks, once its deadline has passed.
    #[activity]
    pub async fn was_saved(
        self: Arc<Self>,
        _ctx: ActivityContext,
        query: SaveQuery,
    ) -> Result<bool, ActivityError> {
        let saved = orders::saved_at(&self.pool, query.order_id).await?;
        Ok(saved.is_some_and(|at| at >= query.seq as i64))
    }

    /// Release the order's holds on the given seats.
    #[activity]
    pub async fn release_seats(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: Release,
    ) -> Result<u32, ActivityError> {
        self.release(&req).await
    }

    /// Record a finished payment attempt.
    #[activity]
    pub async fn record_attempt(
        self: Arc<Self>,
        _ctx: ActivityContext,
        rec: AttemptRecord,
    ) -> Result<(), ActivityError> {
        Ok(self.record(&rec).await?)
    }

    /// The simulated payment provider: one validation attempt.
    #[activity]
    pub async fn validate_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: PaymentAttempt,
    ) -> Result<Verdict, ActivityError> {
        let span = activity_span(&ctx, req.order_id, req.request_id.as_deref());
        let verdict = self.validate(&req).instrument(span.clone()).await;
        span.in_scope(|| match &verdict {
            Ok(v) => tracing::info!(attempt = req.attempt, verdict = ?v, "payment attempt"),
            Err(_) => tracing::info!(attempt = req.attempt, "payment attempt failed"),
        });
        verdict
    }
}

/// The store's row of the workflow's order state.
fn row(o: &OrderState) -> Order {
    Order {
        id: o.order_id,
        flight_id: o.flight_id,
        workflow_id: workflow_id(o.order_id),
        status: o.status,
        seats: o.seats.clone(),
        total_price_cents: o.total_price_cents,
        expires_at: o.expires_at_ms.and_then(to_time),
        max_expires_at: o.max_expires_at_ms.and_then(to_time),
        confirmed_at: None,
        failure_reason: o.failure_reason.clone(),
        payment_attempts: o.payment_attempts as i32,
        last_payment_error: o.last_payment_error.clone(),
        saved_at_event: o.seq as i64,
        passengers: o.passengers.clone(),
        seat_prices: o.seat_prices.clone(),
        reference: None,
        created_at: None,
        updated_at: None,
        version: 0,
    }
}

impl BookingActivities {
    /// The simulated provider's answer to one attempt.
    async fn validate(&self, req: &PaymentAttempt) -> Result<Verdict, ActivityError> {
        let timeout = Duration::from_millis(req.timeout_ms);
        match payment::behaviour(&req.code, self.failure_rate, rand::random()) {
            Behaviour::Hang => {
                // Outlast the start-to-close timeout; Temporal fails the attempt.
                tokio::time::sleep(timeout + Duration::from_secs(1)).await;
                Ok(Verdict::Declined(
                    "the payment provider did not answer".into(),
                ))
            }
            behaviour => {
                tokio::time::sleep(payment::latency(timeout, rand::random())).await;
                Ok(match behaviour {
                    Behaviour::Approve => Verdict::Approved,
                    _ => Verdict::Declined(format!(
                        "payment declined by the provider (attempt {})",
                        req.attempt
                    )),
                })
            }
        }
    }
}
