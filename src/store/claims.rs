//! Seats claimed in Postgres by the order paying for them
//! (`seats.claimed_by`; why a column, in `migrations/V10__seat_claims.sql`).
//!
//! A claim is taken in the transaction that saves an order
//! `PAYMENT_PROCESSING` and lives exactly as long as that status: the sale
//! turns it into the booking (`orders::confirm`), every other ending
//! releases it in the transaction that saves it. While it lives no other
//! order can hold or pay for the seat, whatever Redis remembers: the checks
//! of creates, changes and payments (`flights::check_seats`) count it as
//! taken, and the seat map shows it `reserved`. Redis holds stay the fast
//! path; a claim is what a lost hold cannot undo.

use std::collections::HashMap;

use deadpool_postgres::Pool;
use tokio_postgres::Transaction;

use super::{StoreError, seat_id};
use crate::domain::{FlightId, OrderId, SeatId};

/// Claim every seat of `seats` for `order`, or none: each must be unsold
/// and unclaimed (or claimed by `order` already: a retry). Returns the
/// seats that are not (empty: all claimed); the caller rolls back then.
pub async fn claim(
    tx: &Transaction<'_>,
    order: OrderId,
    flight: FlightId,
    seats: &[SeatId],
) -> Result<Vec<SeatId>, StoreError> {
    let rows = tx
        .query(
            "UPDATE seats SET claimed_by = $1, updated_at = NOW()
             WHERE flight_id = $2 AND id = ANY($3) AND status = 'available'
               AND (claimed_by IS NULL OR claimed_by = $1)
             RETURNING id",
            &[&order, &flight, &seats],
        )
        .await?;
    let claimed = rows
        .iter()
        .map(|r| seat_id(r.get("id")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(seats
        .iter()
        .filter(|s| !claimed.contains(s))
        .cloned()
        .collect())
}

/// Release every claim of `order`; returns how many there were.
pub async fn release(tx: &Transaction<'_>, order: OrderId) -> Result<u64, StoreError> {
    Ok(tx
        .execute(
            "UPDATE seats SET claimed_by = NULL, updated_at = NOW() WHERE claimed_by = $1",
            &[&order],
        )
        .await?)
}

/// Every claimed seat, by flight: what the flight list subtracts from its
/// availability, as it does the holds.
pub async fn by_flight(pool: &Pool) -> Result<HashMap<FlightId, Vec<SeatId>>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT flight_id, id FROM seats WHERE claimed_by IS NOT NULL",
            &[],
        )
        .await?;
    let mut claimed: HashMap<FlightId, Vec<SeatId>> = HashMap::new();
    for r in &rows {
        claimed
            .entry(r.get("flight_id"))
            .or_default()
            .push(seat_id(r.get("id"))?);
    }
    Ok(claimed)
}
