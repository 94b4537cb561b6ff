//! Cancelled bookings and their refunds. One refund per booking: the order
//! id keys the `refunds` row, and the simulated provider keys what it pays
//! by `refund-<orderId>`, so retries, duplicate requests and killed workers
//! never refund twice.
//!
//! The order's status moves CONFIRMED → REFUND_PENDING (the customer's
//! request, [`request`]) → REFUNDED ([`finish`], which puts the seats back
//! on sale in the same transaction) or REFUND_FAILED ([`fail`]).

use crate::money::Cents;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StoreError;
use super::flights::Flight;
use super::orders::{self, Order};
use crate::domain::{FlightId, OrderId, OrderStatus};

/// What became of a cancellation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Recorded now: the booking is REFUND_PENDING, its refund to run.
    Accepted,
    /// The same key asked before: the same answer.
    Repeated,
    /// Departure is too close.
    WindowClosed,
    /// Not a confirmed booking (cancelled already, or refunded).
    NotCancellable(OrderStatus),
}

/// Ask for the refund of a confirmed booking, unless departure is within
/// `cutoff`: one transaction, the order's row locked, so two requests at
/// once record one refund.
pub async fn request(
    pool: &Pool,
    order_id: OrderId,
    cutoff: Duration,
    key: Option<&str>,
) -> Result<Request, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT o.status, o.total_price_cents,
                    f.departure_time - make_interval(secs => $2) <= NOW() AS closed,
                    r.request_key
             FROM orders o JOIN flights f ON f.id = o.flight_id
             LEFT JOIN refunds r ON r.order_id = o.id
             WHERE o.id = $1 FOR UPDATE OF o",
            &[&order_id, &cutoff.as_secs_f64()],
        )
        .await?
        .ok_or(StoreError::OrderNotFound(order_id))?;
    let status = OrderStatus::parse(row.get("status")).unwrap_or(OrderStatus::Failed);
    let (amount, closed, asked_with): (i64, bool, Option<String>) = (
        row.get("total_price_cents"),
        row.get("closed"),
        row.get("request_key"),
    );
    if status != OrderStatus::Confirmed {
        let same = key.is_some() && asked_with.as_deref() == key;
        return Ok(if same {
            Request::Repeated
        } else {
            Request::NotCancellable(status)
        });
    }
    if closed {
        return Ok(Request::WindowClosed);
    }
    tx.execute(
        "UPDATE orders SET status = 'REFUND_PENDING', updated_at = NOW() WHERE id = $1",
        &[&order_id],
    )
    .await?;
    tx.execute(
        "INSERT INTO refunds (order_id, amount_cents, request_key) VALUES ($1, $2, $3)",
        &[&order_id, &amount, &key],
    )
    .await?;
    tx.commit().await?;
    Ok(Request::Accepted)
}

/// A refund as the booking look-up shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    /// PENDING, REFUNDED or FAILED.
    pub status: String,
    pub amount_cents: Cents,
    pub attempts: i32,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The refund of an order, if one was asked for.
pub async fn find(pool: &Pool, order_id: OrderId) -> Result<Option<Refund>, StoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_opt(
            "SELECT status, amount_cents, attempts, requested_at, finished_at
             FROM refunds WHERE order_id = $1",
            &[&order_id],
        )
        .await?;
    Ok(row.map(|r| Refund {
        status: r.get("status"),
        amount_cents: r.get("amount_cents"),
        attempts: r.get("attempts"),
        requested_at: r.get("requested_at"),
        finished_at: r.get("finished_at"),
    }))
}

/// A booking: a sold order found by its reference, with its flight and
/// refund.
pub struct Booking {
    pub order: Order,
    pub flight: Flight,
    pub refund: Option<Refund>,
}

/// The booking with this reference, if any.
pub async fn booking(pool: &Pool, reference: &str) -> Result<Option<Booking>, StoreError> {
    let id: Option<OrderId> = {
        let conn = pool.get().await?;
        conn.query_opt("SELECT id FROM orders WHERE reference = $1", &[&reference])
            .await?
            .map(|r| r.get("id"))
    };
    let Some(id) = id else { return Ok(None) };
    let order = orders::find(pool, id).await?;
    let flight = super::flights::find(pool, order.flight_id).await?;
    let refund = find(pool, id).await?;
    Ok(Some(Booking {
        order,
        flight,
        refund,
    }))
}

/// Why the simulated provider did not pay a refund this time.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the payment provider declined the refund for now")]
    Declined,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The simulated payment provider pays out the refund: the call is counted,
/// fails at `failure_rate` (`roll` in [0, 1)), and otherwise records the
/// payout under its idempotency key, so a repeated call pays nothing more.
/// Returns the provider's reference of the payout.
pub async fn pay_out(
    pool: &Pool,
    order_id: OrderId,
    failure_rate: f64,
    roll: f64,
) -> Result<String, ProviderError> {
    let conn = pool.get().await.map_err(StoreError::from)?;
    let declined = roll < failure_rate;
    let error = declined.then(|| ProviderError::Declined.to_string());
    let amount: i64 = conn
        .query_opt(
            "UPDATE refunds SET attempts = attempts + 1, last_error = $2
             WHERE order_id = $1 RETURNING amount_cents",
            &[&order_id, &error],
        )
        .await
        .map_err(StoreError::from)?
        .ok_or(StoreError::OrderNotFound(order_id))?
        .get("amount_cents");
    if declined {
        return Err(ProviderError::Declined);
    }
    let key = format!("refund-{order_id}");
    let candidate = format!("rf_{}", Uuid::new_v4().simple());
    let row = conn
        .query_one(
            "WITH paid AS (
                INSERT INTO provider_refunds (idempotency_key, order_id, amount_cents, provider_ref)
                VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING provider_ref)
             SELECT provider_ref FROM paid
             UNION ALL
             SELECT provider_ref FROM provider_refunds WHERE idempotency_key = $1
             LIMIT 1",
            &[&key, &order_id, &amount, &candidate],
        )
        .await
        .map_err(StoreError::from)?;
    Ok(row.get("provider_ref"))
}

/// What finishing a refund did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finished {
    /// Refunded now; this many seats went back on sale.
    Refunded(u32),
    /// Finished before (a retry): nothing changed.
    Already,
}

/// The refund was paid: in one transaction, the booking's seats go back on
/// sale, the flight's count follows, and the order and its refund end
/// REFUNDED.
pub async fn finish(
    pool: &Pool,
    order_id: OrderId,
    provider_ref: &str,
) -> Result<Finished, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT status, flight_id FROM orders WHERE id = $1 FOR UPDATE",
            &[&order_id],
        )
        .await?
        .ok_or(StoreError::OrderNotFound(order_id))?;
    let (status, flight_id): (&str, FlightId) = (row.get("status"), row.get("flight_id"));
    if status != OrderStatus::RefundPending.as_str() {
        return Ok(Finished::Already);
    }
    let released = tx
        .execute(
            "UPDATE seats SET status = 'available', order_id = NULL, updated_at = NOW()
             WHERE flight_id = $1 AND order_id = $2",
            &[&flight_id, &order_id],
        )
        .await?;
    tx.execute(
        "UPDATE flights SET available_seats = available_seats + $2, updated_at = NOW()
         WHERE id = $1",
        &[&flight_id, &(released as i32)],
    )
    .await?;
    tx.execute(
        "UPDATE refunds SET status = 'REFUNDED', provider_ref = $2, finished_at = NOW(),
                last_error = NULL
         WHERE order_id = $1",
        &[&order_id, &provider_ref],
    )
    .await?;
    tx.execute(
        "UPDATE orders SET status = 'REFUNDED', updated_at = NOW() WHERE id = $1",
        &[&order_id],
    )
    .await?;
    tx.commit().await?;
    Ok(Finished::Refunded(released as u32))
}

/// The provider's last attempt failed: the booking shows REFUND_FAILED for
/// an operator; its seats stay sold. Returns whether it changed now.
pub async fn fail(pool: &Pool, order_id: OrderId, error: &str) -> Result<bool, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let changed = tx
        .execute(
            "UPDATE orders SET status = 'REFUND_FAILED', updated_at = NOW()
             WHERE id = $1 AND status = 'REFUND_PENDING'",
            &[&order_id],
        )
        .await?;
    tx.execute(
        "UPDATE refunds SET status = 'FAILED', last_error = $2, finished_at = NOW()
         WHERE order_id = $1 AND status = 'PENDING'",
        &[&order_id, &error],
    )
    .await?;
    tx.commit().await?;
    Ok(changed > 0)
}

/// Refunds asked for more than `age` ago and still pending: the sweep makes
/// sure each has its workflow.
pub async fn pending(pool: &Pool, age: Duration, limit: i64) -> Result<Vec<OrderId>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT order_id FROM refunds
             WHERE status = 'PENDING' AND requested_at < NOW() - make_interval(secs => $1)
             ORDER BY requested_at LIMIT $2",
            &[&age.as_secs_f64(), &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get("order_id")).collect())
}
