//! Cancelling a live order, for its customer and for an operator alike:
//! one update of its workflow with a deadline.

use super::admission::Call;
use super::calls::{Stop, admit, answer, ended, finish, live_order, told};
use super::{Context, Flow};
use crate::booking::messages::Cancel;
use crate::domain::{OrderId, OrderStatus};

/// Cancel the live order `id`; done, its status after.
pub async fn cancel(ctx: &Context<'_>, id: OrderId) -> Flow<OrderStatus> {
    finish(try_cancel(ctx, id).await)
}

async fn try_cancel(ctx: &Context<'_>, id: OrderId) -> Result<OrderStatus, Stop> {
    let before = live_order(ctx, id).await?;
    let _ticket = admit(ctx, Call::Checkout).await?;
    let deadline = ctx.engine.deadline();
    let cancel = Cancel {
        deadline_ms: deadline,
        request_id: ctx.request_id.clone(),
    };
    let answered = ctx.engine.cancel(id, cancel).await;
    match answer(id, told(ctx, &before, deadline, answered).await)? {
        Some(status) => Ok(status),
        None => Err(ended(ctx, id).await),
    }
}
