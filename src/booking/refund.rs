//! After the sale: the refund of a cancelled booking, and the mails a
//! booking sends.
//!
//! **The refund workflow**, id `refund-<orderId>`, one per booking ever
//! (the id is never reused). The API records the customer's request in
//! Postgres first (`store::refunds::request`: CONFIRMED → REFUND_PENDING,
//! in one transaction with the cutoff check), answers 202, then starts
//! this workflow; should that start fail, the reconciliation sweep starts
//! it for every refund pending longer than a minute. The workflow:
//!
//! 1. `refund_payment`: the simulated provider pays the refund back. It
//!    fails at `REFUND_FAILURE_RATE`; Temporal retries it with backoff up
//!    to `REFUND_MAX_ATTEMPTS` times. The provider keys the payout by
//!    `refund-<orderId>`, so a retried or repeated call never pays twice.
//! 2. Paid: `finish_refund` puts the seats back on sale, and ends the order
//!    and its refund REFUNDED, in one transaction; a refund mail follows.
//!    Not paid after the last attempt: `fail_refund` shows the booking
//!    REFUND_FAILED for an operator (the seats stay sold); it never gives
//!    up silently.
//!
//! **Mails** (`send_booking_mail`): the confirmed booking, and its refund,
//! go to every passenger email, by an activity retried with backoff for a
//! day, so a mail server outage delays the mail, never the booking.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions,
};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityCloseTimeouts, ActivityOptions, ApplicationFailure, LocalActivityOptions,
    WorkflowContext, WorkflowContextView, WorkflowResult,
};
use tracing::Instrument;
use uuid::Uuid;

use crate::mail::{BookingMail, MailKind, MailPassenger, Mailer, Sent};
use crate::store::refunds::{self, Finished, ProviderError};
use crate::store::{StoreError, flights, orders};
use crate::telemetry::activity_span;

/// The refund workflow's id for an order.
pub fn refund_workflow_id(order_id: Uuid) -> String {
    format!("refund-{order_id}")
}

/// Input of the refund workflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefundInput {
    pub order_id: Uuid,
    /// Calls to the provider before the refund is given up to an operator.
    pub max_attempts: u32,
}

/// How a refund ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundOutcome {
    Refunded,
    Failed,
}

/// Which mail a booking sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    Confirmation,
    Refund,
}

/// The `send_booking_mail` activity's input: the mail is built from the
/// order's row, so no name or address travels through Temporal here.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MailOrder {
    pub order_id: Uuid,
    pub notice: Notice,
}

#[workflow]
pub struct Refund {
    input: RefundInput,
}

#[workflow_methods]
impl Refund {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: RefundInput) -> Self {
        Self { input }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<RefundOutcome> {
        let input = ctx.state(|s| s.input.clone());
        let provider = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
            .retry_policy(
                RetryPolicy::builder()
                    .initial_interval(Duration::from_secs(1))
                    .backoff_coefficient(2.0)
                    .maximum_interval(Duration::from_secs(60))
                    .maximum_attempts(input.max_attempts.max(1))
                    .build(),
            )
            .build();
        let paid = ctx
            .execute_activity(AfterSale::refund_payment, input.order_id, provider)
            .await;
        let store = LocalActivityOptions::builder()
            .start_to_close_timeout(Duration::from_secs(10))
            .retry_policy(
                RetryPolicy::builder()
                    .initial_interval(Duration::from_millis(500))
                    .maximum_interval(Duration::from_secs(10))
                    .build(),
            )
            .build();
        let Ok(provider_ref) = paid else {
            ctx.execute_local_activity(AfterSale::fail_refund, input.order_id, store)
                .await?;
            return Ok(RefundOutcome::Failed);
        };
        let finish = FinishRefund {
            order_id: input.order_id,
            provider_ref,
        };
        ctx.execute_local_activity(AfterSale::finish_refund, finish, store)
            .await?;
        let mail = MailOrder {
            order_id: input.order_id,
            notice: Notice::Refund,
        };
        let _ = ctx
            .execute_activity(AfterSale::send_booking_mail, mail, mail_options())
            .await;
        Ok(RefundOutcome::Refunded)
    }
}

/// A mail is retried with backoff for a day; its failure changes nothing
/// about the booking.
pub fn mail_options() -> ActivityOptions {
    let timeouts = ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(24 * 3600),
        start_to_close: Duration::from_secs(30),
    };
    ActivityOptions::with_close_timeouts(timeouts)
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(2))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(300))
                .build(),
        )
        .build()
}

/// `finish_refund`'s input: the provider's reference of the payout.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinishRefund {
    pub order_id: Uuid,
    pub provider_ref: String,
}

/// Start the refund workflow of an order, unless it has one already
/// (started, running or ended: the id is never reused). Returns whether
/// it started now.
pub async fn start(
    client: &Client,
    task_queue: &str,
    input: RefundInput,
) -> Result<bool, WorkflowStartError> {
    let options = WorkflowStartOptions::new(task_queue, refund_workflow_id(input.order_id))
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
    match client.start_workflow(Refund::run, input, options).await {
        Ok(_) => Ok(true),
        Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The after-sale activities: the refund's provider and store steps, and
/// the booking mails.
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
    /// The simulated provider pays the refund back (idempotent by order).
    #[activity]
    pub async fn refund_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<String, ActivityError> {
        let attempt = ctx.info().attempt;
        async {
            let roll: f64 = rand::random();
            match refunds::pay_out(&self.pool, order_id, self.refund_failure_rate, roll).await {
                Ok(provider_ref) => {
                    tracing::info!(attempt, "refund paid out");
                    Ok(provider_ref)
                }
                Err(ProviderError::Declined) => {
                    tracing::info!(attempt, "refund declined by the provider; retried");
                    Err(anyhow::anyhow!(ProviderError::Declined).into())
                }
                Err(ProviderError::Store(e)) => Err(e.into()),
            }
        }
        .instrument(activity_span(&ctx, order_id, None))
        .await
    }

    /// Paid: the seats go back on sale and the booking ends REFUNDED.
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

    /// Not paid after the last attempt: REFUND_FAILED, for an operator.
    #[activity]
    pub async fn fail_refund(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<(), ActivityError> {
        async {
            let error = "the payment provider declined every refund attempt";
            if refunds::fail(&self.pool, order_id, error).await? {
                crate::metrics::refund_ended(false);
                tracing::warn!("refund failed after its last attempt: an operator must act");
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
        async {
            let mails = self.mails(&req).await?;
            let mut delivered = 0;
            for mail in &mails {
                match self.mailer.send(mail).await {
                    Ok(Sent::Delivered) => delivered += 1,
                    Ok(Sent::Skipped) => {}
                    Err(e) if e.is_permanent() => {
                        tracing::warn!(notice = ?req.notice, "a booking mail was refused for good: {e}");
                    }
                    Err(e) => {
                        tracing::info!(notice = ?req.notice, "mail server unavailable; retried: {e}");
                        return Err(anyhow::anyhow!("mail server unavailable: {e}").into());
                    }
                }
            }
            if delivered > 0 {
                tracing::info!(notice = ?req.notice, delivered, "booking mail sent");
            }
            Ok(delivered)
        }
        .instrument(activity_span(&ctx, req.order_id, None))
        .await
    }
}

impl AfterSale {
    /// One mail per distinct passenger email of the order.
    async fn mails(&self, req: &MailOrder) -> Result<Vec<BookingMail>, ActivityError> {
        let order = match orders::find(&self.pool, req.order_id).await {
            Err(e @ StoreError::OrderNotFound(_)) => {
                return Err(ActivityError::application(
                    ApplicationFailure::non_retryable(e),
                ));
            }
            other => other?,
        };
        let flight = flights::find(&self.pool, order.flight_id).await?;
        let kind = match req.notice {
            Notice::Confirmation => MailKind::Confirmation,
            Notice::Refund => MailKind::Refund {
                amount_cents: order.total_price_cents,
            },
        };
        let mut to: Vec<&str> = (order.passengers.iter())
            .filter_map(|p| p.email.as_deref())
            .collect();
        to.sort_unstable();
        to.dedup();
        let passengers: Vec<MailPassenger> = (order.passengers.iter())
            .map(|p| MailPassenger {
                seat: p.seat.clone(),
                given_name: p.given_name.clone(),
                family_name: p.family_name.clone(),
            })
            .collect();
        Ok(to
            .into_iter()
            .map(|address| BookingMail {
                to: address.to_string(),
                kind: kind.clone(),
                reference: order.reference.clone().unwrap_or_default(),
                flight_number: flight.flight_number.clone(),
                origin: flight.origin.clone(),
                destination: flight.destination.clone(),
                departure_time: flight.departure_time,
                passengers: passengers.clone(),
                total_price_cents: order.total_price_cents,
            })
            .collect())
    }
}
