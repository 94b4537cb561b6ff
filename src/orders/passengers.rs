//! Naming the passengers of a live order: one update of its workflow with
//! a deadline.

use super::admission::Call;
use super::calls::{Stop, admit, answer, ended, finish, live_order, told};
use super::{Context, Flow};
use crate::booking::messages::SetPassengers;
use crate::domain::OrderId;
use crate::passengers::Passenger;
use crate::store::orders::{self, Order};

/// Name the passengers of the live order `id`; done, its row after.
pub async fn name_passengers(
    ctx: &Context<'_>,
    id: OrderId,
    passengers: Vec<Passenger>,
) -> Flow<Order> {
    finish(try_name(ctx, id, passengers).await)
}

async fn try_name(
    ctx: &Context<'_>,
    id: OrderId,
    passengers: Vec<Passenger>,
) -> Result<Order, Stop> {
    let before = live_order(ctx, id).await?;
    let _ticket = admit(ctx, Call::Checkout).await?;
    let deadline = ctx.engine.deadline();
    let req = SetPassengers {
        passengers,
        deadline_ms: deadline,
        request_id: ctx.request_id.clone(),
    };
    let answered = ctx.engine.set_passengers(id, req).await;
    match answer(id, told(ctx, &before, deadline, answered).await)? {
        Some(_) => Ok(orders::find(ctx.pool, id).await?),
        None => Err(ended(ctx, id).await),
    }
}
