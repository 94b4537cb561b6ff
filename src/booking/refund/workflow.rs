//! The refund workflow: pay back, then end the booking REFUNDED and mail
//! it, or leave it REFUND_FAILED for an operator.

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, LocalActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use super::{AfterSale, FinishRefund, RefundInput, RefundOutcome};
use crate::booking::mails::{self, MailOrder, Notice};

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
        let paid = ctx
            .execute_activity(
                AfterSale::refund_payment,
                input.order_id,
                provider_options(input.max_attempts),
            )
            .await;
        let Ok(provider_ref) = paid else {
            ctx.execute_local_activity(AfterSale::fail_refund, input.order_id, store_options())
                .await?;
            return Ok(RefundOutcome::Failed);
        };
        let finish = FinishRefund {
            order_id: input.order_id,
            provider_ref,
        };
        ctx.execute_local_activity(AfterSale::finish_refund, finish, store_options())
            .await?;
        let mail = MailOrder {
            order_id: input.order_id,
            notice: Notice::Refund,
        };
        let _ = ctx
            .execute_activity(AfterSale::send_booking_mail, mail, mails::mail_options())
            .await;
        Ok(RefundOutcome::Refunded)
    }
}

/// The provider is called up to `max_attempts` times, with backoff.
fn provider_options(max_attempts: u32) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .maximum_attempts(max_attempts.max(1))
                .build(),
        )
        .build()
}

/// The store steps are retried until the store is back.
fn store_options() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_millis(500))
                .maximum_interval(Duration::from_secs(10))
                .build(),
        )
        .build()
}
