//! What a seat map and the flight list show, read from both stores: a seat
//! is sold in Postgres, reserved by a live order (held in Redis, or
//! claimed in Postgres by its payment: a claim shows whatever Redis lost),
//! or available. The flights routes answer with it and the live feeds
//! (`live`) recompute it; it knows neither.

use std::collections::HashSet;

use deadpool_postgres::Pool;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{FlightId, SeatId};
use crate::store::flights::{self, Flight};
use crate::store::{Holds, StoreError, claims};

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

/// `booked`: sold (Postgres); `reserved`: held by a live order (Redis) or
/// claimed by its payment (Postgres); `available`: neither.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SeatStatus {
    Booked,
    Reserved,
    Available,
}

/// Every flight, its availability net of the seats live orders reserve.
pub async fn with_availability(pool: &Pool, holds: &Holds) -> Result<Vec<Flight>, StoreError> {
    let mut flights = flights::list(pool).await?;
    let ids: Vec<FlightId> = flights.iter().map(|f| f.id).collect();
    for (flight, reserved) in flights.iter_mut().zip(reserved(pool, holds, &ids).await?) {
        flight.available_seats = (flight.available_seats - reserved.len() as i32).max(0);
    }
    Ok(flights)
}

/// The seats live orders reserve on each of `flights`: held in Redis or
/// claimed by a payment in Postgres (a seat both is counted once).
pub async fn reserved(
    pool: &Pool,
    holds: &Holds,
    flights: &[FlightId],
) -> Result<Vec<HashSet<SeatId>>, StoreError> {
    let held = futures::future::try_join_all(flights.iter().map(|f| holds.list(*f)));
    let (held, mut claimed) = tokio::try_join!(held, claims::by_flight(pool))?;
    Ok(flights
        .iter()
        .zip(held)
        .map(|(flight, held)| {
            let mut seats: HashSet<SeatId> = held.into_keys().collect();
            seats.extend(claimed.remove(flight).unwrap_or_default());
            seats
        })
        .collect())
}

/// `(flightId, availableSeats)` of every flight: the flight list's live feed.
pub async fn availability(pool: &Pool, holds: &Holds) -> Result<Availability, StoreError> {
    let flights = with_availability(pool, holds).await?;
    Ok(flights
        .iter()
        .map(|f| (f.id.uuid(), f.available_seats))
        .collect())
}

/// Every seat of the flight: sold in Postgres, held in Redis or claimed in
/// Postgres, or available.
pub async fn seat_views(pool: &Pool, holds: &Holds, id: Uuid) -> Result<Vec<SeatView>, StoreError> {
    let (seats, held) = tokio::try_join!(flights::seats(pool, id.into()), holds.list(id.into()))?;
    Ok(seats
        .into_iter()
        .map(|s| {
            let status = if s.booked {
                "booked"
            } else if s.claimed || held.contains_key(&s.id) {
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
