//! The refund of a cancelled booking: workflow `refund-<orderId>`, one per
//! booking ever (the id is never reused).
//!
//! The customer's cancellation or an operator's refund is recorded in
//! Postgres first (`store::refunds::request`: CONFIRMED → REFUND_PENDING,
//! in one transaction with the cutoff check), answered 202, then this
//! workflow is started through the [`Engine`](super::service::Engine);
//! should that start fail, the reconciliation sweep starts it for every
//! refund pending longer than a minute. The workflow (`workflow.rs`):
//!
//! 1. `refund_payment`: the simulated provider pays the refund back. It
//!    fails at `REFUND_FAILURE_RATE`; Temporal retries it with backoff up
//!    to `REFUND_MAX_ATTEMPTS` times. The provider keys the payout by
//!    `refund-<orderId>`, so a retried or repeated call never pays twice.
//! 2. Paid: `finish_refund` puts the seats back on sale, and ends the order
//!    and its refund REFUNDED, in one transaction; a refund mail follows
//!    (`booking::mails`). Not paid after the last attempt: `fail_refund`
//!    shows the booking REFUND_FAILED for an operator (the seats stay
//!    sold); it never gives up silently.
//!
//! Its activities (`activities.rs`, `AfterSale`) also send the booking's
//! mails, for the booking workflow as for this one.

mod activities;
mod workflow;

use serde::{Deserialize, Serialize};

use crate::domain::OrderId;

pub use activities::AfterSale;
pub use workflow::Refund;

/// The refund workflow's id for an order.
pub fn refund_workflow_id(order_id: OrderId) -> String {
    format!("refund-{order_id}")
}

/// Input of the refund workflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefundInput {
    pub order_id: OrderId,
    /// Calls to the provider before the refund is given up to an operator.
    pub max_attempts: u32,
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
