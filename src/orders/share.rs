//! A client's live orders: at most `MAX_LIVE_ORDERS_PER_CLIENT` at once,
//! counted in Redis (`store::fairshare`) across every `serve`.
//!
//! A create takes a place for its order before it asks the engine, and
//! gives it back when it is refused (any answer but 201, or 504 whose order
//! may exist), so a refused create counts for nothing. A place lapses by
//! itself at the latest time its order can still be live ([`live_bound`]);
//! a client at its cap first has Postgres say which of its orders have
//! ended, and those places are freed at once: a client whose orders ended
//! is never held back until the bound.

use std::time::Duration;

use super::calls::Stop;
use super::{Context, Refusal};
use crate::booking::payment;
use crate::config::Settings;
use crate::domain::OrderId;
use crate::store::fairshare::Place;
use crate::store::orders;

/// Clocks and the time between a workflow's save and its answer.
const MARGIN: Duration = Duration::from_secs(60);

/// The latest an order can still be live, from its create: the create's
/// own wait (the workflow saves no order after its deadline), the longest
/// its hold can be kept by changes (`HOLD_MAX_LIFETIME`), the payment window (every attempt
/// timing out, every backoff waited), and a margin.
pub fn live_bound(settings: &Settings) -> Duration {
    let b = &settings.booking;
    settings.server.claim_ttl()
        + b.hold_max_lifetime.max(b.seat_reservation_timeout)
        + payment::window(b.payment_validation_timeout, b.payment_max_attempts)
        + MARGIN
}

/// A place among the client's live orders for `order`: whether it was
/// taken now (`false`: a retry of the order's create found it taken
/// already), or [`Refusal::TooManyLiveOrders`].
pub async fn place(ctx: &Context<'_>, order: OrderId) -> Result<bool, Stop> {
    let max = ctx.settings.server.max_live_orders_per_client;
    let bound = live_bound(ctx.settings);
    let mut ended = Vec::new();
    loop {
        let placed = ctx
            .share
            .place_order(&ctx.client, order, (max, bound), &ended)
            .await?;
        let counted = match placed {
            Place::Added => return Ok(true),
            Place::Present => return Ok(false),
            Place::Full(counted) => counted,
        };
        if ended.is_empty() {
            ended = have_ended(ctx, &counted, bound).await?;
            if !ended.is_empty() {
                continue;
            }
        }
        let within = counted.iter().map(|(_, left)| *left).min();
        return Err(Refusal::TooManyLiveOrders {
            max,
            within: within.unwrap_or(bound),
        }
        .into());
    }
}

/// Of the client's counted orders (each with the time until its place
/// lapses), those that no longer count: ended in Postgres, or without a
/// row past their create's longest wait (the workflow saves none after its
/// deadline).
async fn have_ended(
    ctx: &Context<'_>,
    counted: &[(String, Duration)],
    bound: Duration,
) -> Result<Vec<String>, Stop> {
    let ids: Vec<OrderId> = counted.iter().filter_map(|(m, _)| m.parse().ok()).collect();
    let live = orders::liveness(ctx.pool, &ids).await?;
    let waited_out = ctx.settings.server.claim_ttl();
    Ok(counted
        .iter()
        .filter(|(member, left)| match member.parse::<OrderId>() {
            Ok(id) => match live.get(&id) {
                Some(live) => !live,
                None => bound.saturating_sub(*left) > waited_out,
            },
            Err(_) => true,
        })
        .map(|(member, _)| member.clone())
        .collect())
}

/// The create of `order` came to nothing: its place goes. Should that
/// fail, the place lapses at the bound, or is freed by the next create at
/// the cap (no row past the create's wait).
pub async fn give_back(ctx: &Context<'_>, order: OrderId) {
    if let Err(e) = ctx.share.remove_order(&ctx.client, order).await {
        tracing::warn!(error = %e.report(), "a refused create's place could not be given back");
    }
}
