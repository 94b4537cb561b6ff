//! Flights and their seats, as Postgres knows them: sold, claimed by an
//! order's payment (`claims`), or neither.

use crate::money::Cents;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

use super::{StoreError, seat_id};
use crate::domain::{FlightId, OrderId, SeatId};

#[derive(Clone, Debug, PartialEq)]
pub struct Flight {
    pub id: FlightId,
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub departure_time: DateTime<Utc>,
    pub arrival_time: DateTime<Utc>,
    pub total_seats: i32,
    /// Seats not sold in Postgres; live holds are subtracted by the caller.
    pub available_seats: i32,
    pub price_cents: Cents,
    /// False while an operator has closed its sales: creates are refused
    /// (409 `SALES_CLOSED`); orders already made go on.
    pub sales_open: bool,
    /// When a scheduled sale opens: before it creates are refused (409
    /// `SALES_NOT_OPEN`) and buyers wait in the flight's waiting room.
    pub sales_open_at: Option<DateTime<Utc>>,
    /// The operator's cap on buyers the waiting room admits per minute.
    pub admit_per_minute: Option<i32>,
}

/// A seat as Postgres knows it.
#[derive(Clone, Debug)]
pub struct Seat {
    pub id: SeatId,
    pub row: i32,
    pub column: String,
    pub booked: bool,
    /// Claimed by a live order's payment (never when booked).
    pub claimed: bool,
}

const FLIGHT_COLUMNS: &str = "id, flight_number, origin, destination, departure_time,
    arrival_time, total_seats, available_seats, price_cents, sales_open, sales_open_at,
    admit_per_minute";

/// [`FLIGHT_COLUMNS`] of the `flights` table named `alias` in a join, each
/// named `<prefix><column>` (for [`Flight::from_prefixed`]).
pub(super) fn prefixed_columns(alias: &str, prefix: &str) -> String {
    let columns = FLIGHT_COLUMNS.split(',').map(str::trim);
    let named: Vec<String> = columns
        .map(|c| format!("{alias}.{c} AS {prefix}{c}"))
        .collect();
    named.join(", ")
}

impl Flight {
    /// A row selected with [`FLIGHT_COLUMNS`].
    fn from_row(row: &Row) -> Self {
        Self::from_prefixed(row, "")
    }

    /// A row selected with [`prefixed_columns`] and this `prefix`.
    pub(super) fn from_prefixed(row: &Row, prefix: &str) -> Self {
        let column = |name: &str| format!("{prefix}{name}");
        Self {
            id: row.get(column("id").as_str()),
            flight_number: row.get(column("flight_number").as_str()),
            origin: row.get(column("origin").as_str()),
            destination: row.get(column("destination").as_str()),
            departure_time: row.get(column("departure_time").as_str()),
            arrival_time: row.get(column("arrival_time").as_str()),
            total_seats: row.get(column("total_seats").as_str()),
            available_seats: row.get(column("available_seats").as_str()),
            price_cents: row.get(column("price_cents").as_str()),
            sales_open: row.get(column("sales_open").as_str()),
            sales_open_at: row.get(column("sales_open_at").as_str()),
            admit_per_minute: row.get(column("admit_per_minute").as_str()),
        }
    }
}

/// All flights, earliest departure first.
pub async fn list(pool: &Pool) -> Result<Vec<Flight>, StoreError> {
    let conn = pool.get().await?;
    let sql =
        format!("SELECT {FLIGHT_COLUMNS} FROM flights ORDER BY departure_time, flight_number");
    let rows = conn.query(&sql, &[]).await?;
    Ok(rows.iter().map(Flight::from_row).collect())
}

/// Announce that the flight's seats changed where Postgres did not see it
/// (a hold released in Redis alone); `serve` pushes it to the seat maps.
/// Changes to orders and sold seats are announced by triggers.
pub async fn announce(pool: &Pool, id: FlightId) -> Result<(), StoreError> {
    let conn = pool.get().await?;
    conn.execute(
        "SELECT pg_notify('flightctl_changes', 'f:' || $1::text)",
        &[&id.to_string()],
    )
    .await?;
    Ok(())
}

/// The flight with this id, or [`StoreError::FlightNotFound`].
pub async fn find(pool: &Pool, id: FlightId) -> Result<Flight, StoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {FLIGHT_COLUMNS} FROM flights WHERE id = $1");
    conn.query_opt(&sql, &[&id])
        .await?
        .map(|row| Flight::from_row(&row))
        .ok_or(StoreError::FlightNotFound(id))
}

/// Every seat of a flight in row, then column order.
pub async fn seats(pool: &Pool, flight_id: FlightId) -> Result<Vec<Seat>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT id, row_num, col, status = 'booked' AS booked,
                    claimed_by IS NOT NULL AS claimed
             FROM seats WHERE flight_id = $1 ORDER BY row_num, col",
            &[&flight_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Seat {
                id: seat_id(r.get("id"))?,
                row: r.get("row_num"),
                column: r.get("col"),
                booked: r.get("booked"),
                claimed: r.get("claimed"),
            })
        })
        .collect()
}

/// Of `wanted`, the seats that do not exist on the flight and those taken.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeatCheck {
    pub unknown: Vec<SeatId>,
    /// Sold, or claimed by another order's payment.
    pub taken: Vec<SeatId>,
}

/// Of `wanted`, which seats the flight lacks and which are taken: sold, or
/// claimed by an order other than `order` (whatever Redis holds).
pub async fn check_seats(
    pool: &Pool,
    flight_id: FlightId,
    order: OrderId,
    wanted: &[SeatId],
) -> Result<SeatCheck, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT id, status = 'booked' OR (claimed_by IS NOT NULL AND claimed_by <> $3) AS taken
             FROM seats WHERE flight_id = $1 AND id = ANY($2)",
            &[&flight_id, &wanted, &order],
        )
        .await?;
    let mut check = SeatCheck::default();
    for seat in wanted {
        let id = seat.to_string();
        match rows.iter().find(|r| r.get::<_, &str>("id") == id) {
            None => check.unknown.push(seat.clone()),
            Some(r) if r.get::<_, bool>("taken") => check.taken.push(seat.clone()),
            Some(_) => {}
        }
    }
    Ok(check)
}

/// Seats of the flight neither sold nor claimed by a payment (Postgres
/// alone; seats held in Redis are still counted): none left is sold out.
pub async fn unsold_unclaimed(pool: &Pool, id: FlightId) -> Result<i64, StoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "SELECT count(*) AS open FROM seats
             WHERE flight_id = $1 AND status <> 'booked' AND claimed_by IS NULL",
            &[&id],
        )
        .await?;
    Ok(row.get("open"))
}
