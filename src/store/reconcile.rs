//! What the reconciliation sweep reads and repairs in Postgres.

use std::collections::HashMap;

use deadpool_postgres::Pool;

use super::{StoreError, claims, seat_ids};
use crate::domain::{FlightId, OrderId, OrderStatus, SeatId};

/// Statuses in which an order's workflow is expected to be running.
const LIVE: &str = "('CREATED', 'SEATS_RESERVED', 'PAYMENT_PENDING', 'PAYMENT_PROCESSING')";

/// An order row in a live state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOrder {
    pub id: OrderId,
    pub flight_id: FlightId,
    pub workflow_id: String,
    pub seats: Vec<SeatId>,
    /// Unchanged for two minutes or more.
    pub quiet: bool,
}

/// Up to `limit` live orders, least recently changed first.
pub async fn live_orders(pool: &Pool, limit: i64) -> Result<Vec<LiveOrder>, StoreError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT id, flight_id, workflow_id, seats,
                updated_at < NOW() - INTERVAL '2 minutes' AS quiet
         FROM orders
         WHERE status IN {LIVE} ORDER BY updated_at LIMIT $1"
    );
    let rows = conn.query(&sql, &[&limit]).await?;
    rows.iter()
        .map(|r| {
            Ok(LiveOrder {
                id: r.get("id"),
                flight_id: r.get("flight_id"),
                workflow_id: r.get("workflow_id"),
                seats: seat_ids(r, "seats")?,
                quiet: r.get("quiet"),
            })
        })
        .collect()
}

/// End a live order whose workflow is gone: FAILED with `reason`, its
/// seats' claims released in the same transaction. An order that ended
/// meanwhile is left alone; returns whether the row changed.
pub async fn end_orphan(pool: &Pool, id: OrderId, reason: &str) -> Result<bool, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let sql = format!(
        "UPDATE orders SET status = 'FAILED', failure_reason = $2, updated_at = NOW()
         WHERE id = $1 AND status IN {LIVE}"
    );
    let ended = tx.execute(&sql, &[&id, &reason]).await? == 1;
    if ended {
        claims::release(&tx, id).await?;
    }
    tx.commit().await?;
    Ok(ended)
}

/// The status of each of `ids` that has a row.
pub async fn statuses(
    pool: &Pool,
    ids: &[OrderId],
) -> Result<HashMap<OrderId, OrderStatus>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query("SELECT id, status FROM orders WHERE id = ANY($1)", &[&ids])
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let status = OrderStatus::parse(r.get("status")).unwrap_or(OrderStatus::Failed);
            (r.get("id"), status)
        })
        .collect())
}

/// A flight whose `available_seats` disagreed with its seats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub flight_id: FlightId,
    pub was: i32,
    pub now: i32,
}

/// Set every flight's `available_seats` to the count of its unsold seats
/// where they differ; returns what was corrected. A claimed seat is unsold
/// (`available`): readers subtract claims, as they subtract holds.
pub async fn correct_availability(pool: &Pool) -> Result<Vec<Drift>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "WITH counts AS (
                SELECT f.id, f.available_seats AS was,
                       (SELECT count(*) FROM seats s
                        WHERE s.flight_id = f.id AND s.status = 'available')::int AS now
                FROM flights f)
             UPDATE flights f SET available_seats = c.now, updated_at = NOW()
             FROM counts c WHERE f.id = c.id AND c.was <> c.now
             RETURNING f.id, c.was, c.now",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Drift {
            flight_id: r.get("id"),
            was: r.get("was"),
            now: r.get("now"),
        })
        .collect())
}
