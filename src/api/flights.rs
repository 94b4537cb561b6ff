//! `GET /api/flights` and `GET /api/flights/{id}` (with the seat map: sold
//! seats from Postgres, held seats from Redis), and their live streams.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use deadpool_postgres::Pool;
use uuid::Uuid;

use super::live::{Availability, Feedable, SeatStates};
use super::{ApiError, AppState, sse};
use crate::domain;
use crate::store::flights::{self, Flight};
use crate::store::{Holds, StoreError};

#[derive(Serialize)]
struct FlightList {
    flights: Vec<Flight>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlightDetail {
    #[serde(flatten)]
    flight: Flight,
    seat_map: SeatMap,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeatMap {
    rows: i32,
    seats_per_row: usize,
    seats: Vec<SeatView>,
}

#[derive(Serialize)]
struct SeatView {
    id: String,
    row: i32,
    column: String,
    status: &'static str,
}

/// Every flight, its availability net of live holds.
async fn with_availability(pool: &Pool, holds: &Holds) -> Result<Vec<Flight>, StoreError> {
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
    Ok(flights.iter().map(|f| (f.id, f.available_seats)).collect())
}

/// Every seat of the flight: sold in Postgres, held in Redis, or available.
async fn seat_views(pool: &Pool, holds: &Holds, id: Uuid) -> Result<Vec<SeatView>, StoreError> {
    let (seats, held) = tokio::try_join!(flights::seats(pool, id), holds.list(id))?;
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
                id: s.id,
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

pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let flights = with_availability(&state.pool, &state.holds).await?;
    Ok(HttpResponse::Ok().json(FlightList { flights }))
}

pub fn flight_id(path: &str) -> Result<Uuid, ApiError> {
    domain::parse_id(path).ok_or_else(|| {
        ApiError::bad_request(
            "INVALID_FLIGHT_ID",
            format!("{path:?} is not a flight id (a UUID)"),
        )
    })
}

pub async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = flight_id(&path)?;
    let mut flight = flights::find(&state.pool, id).await?;
    let seats = seat_views(&state.pool, &state.holds, id).await?;
    flight.available_seats = seats.iter().filter(|s| s.status == "available").count() as i32;
    let rows = seats.iter().map(|s| s.row).max().unwrap_or(0);
    Ok(HttpResponse::Ok().json(FlightDetail {
        flight,
        seat_map: SeatMap {
            rows,
            seats_per_row: domain::COLUMNS.len(),
            seats,
        },
    }))
}

#[derive(Serialize)]
struct SeatChange {
    seat: String,
    status: &'static str,
}

#[derive(Serialize)]
struct SeatsSnapshot {
    seats: Vec<SeatChange>,
}

fn seat_change((seat, status): &(String, &'static str)) -> SeatChange {
    SeatChange {
        seat: seat.clone(),
        status,
    }
}

impl Feedable for SeatStates {
    fn snapshot(&self) -> String {
        let seats = self.iter().map(seat_change).collect();
        sse::event(Some("seats"), None, &SeatsSnapshot { seats })
    }

    /// Seats keep their order in every state of a flight, so a diff is a zip.
    fn changes(&self, before: &Self) -> String {
        if before.len() != self.len() {
            return sse::events("seat", self.iter().map(seat_change));
        }
        let changed = self
            .iter()
            .zip(before)
            .filter(|(now, before)| now != before);
        sse::events("seat", changed.map(|(now, _)| seat_change(now)))
    }
}

/// `GET /api/flights/{id}/events`: `event: seats` with the whole seat map,
/// then `event: seat` `{seat, status}` for each seat that changes (held,
/// released, sold).
pub async fn events(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = flight_id(&path)?;
    flights::find(&state.pool, id).await?;
    sse::feed(state.live.clone(), state.live.flight(id)).await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlightAvailability {
    flight_id: Uuid,
    available_seats: i32,
}

#[derive(Serialize)]
struct FlightsSnapshot {
    flights: Vec<FlightAvailability>,
}

fn availabilities<'a>(flights: impl Iterator<Item = &'a (Uuid, i32)>) -> Vec<FlightAvailability> {
    flights
        .map(|&(flight_id, available_seats)| FlightAvailability {
            flight_id,
            available_seats,
        })
        .collect()
}

impl Feedable for Availability {
    fn snapshot(&self) -> String {
        let flights = availabilities(self.iter());
        sse::event(Some("flights"), None, &FlightsSnapshot { flights })
    }

    /// Flights keep their order (by departure), so a diff is a zip.
    fn changes(&self, before: &Self) -> String {
        if before.len() != self.len() {
            return sse::events("flight", availabilities(self.iter()).into_iter());
        }
        let changed = self
            .iter()
            .zip(before)
            .filter(|(now, before)| now != before);
        sse::events(
            "flight",
            availabilities(changed.map(|(now, _)| now)).into_iter(),
        )
    }
}

/// `GET /api/flights/events`: `event: flights` with every flight's
/// availability, then `event: flight` `{flightId, availableSeats}` for each
/// change.
pub async fn list_events(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    sse::feed(state.live.clone(), state.live.flights()).await
}
