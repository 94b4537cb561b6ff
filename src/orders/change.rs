//! A selection change of a live order: one update of its workflow with a
//! deadline; a refused change leaves the previous seats as they were.

use chrono::DateTime;

use super::admission::Call;
use super::calls::{Stop, admit, answer, ended, finish, live_order, told};
use super::create::refuse_taken;
use super::{Context, Flow, Hold, SeatRequest, count};
use crate::booking::messages::SelectSeats;
use crate::domain::{OrderId, OrderStatus, SeatSelection};
use crate::store::fares;

/// Change the seats of the live order `id`; the hold restarts in full.
pub async fn change(ctx: &Context<'_>, id: OrderId, seats: SeatSelection) -> Flow<Hold> {
    let changed = finish(try_change(ctx, id, seats).await);
    count("change", &changed);
    changed
}

async fn try_change(ctx: &Context<'_>, id: OrderId, seats: SeatSelection) -> Result<Hold, Stop> {
    let order = live_order(ctx, id).await?;
    let wanted = SeatRequest {
        flight_id: order.flight_id,
        seats,
    };
    refuse_taken(ctx, &wanted, id).await?;
    let _ticket = admit(ctx, Call::Checkout).await?;
    let deadline = ctx.engine.deadline();
    // New seats are priced as the flight sells them now; the workflow
    // keeps the price of each seat the order already holds.
    let prices = fares::prices(ctx.pool, order.flight_id, wanted.seats.seats()).await?;
    let select = SelectSeats {
        seats: wanted.seats,
        prices,
        deadline_ms: deadline,
        request_id: ctx.request_id.clone(),
    };
    let answered = told(ctx, &order, deadline, ctx.engine.select(id, select).await).await;
    match answer(id, answered)? {
        Some(held) => Ok(Hold {
            order_id: id,
            status: OrderStatus::SeatsReserved,
            max_expires_at: held.max_expires_at(),
            expires_at: DateTime::from_timestamp_millis(held.expires_at_ms as i64),
            seats: held.seats,
        }),
        None => Err(ended(ctx, id).await),
    }
}
