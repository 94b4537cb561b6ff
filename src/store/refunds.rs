//! Cancelled bookings and their refunds. One refund per booking: the order
//! id keys the `refunds` row, and the simulated provider keys what it pays
//! by `refund-<orderId>`, so retries, duplicate requests and killed workers
//! never refund twice.
//!
//! The order's status moves CONFIRMED → REFUND_PENDING (the customer's
//! request, [`request`]) → REFUNDED ([`finish`], which puts the seats back
//! on sale in the same transaction) or REFUND_FAILED ([`fail`]), and an
//! operator's [`retry`] takes REFUND_FAILED back to REFUND_PENDING in a new
//! round. An approved payment whose order was never sold is refunded too
//! ([`request_unsold`], reason UNSOLD): its order stays FAILED and its
//! refund's row alone moves PENDING → REFUNDED or FAILED.

use crate::fares::{self, SeatPrice};
use crate::money::Cents;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
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
    /// A seat's fare is not refundable: the booking stays as it is.
    NotRefundable,
    /// Its passengers have checked in: it can no longer be cancelled.
    CheckedIn,
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
            "SELECT o.status, o.total_price_cents, o.seat_prices,
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
    if super::checkin::checked_in(&tx, order_id).await? {
        return Ok(Request::CheckedIn);
    }
    if closed {
        return Ok(Request::WindowClosed);
    }
    // The fare rules fixed when each seat was taken: the price less its
    // cancellation fee, or no refund at all (an order saved before the
    // rules existed refunds its total).
    let prices: Vec<SeatPrice> = serde_json::from_value(row.get("seat_prices")).unwrap_or_default();
    let amount = match prices.is_empty() {
        true => amount,
        false => match fares::refund_of(&prices) {
            Some(refund) => refund.get(),
            None => return Ok(Request::NotRefundable),
        },
    };
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

/// Why an order is refunded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A sold booking was cancelled.
    Cancelled,
    /// An approved payment whose order was never sold.
    Unsold,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Cancelled => "CANCELLED",
            Reason::Unsold => "UNSOLD",
        }
    }

    fn parse(text: &str) -> Reason {
        match text {
            "UNSOLD" => Reason::Unsold,
            _ => Reason::Cancelled,
        }
    }
}

/// A refund as the booking look-up shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    /// PENDING, REFUNDED or FAILED.
    pub status: String,
    pub reason: Reason,
    /// 1, then one more per operator's retry.
    pub round: u32,
    pub amount_cents: Cents,
    pub attempts: i32,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const REFUND_COLUMNS: &str =
    "status, reason, round, amount_cents, attempts, requested_at, finished_at";

impl Refund {
    /// A row selected with [`REFUND_COLUMNS`], each named `<prefix><column>`;
    /// none if its status is null (no refund in a left join).
    fn from_prefixed(row: &Row, prefix: &str) -> Option<Self> {
        let column = |name: &str| format!("{prefix}{name}");
        Some(Refund {
            status: row.get::<_, Option<String>>(column("status").as_str())?,
            reason: Reason::parse(row.get(column("reason").as_str())),
            round: row.get::<_, i32>(column("round").as_str()) as u32,
            amount_cents: row.get(column("amount_cents").as_str()),
            attempts: row.get(column("attempts").as_str()),
            requested_at: row.get(column("requested_at").as_str()),
            finished_at: row.get(column("finished_at").as_str()),
        })
    }
}

/// The refund of an order, if one was asked for.
pub async fn find(pool: &Pool, order_id: OrderId) -> Result<Option<Refund>, StoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE order_id = $1");
    let row = conn.query_opt(&sql, &[&order_id]).await?;
    Ok(row.and_then(|r| Refund::from_prefixed(&r, "")))
}

/// A booking: a sold order found by its reference, with its flight and
/// refund.
pub struct Booking {
    pub order: Order,
    pub flight: Flight,
    pub refund: Option<Refund>,
}

/// The booking with this reference, if any: the order with its
/// passengers, its flight and its refund in one query, so a reference that
/// exists and one that does not cost the same work (no timing oracle).
pub async fn booking(pool: &Pool, reference: &str) -> Result<Option<Booking>, StoreError> {
    let conn = pool.get().await?;
    let refund: Vec<String> = (REFUND_COLUMNS.split(',').map(str::trim))
        .map(|c| format!("r.{c} AS r_{c}"))
        .collect();
    let sql = format!(
        "SELECT {}, {}, {}
         FROM orders o JOIN flights f ON f.id = o.flight_id
         LEFT JOIN refunds r ON r.order_id = o.id
         WHERE o.reference = $1",
        orders::columns_of("o"),
        super::flights::prefixed_columns("f", "f_"),
        refund.join(", "),
    );
    let Some(row) = conn.query_opt(&sql, &[&reference]).await? else {
        return Ok(None);
    };
    Ok(Some(Booking {
        order: Order::from_row(&row)?,
        flight: Flight::from_prefixed(&row, "f_"),
        refund: Refund::from_prefixed(&row, "r_"),
    }))
}

/// The simulated provider's answer to one payout call. A store error is no
/// answer at all: the caller retries it until the store is back, and it
/// never counts as a decline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payout {
    /// Paid, now or before: the provider's reference of the payout.
    Paid(String),
    /// The provider declined this call.
    Declined,
}

/// The simulated payment provider pays out the refund, keyed by
/// `refund-<orderId>` (one payout per order, whatever the round). A payout
/// it made before is found first, so a call whose answer was lost and is
/// retried is never declined after the money left; otherwise the call
/// fails at `failure_rate` (`roll` in [0, 1)), or records the payout. Every
/// call is counted on the refund's row.
pub async fn pay_out(
    pool: &Pool,
    order_id: OrderId,
    failure_rate: f64,
    roll: f64,
) -> Result<Payout, StoreError> {
    let conn = pool.get().await?;
    let key = format!("refund-{order_id}");
    let made = conn
        .query_opt(
            "SELECT provider_ref FROM provider_refunds WHERE idempotency_key = $1",
            &[&key],
        )
        .await?;
    let declined = made.is_none() && roll < failure_rate;
    let error = declined.then(|| DECLINED.to_string());
    let amount: i64 = conn
        .query_opt(
            "UPDATE refunds SET attempts = attempts + 1, last_error = $2
             WHERE order_id = $1 RETURNING amount_cents",
            &[&order_id, &error],
        )
        .await?
        .ok_or(StoreError::OrderNotFound(order_id))?
        .get("amount_cents");
    if let Some(row) = made {
        return Ok(Payout::Paid(row.get("provider_ref")));
    }
    if declined {
        return Ok(Payout::Declined);
    }
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
        .await?;
    Ok(Payout::Paid(row.get("provider_ref")))
}

/// What a declined call leaves on the refund's row.
const DECLINED: &str = "the payment provider declined the refund for now";

/// What finishing a refund did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finished {
    /// Refunded now; this many seats went back on sale.
    Refunded(u32),
    /// Finished before (a retry): nothing changed.
    Already,
}

/// The refund was paid. A cancelled booking's: in one transaction, its
/// seats go back on sale, the flight's count follows, and the order and its
/// refund end REFUNDED. An unsold payment's: only the refund ends REFUNDED
/// (the order stays FAILED, its seats were never its own).
pub async fn finish(
    pool: &Pool,
    order_id: OrderId,
    provider_ref: &str,
) -> Result<Finished, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT o.status, o.flight_id, r.status AS refund, r.reason
             FROM orders o JOIN refunds r ON r.order_id = o.id
             WHERE o.id = $1 FOR UPDATE",
            &[&order_id],
        )
        .await?
        .ok_or(StoreError::OrderNotFound(order_id))?;
    let (status, flight_id): (&str, FlightId) = (row.get("status"), row.get("flight_id"));
    let (refund, reason): (&str, &str) = (row.get("refund"), row.get("reason"));
    if refund != "PENDING" {
        return Ok(Finished::Already);
    }
    let released = if reason == Reason::Unsold.as_str() {
        0
    } else if status == OrderStatus::RefundPending.as_str() {
        put_back_on_sale(&tx, order_id, flight_id).await?
    } else {
        return Ok(Finished::Already);
    };
    tx.execute(
        "UPDATE refunds SET status = 'REFUNDED', provider_ref = $2, finished_at = NOW(),
                last_error = NULL
         WHERE order_id = $1",
        &[&order_id, &provider_ref],
    )
    .await?;
    // An unsold order's row is touched too (its status unchanged), so it
    // announces its refund to whoever watches it.
    tx.execute(
        "UPDATE orders SET status = CASE WHEN status = 'REFUND_PENDING' THEN 'REFUNDED'
                                         ELSE status END,
                           updated_at = NOW()
         WHERE id = $1",
        &[&order_id],
    )
    .await?;
    tx.commit().await?;
    Ok(Finished::Refunded(released))
}

/// A cancelled booking's seats go back on sale, and its flight's count
/// follows; how many.
async fn put_back_on_sale(
    tx: &deadpool_postgres::Transaction<'_>,
    order_id: OrderId,
    flight_id: FlightId,
) -> Result<u32, StoreError> {
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
    Ok(released as u32)
}

/// The provider declined every attempt: the refund is FAILED for an
/// operator, and a cancelled booking REFUND_FAILED (its seats stay sold;
/// an unsold order stays FAILED). Returns whether it changed now.
pub async fn fail(pool: &Pool, order_id: OrderId, error: &str) -> Result<bool, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    tx.execute(
        "UPDATE orders SET status = 'REFUND_FAILED', updated_at = NOW()
         WHERE id = $1 AND status = 'REFUND_PENDING'",
        &[&order_id],
    )
    .await?;
    let changed = tx
        .execute(
            "UPDATE refunds SET status = 'FAILED', last_error = $2, finished_at = NOW()
             WHERE order_id = $1 AND status = 'PENDING'",
            &[&order_id, &error],
        )
        .await?;
    tx.commit().await?;
    Ok(changed > 0)
}

/// A refund to run: its order and its round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub order_id: OrderId,
    pub round: u32,
}

/// Refunds asked for (or retried) more than `age` ago and still pending:
/// the sweep makes sure each has its workflow.
pub async fn pending(pool: &Pool, age: Duration, limit: i64) -> Result<Vec<Pending>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT order_id, round FROM refunds
             WHERE status = 'PENDING' AND requested_at < NOW() - make_interval(secs => $1)
             ORDER BY requested_at LIMIT $2",
            &[&age.as_secs_f64(), &limit],
        )
        .await?;
    Ok(rows.iter().map(pending_of).collect())
}

fn pending_of(r: &tokio_postgres::Row) -> Pending {
    Pending {
        order_id: r.get("order_id"),
        round: r.get::<_, i32>("round") as u32,
    }
}

/// Record the refund of the approved payment of an order that was not
/// sold (its seats taken, or its row ended first), unless it has one.
/// Whether it was recorded now.
pub async fn request_unsold(pool: &Pool, order_id: OrderId) -> Result<bool, StoreError> {
    let conn = pool.get().await?;
    let recorded = conn
        .execute(
            &format!(
                "INSERT INTO refunds (order_id, amount_cents, reason)
                 SELECT o.id, o.total_price_cents, 'UNSOLD' FROM orders o
                 WHERE o.id = $1 AND {UNSOLD_PAID}
                 ON CONFLICT (order_id) DO NOTHING"
            ),
            &[&order_id],
        )
        .await?;
    Ok(recorded > 0)
}

/// An order `o` with an approved payment that holds no sale.
const UNSOLD_PAID: &str = "o.confirmed_at IS NULL AND o.reference IS NULL
    AND o.status NOT IN ('CONFIRMED', 'REFUND_PENDING', 'REFUNDED', 'REFUND_FAILED')
    AND EXISTS (SELECT 1 FROM payment_attempts a
                WHERE a.order_id = o.id AND a.outcome = 'SUCCEEDED')";

/// The sweep's backstop: record the refund of every approved payment whose
/// order ended unsold (FAILED, EXPIRED, CANCELLED) without a refund; the
/// refunds recorded now, to start.
pub async fn request_unsold_ended(pool: &Pool, limit: i64) -> Result<Vec<Pending>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            &format!(
                "INSERT INTO refunds (order_id, amount_cents, reason)
                 SELECT o.id, o.total_price_cents, 'UNSOLD' FROM orders o
                 WHERE o.status IN ('FAILED', 'EXPIRED', 'CANCELLED') AND {UNSOLD_PAID}
                   AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id)
                 ORDER BY o.updated_at LIMIT $1
                 ON CONFLICT (order_id) DO NOTHING
                 RETURNING order_id, round"
            ),
            &[&limit],
        )
        .await?;
    Ok(rows.iter().map(pending_of).collect())
}

/// What an operator's retry of a refund did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The FAILED refund is PENDING again, in this new round (and a
    /// cancelled booking REFUND_PENDING again).
    Retried(u32),
    /// The order has no refund, or one that has not failed.
    NotFailed,
}

/// An operator retries a refund the provider declined for good: in one
/// transaction, the refund starts a new round, PENDING; a cancelled
/// booking goes back from REFUND_FAILED to REFUND_PENDING.
pub async fn retry(pool: &Pool, order_id: OrderId) -> Result<Retry, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE refunds SET status = 'PENDING', round = round + 1, finished_at = NULL,
                    last_error = NULL
             WHERE order_id = $1 AND status = 'FAILED' RETURNING round",
            &[&order_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Retry::NotFailed);
    };
    tx.execute(
        "UPDATE orders SET status = 'REFUND_PENDING', updated_at = NOW()
         WHERE id = $1 AND status = 'REFUND_FAILED'",
        &[&order_id],
    )
    .await?;
    tx.commit().await?;
    Ok(Retry::Retried(row.get::<_, i32>("round") as u32))
}
