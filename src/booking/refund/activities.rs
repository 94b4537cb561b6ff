//! The after-sale activities: the refund's provider and store steps, and
//! the booking mails (built and sent by `booking::mails`). Their type names
//! (`AfterSale::…`) are in every recorded history: they stay.

use crate::telemetry::activity_span;
use std::sync::Arc;

use deadpool_postgres::Pool;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::Instrument;

use super::FinishRefund;
use crate::booking::mails::{self, MailOrder};
use crate::domain::OrderId;
use crate::mail::Mailer;
use crate::store::refunds::{self, Finished, Payout};

/// The after-sale activities: Postgres, the mailer, and how often the
/// simulated provider declines.
pub struct AfterSale {
    pool: Pool,
    mailer: Mailer,
    refund_failure_rate: f64,
}

impl AfterSale {
    pub fn new(pool: Pool, mailer: Mailer, refund_failure_rate: f64) -> Self {
        Self {
            pool,
            mailer,
            refund_failure_rate,
        }
    }
}

#[activities]
impl AfterSale {
    /// One call to the simulated provider (idempotent by order): its answer,
    /// paid or declined, is the result; a store error fails the call, to be
    /// retried, and is never a decline.
    #[activity]
    pub async fn refund_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: OrderId,
    ) -> Result<Payout, ActivityError> {
        let attempt = ctx.info().attempt;
        async {
            let roll: f64 = rand::random();
            let payout =
                refunds::pay_out(&self.pool, order_id, self.refund_failure_rate, roll).await;
            match &payout {
                Ok(Payout::Paid(_)) => tracing::info!(attempt, "refund paid out"),
                Ok(Payout::Declined) => tracing::info!(attempt, "refund declined by the provider"),
                Err(e) => tracing::info!(attempt, error = %e, "refund call failed; retried"),
            }
            Ok(payout?)
        }
        .instrument(activity_span(&ctx, order_id, None))
        .await
    }

    /// Paid: the refund ends REFUNDED (a cancelled booking's seats go back
    /// on sale, and the booking ends REFUNDED).
    #[activity]
    pub async fn finish_refund(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: FinishRefund,
    ) -> Result<(), ActivityError> {
        async {
            match refunds::finish(&self.pool, req.order_id, &req.provider_ref).await? {
                Finished::Refunded(seats) => {
                    crate::metrics::refund_ended(true);
                    tracing::info!(seats, "refunded; seats back on sale");
                }
                Finished::Already => tracing::info!("refund finished before"),
            }
            Ok(())
        }
        .instrument(activity_span(&ctx, req.order_id, None))
        .await
    }

    /// Declined every time: the refund FAILED (a booking REFUND_FAILED), for
    /// an operator to retry.
    #[activity]
    pub async fn fail_refund(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: OrderId,
    ) -> Result<(), ActivityError> {
        async {
            let error = "the payment provider declined every refund attempt";
            if refunds::fail(&self.pool, order_id, error).await? {
                crate::metrics::refund_ended(false);
                tracing::warn!("refund declined after its last attempt: an operator must retry it");
            }
            Ok(())
        }
        .instrument(activity_span(&ctx, order_id, None))
        .await
    }

    /// Mail the booking (confirmed or refunded) to every passenger email.
    #[activity]
    pub async fn send_booking_mail(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: MailOrder,
    ) -> Result<u32, ActivityError> {
        let span = activity_span(&ctx, req.order_id, None);
        mails::deliver(&self.pool, &self.mailer, &req)
            .instrument(span)
            .await
    }
}
