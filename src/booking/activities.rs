//! Activities: every piece of I/O the booking workflow does. Each is safe to
//! retry: locks are re-entrant, releases owner-checked, saves are upserts and
//! the confirm transaction is a no-op on a confirmed order.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use super::messages::{AttemptRecord, HeldSeats, LockSeats, Locked, PaymentAttempt, Verdict};
use super::payment::{self, Behaviour};
use crate::store::flights;
use crate::store::holds::{Holds, Lock};
use crate::store::orders::{self, Confirm, Order};

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

#[activities]
impl BookingActivities {
    /// Check the seats exist and are unsold, then hold all of them or none.
    #[activity]
    pub async fn lock_seats(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: LockSeats,
    ) -> Result<Locked, ActivityError> {
        let check = flights::check_seats(&self.pool, req.flight_id, &req.seats).await?;
        if !check.unknown.is_empty() {
            return Ok(Locked::Unknown(check.unknown));
        }
        if !check.sold.is_empty() {
            return Ok(Locked::Unavailable(check.sold));
        }
        let ttl = Duration::from_millis(req.ttl_ms);
        Ok(
            match self
                .holds
                .lock(req.flight_id, req.order_id, &req.seats, ttl)
                .await?
            {
                Lock::Locked => Locked::All,
                Lock::Taken(seats) => Locked::Unavailable(seats),
            },
        )
    }

    /// Release the order's holds on the given seats.
    #[activity]
    pub async fn release_seats(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: HeldSeats,
    ) -> Result<u32, ActivityError> {
        Ok(self
            .holds
            .release(req.flight_id, req.order_id, &req.seats)
            .await?)
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
        let attempt = rec.attempt as i32;
        Ok(orders::record_attempt(
            &self.pool,
            rec.order_id,
            attempt,
            rec.outcome,
            rec.error.as_deref(),
        )
        .await?)
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
