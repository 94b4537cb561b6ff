//! Activities: every piece of I/O the booking workflow does. Each is safe to
//! retry: locks are re-entrant, releases owner-checked, saves are upserts and
//! the confirm transaction is a no-op on a confirmed order.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;
use uuid::Uuid;

use deadpool_postgres::Pool;
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use super::messages::{
    AttemptRecord, EndOrder, HeldSeats, HoldSeats, LockSeats, Locked, PaymentAttempt, SellSeats,
    StartPayment, Verdict,
};
use super::payment::{self, Behaviour};
use crate::domain::workflow_id;
use crate::store::holds::{Holds, Lock};
use crate::store::orders::{self, Confirm, Order};
use crate::store::{StoreError, flights};

/// The span of one activity: the order, its workflow and the API request
/// that led to it name every line it logs, as they do in `serve`'s logs.
fn span(activity: &'static str, order_id: Uuid, request_id: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        "activity",
        activity,
        order_id = %order_id,
        workflow_id = %workflow_id(order_id),
        request_id = tracing::field::Empty,
    );
    if let Some(id) = request_id {
        span.record("request_id", id);
    }
    span
}

pub struct BookingActivities {
    pool: Pool,
    holds: Holds,
    failure_rate: f64,
}

impl BookingActivities {
    pub fn new(pool: Pool, holds: Holds, failure_rate: f64) -> Self {
        Self {
            pool,
            holds,
            failure_rate,
        }
    }
}

impl BookingActivities {
    /// Lock, then check: Redis first, so a seat sold in Postgres between
    /// the two steps is seen by the check and never stays held. A refused
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
        let held = req.held_before();
        let check = match flights::check_seats(&self.pool, req.flight_id, &req.seats).await {
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
        if check.unknown.is_empty() && check.sold.is_empty() {
            return Ok(Locked::All);
        }
        // Seats sold or unknown are never the order's; the others it took
        // now go back, those it held before stay held.
        let refused = |s: &&String| check.sold.contains(s) || check.unknown.contains(s);
        let undo = req.seats.iter().filter(|s| refused(s) || !held.contains(s));
        self.release(&req.releasing(undo)).await?;
        Ok(if check.unknown.is_empty() {
            Locked::Unavailable(check.sold)
        } else {
            Locked::Unknown(check.unknown)
        })
    }

    /// Release the order's holds on these seats; a release that freed any
    /// is announced to the seat maps. An announcement that fails is only
    /// logged: a retry would free nothing more, and seat maps re-read every
    /// few seconds anyway.
    async fn release(&self, h: &HeldSeats) -> Result<u32, ActivityError> {
        let released = self
            .holds
            .release(h.flight_id, h.order_id, &h.seats)
            .await?;
        if released > 0
            && let Err(e) = flights::announce(&self.pool, h.flight_id).await
        {
            tracing::warn!(error = %e, flight = %h.flight_id, "announcing released seats failed");
        }
        Ok(released)
    }

    /// The order ends (sold or not): release every hold it has on the
    /// flight — the seats the workflow knows and any other the flight's
    /// hold index lists for it. A lock taken by an attempt the workflow never
    /// recorded (a selection change whose task was lost with a killed worker
    /// or Temporal server) is not in the workflow's state, and would
    /// otherwise outlive the order until its TTL (hold + 1 min).
    async fn release_all(&self, h: &HeldSeats) -> Result<u32, ActivityError> {
        let mut all = h.clone();
        for (seat, order) in self.holds.list(h.flight_id).await? {
            if order == h.order_id && !all.seats.contains(&seat) {
                all.seats.push(seat);
            }
        }
        self.release(&all).await
    }

    async fn record(&self, rec: &AttemptRecord) -> Result<(), StoreError> {
        let attempt = rec.attempt as i32;
        orders::record_attempt(
            &self.pool,
            rec.order_id,
            attempt,
            rec.outcome,
            rec.error.as_deref(),
        )
        .await
    }
}

#[activities]
impl BookingActivities {
    /// Check the seats exist and are unsold, then hold all of them or none.
    #[activity]
    pub async fn lock_seats(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: LockSeats,
    ) -> Result<Locked, ActivityError> {
        self.lock(&req).await
    }

    /// A new selection in one step: lock, save the order, release the seats
    /// no longer wanted (and announce it). Each step is idempotent, so a
    /// retry is safe; a save that fails leaves the old selection held.
    #[activity]
    pub async fn hold_seats(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: HoldSeats,
    ) -> Result<Locked, ActivityError> {
        let span = span("hold_seats", req.lock.order_id, req.request_id.as_deref());
        async move {
            let outcome = self.lock(&req.lock).await?;
            if outcome == Locked::All {
                orders::save(&self.pool, &req.order).await?;
                let dropped = HeldSeats {
                    order_id: req.lock.order_id,
                    flight_id: req.lock.flight_id,
                    seats: req.dropped,
                    ttl_ms: 0,
                };
                self.release(&dropped).await?;
                tracing::info!(seats = ?req.lock.seats, status = %req.order.status, "seats held");
            } else {
                tracing::info!(seats = ?req.lock.seats, outcome = ?outcome, "seats refused");
            }
            Ok(outcome)
        }
        .instrument(span)
        .await
    }

    /// Payment accepted: extend the holds, save the order; returns the
    /// seats no longer held.
    #[activity]
    pub async fn start_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: StartPayment,
    ) -> Result<Vec<String>, ActivityError> {
        let e = &req.extend;
        let span = span("start_payment", e.order_id, req.request_id.as_deref());
        async {
            let ttl = Duration::from_millis(e.ttl_ms);
            let lost = self
                .holds
                .extend(e.flight_id, e.order_id, &e.seats, ttl)
                .await?;
            orders::save(&self.pool, &req.order).await?;
            tracing::info!(lost = ?lost, "payment window secured");
            Ok(lost)
        }
        .instrument(span)
        .await
    }

    /// Payment succeeded: record the attempt, sell the seats, release the
    /// holds once sold. An order whose row is gone cannot be sold by
    /// retrying: that failure is final (the workflow then ends it FAILED).
    #[activity]
    pub async fn sell_seats(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: SellSeats,
    ) -> Result<Confirm, ActivityError> {
        let span = span("sell_seats", req.held.order_id, req.request_id.as_deref());
        async {
            let sold = async {
                self.record(&req.attempt).await?;
                let h = &req.held;
                orders::confirm(&self.pool, h.order_id, h.flight_id, &h.seats).await
            };
            let outcome = match sold.await {
                Err(e @ StoreError::OrderNotFound(_)) => {
                    tracing::warn!("the order's row is gone: nothing to sell");
                    return Err(ActivityError::application(
                        ApplicationFailure::non_retryable(e),
                    ));
                }
                outcome => outcome?,
            };
            if outcome == Confirm::Confirmed {
                self.release_all(&req.held).await?;
            }
            tracing::info!(seats = ?req.held.seats, outcome = ?outcome, "sale");
            Ok(outcome)
        }
        .instrument(span)
        .await
    }

    /// The order ends without a sale: release its holds, save its last row.
    #[activity]
    pub async fn end_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: EndOrder,
    ) -> Result<(), ActivityError> {
        let span = span("end_order", req.release.order_id, req.request_id.as_deref());
        async {
            let released = self.release_all(&req.release).await?;
            if let Some(order) = &req.order {
                orders::save(&self.pool, order).await?;
                tracing::info!(status = %order.status, released, "order ended");
            } else {
                tracing::info!(released, "creation undone");
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// A creation that never became an order (refused, or its workflow
    /// cancelled before it held seats): an attempt lost with its worker may
    /// still have locked seats and saved a live row the workflow never saw.
    /// Release the order's holds on the seats that row lists and on
    /// `req.seats`, then delete the row if it is still live.
    #[activity]
    pub async fn forget_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: HeldSeats,
    ) -> Result<(), ActivityError> {
        let mut held = req;
        match orders::find(&self.pool, held.order_id).await {
            Ok(row) if !row.status.is_terminal() => {
                for seat in row.seats {
                    if !held.seats.contains(&seat) {
                        held.seats.push(seat);
                    }
                }
            }
            Ok(_) | Err(StoreError::OrderNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.release_all(&held).await?;
        if orders::forget_unsold(&self.pool, held.order_id).await? {
            tracing::warn!(order = %held.order_id, "deleted the live row of an order that never held seats");
        }
        Ok(())
    }

    /// Release the order's holds on the given seats.
    #[activity]
    pub async fn release_seats(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: HeldSeats,
    ) -> Result<u32, ActivityError> {
        self.release(&req).await
    }

    /// Reset the TTL of the order's holds; returns seats it no longer holds.
    #[activity]
    pub async fn extend_holds(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: HeldSeats,
    ) -> Result<Vec<String>, ActivityError> {
        let ttl = Duration::from_millis(req.ttl_ms);
        Ok(self
            .holds
            .extend(req.flight_id, req.order_id, &req.seats, ttl)
            .await?)
    }

    /// Upsert the order row.
    #[activity]
    pub async fn save_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order: Order,
    ) -> Result<(), ActivityError> {
        Ok(orders::save(&self.pool, &order).await?)
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

    /// Sell the seats in one transaction.
    #[activity]
    pub async fn confirm_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: HeldSeats,
    ) -> Result<Confirm, ActivityError> {
        Ok(orders::confirm(&self.pool, req.order_id, req.flight_id, &req.seats).await?)
    }

    /// The simulated payment provider: one validation attempt.
    #[activity]
    pub async fn validate_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: PaymentAttempt,
    ) -> Result<Verdict, ActivityError> {
        let span = span("validate_payment", req.order_id, req.request_id.as_deref());
        let verdict = self.validate(&req).instrument(span.clone()).await;
        span.in_scope(|| match &verdict {
            Ok(v) => tracing::info!(attempt = req.attempt, verdict = ?v, "payment attempt"),
            Err(_) => tracing::info!(attempt = req.attempt, "payment attempt failed"),
        });
        verdict
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
