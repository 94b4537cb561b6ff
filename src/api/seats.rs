//! What a seat map and the flight list show, read from both stores: a seat
//! is sold in Postgres, held in Redis, or available. The flights routes
//! answer with it and the live feeds (`live`) recompute it; it knows
//! neither.

use deadpool_postgres::Pool;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::flights::{self, Flight};
use crate::store::{Holds, StoreError};

/// `(seat, status)` in seat-map order.
pub type SeatStates = Vec<(String, &'static str)>;
/// `(flightId, availableSeats)` in list order.
pub type Availability = Vec<(Uuid, i32)>;

#[derive(Serialize, ToSchema)]
pub struct SeatView {
    /// Row and column, e.g. `12A`.
    #[schema(example = "12A")]
    pub id: String,
    #[schema(minimum = 1)]
    pub row: i32,
    #[schema(example = "A")]
    pub column: String,
    #[schema(value_type = SeatStatus)]
    pub status: &'static str,
}

/// `booked`: sold (Postgres); `reserved`: held by a live order (Redis);
/// `available`: neither.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SeatStatus {
    Booked,
    Reserved,
    Available,
}

/// Every flight, its availability net of live holds.
pub async fn with_availability(pool: &Pool, holds: &Holds) -> Result<Vec<Flight>, StoreError> {
    let mut flights = flights::list(pool).await?;
    let held = futures::future::try_join_all(flights.iter().map(|f| holds.list(f.id))).await?;
    for (flight, holds) in flights.iter_mut().zip(held) {
        flight.available_seats = (flight.available_seats - holds.len() as i32).max(0);
    }
    Ok(flights)
}

/// `(flightId, availableSeats)` of every flight: the flight list's live feed.
pub async fn availability(pool: &Pool, holds: &Holds) -> Result<Availability, StoreError> {
    let flights = with_availability(pool, holds).await?;
    Ok(flights
        .iter()
        .map(|f| (f.id.uuid(), f.available_seats))
        .collect())
}

/// Every seat of the flight: sold in Postgres, held in Redis, or available.
pub async fn seat_views(pool: &Pool, holds: &Holds, id: Uuid) -> Result<Vec<SeatView>, StoreError> {
    let (seats, held) = tokio::try_join!(flights::seats(pool, id.into()), holds.list(id.into()))?;
    Ok(seats
        .into_iter()
        .map(|s| {
            let status = if s.booked {
                "booked"
            } else if held.contains_key(&s.id) {
                "reserved"
            } else {
                "available"
            };
            SeatView {
                id: s.id.to_string(),
                row: s.row,
                column: s.column,
                status,
            }
        })
        .collect())
}

/// `(seat, status)` of every seat: a seat map's live feed.
pub async fn seat_states(pool: &Pool, holds: &Holds, id: Uuid) -> Result<SeatStates, StoreError> {
    let seats = seat_views(pool, holds, id).await?;
    Ok(seats.into_iter().map(|s| (s.id, s.status)).collect())
}
