//! The refund workflow: pay back, then end the refund REFUNDED and mail it,
//! or, once the provider has declined `max_attempts` times, leave it FAILED
//! for an operator. Declines are counted here, from the provider's answers;
//! a store outage fails the activity instead, which Temporal retries
//! without limit, so it never counts.

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, LocalActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use super::{AfterSale, FinishRefund, Payout, RefundInput, RefundOutcome};
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
        let Some(provider_ref) = pay_back(ctx, &input).await? else {
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

/// Call the provider until it pays, or until it has declined
/// `max_attempts` times (`None`), waiting longer after each decline.
async fn pay_back(
    ctx: &mut WorkflowContext<Refund>,
    input: &RefundInput,
) -> WorkflowResult<Option<String>> {
    let max = input.max_attempts.max(1);
    for declines in 1..=max {
        let answer = ctx
            .execute_activity(
                AfterSale::refund_payment,
                input.order_id,
                provider_options(),
            )
            .await?;
        match answer {
            Payout::Paid(provider_ref) => return Ok(Some(provider_ref)),
            Payout::Declined if declines < max => {
                ctx.timer(decline_backoff(declines)).await;
            }
            Payout::Declined => {}
        }
    }
    Ok(None)
}

/// The wait after the `n`th decline: 1, 2, 4, 8 s…, at most a minute.
fn decline_backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// One provider call; its failure is a dependency's (the store), retried
/// with backoff until it returns.
fn provider_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(10))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declines_back_off_by_doubling_up_to_a_minute() {
        let waits: Vec<u64> = (1..=8).map(|n| decline_backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
