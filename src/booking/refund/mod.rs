//! The refund of a cancelled booking, or of an approved payment whose
//! order was never sold: workflow `refund-<orderId>` for its first round,
//! `refund-<orderId>-<round>` for each operator's retry (an id is never
//! reused).
//!
//! The customer's cancellation or an operator's refund is recorded in
//! Postgres first (`store::refunds::request`: CONFIRMED → REFUND_PENDING,
//! in one transaction with the cutoff check), answered 202, then this
//! workflow is started through the [`Engine`](super::service::Engine). An
//! approved payment that sold nothing (`sell_seats` found its seats taken or
//! its row ended) is recorded by `store::refunds::request_unsold` and
//! started the same way. Should a start fail, the reconciliation sweep
//! starts every refund pending longer than a minute, and records the refund
//! of any approved payment of an unsold order that has none. The workflow
//! (`workflow.rs`):
//!
//! 1. `refund_payment`: one call to the simulated provider, which answers
//!    `Paid` or `Declined` (at `REFUND_FAILURE_RATE`) as a value. A store
//!    error is no answer: the activity fails and Temporal retries it with
//!    no limit, so an outage of Postgres is waited out, never counted. The
//!    workflow counts the declines, waiting 1, 2, 4, 8 s… between them, up to
//!    `REFUND_MAX_ATTEMPTS`. The provider keys the payout by
//!    `refund-<orderId>` and looks it up before anything else, so a retried
//!    or repeated call never pays twice nor declines a payout it made.
//! 2. Paid: `finish_refund` ends the refund REFUNDED (a cancelled booking's
//!    seats go back on sale and its order ends REFUNDED in the same
//!    transaction; an unsold order stays FAILED); a refund mail follows
//!    (`booking::mails`). Declined every time: `fail_refund` shows the
//!    refund FAILED (a booking REFUND_FAILED) for an operator, who may retry
//!    it (`store::refunds::retry`, a new round); it never gives up silently.
//!
//! Its activities (`activities.rs`, `AfterSale`) also send the booking's
//! mails, for the booking workflow as for this one.

mod activities;
mod workflow;

use serde::{Deserialize, Serialize};

use super::service::{CallError, Engine, RefundStart};
use crate::domain::OrderId;

pub use crate::store::refunds::Payout;
pub use activities::AfterSale;
pub use workflow::Refund;

/// The refund workflow's id for an order's round: the first keeps the
/// plain `refund-<orderId>`.
pub fn refund_workflow_id(order_id: OrderId, round: u32) -> String {
    match round {
        0 | 1 => format!("refund-{order_id}"),
        n => format!("refund-{order_id}-{n}"),
    }
}

/// Input of the refund workflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefundInput {
    pub order_id: OrderId,
    /// Provider declines before the refund is given up to an operator.
    pub max_attempts: u32,
    /// 1, then one more per operator's retry (absent from the inputs of
    /// workflows started before rounds existed: their first).
    #[serde(default = "first_round")]
    pub round: u32,
}

fn first_round() -> u32 {
    1
}

/// How refund workflows are started, for the API's flows, the sale that
/// found no seats and the sweep alike: through the engine.
#[derive(Clone)]
pub struct Starter {
    pub engine: Engine,
    pub max_attempts: u32,
}

impl Starter {
    /// Start this round of the order's refund, unless its workflow exists.
    pub async fn start(&self, order_id: OrderId, round: u32) -> Result<RefundStart, CallError> {
        let input = RefundInput {
            order_id,
            max_attempts: self.max_attempts,
            round,
        };
        self.engine.start_refund(input).await
    }
}

/// How a refund ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundOutcome {
    Refunded,
    Failed,
}

/// `finish_refund`'s input: the provider's reference of the payout.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinishRefund {
    pub order_id: OrderId,
    pub provider_ref: String,
}
