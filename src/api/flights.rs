//! `GET /api/flights` and `GET /api/flights/{id}` (with the seat map: sold
//! seats from Postgres, held seats from Redis).

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::domain;
use crate::store::flights::{self, Flight};

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

pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut flights = flights::list(&state.pool).await?;
    let held =
        futures::future::try_join_all(flights.iter().map(|f| state.holds.list(f.id))).await?;
    for (flight, holds) in flights.iter_mut().zip(held) {
        flight.available_seats = (flight.available_seats - holds.len() as i32).max(0);
    }
    Ok(HttpResponse::Ok().json(FlightList { flights }))
}

pub async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = domain::parse_id(&path).ok_or_else(|| {
        ApiError::bad_request(
            "INVALID_FLIGHT_ID",
            format!("{:?} is not a flight id (a UUID)", path.as_str()),
        )
    })?;
    let mut flight = flights::find(&state.pool, id).await?;
    let (seats, holds) = tokio::try_join!(flights::seats(&state.pool, id), state.holds.list(id))?;
    let seats: Vec<SeatView> = seats
        .into_iter()
        .map(|s| {
            let status = if s.booked {
                "booked"
            } else if holds.contains_key(&s.id) {
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
        .collect();
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
