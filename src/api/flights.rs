//! `GET /api/flights` and `GET /api/flights/{id}` (with the seat map: sold
//! seats from Postgres, held seats from Redis), and their live streams.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::live::Feedable;
use super::seats::{Availability, SeatStates, SeatStatus, SeatView, seat_views, with_availability};
use super::{ApiError, AppState, ErrorCode, bodies, sse};
use crate::domain;
use crate::fares::{Cabin, Feature};
use crate::store::{fares, flights};

#[derive(Serialize, ToSchema)]
pub struct FlightList {
    flights: Vec<bodies::Flight>,
}

/// A flight with its seat map.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlightDetail {
    #[serde(flatten)]
    flight: bodies::Flight,
    seat_map: SeatMap,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatMap {
    rows: i32,
    seats_per_row: usize,
    /// The flight's cabins, front first.
    cabins: Vec<bodies::CabinBody>,
    seats: Vec<PricedSeat>,
}

/// A seat with its status, cabin, features and price now.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricedSeat {
    #[serde(flatten)]
    seat: SeatView,
    cabin: Cabin,
    /// WINDOW, AISLE or MIDDLE from its place in the row; EXIT_ROW and
    /// EXTRA_LEGROOM from the flight's rows.
    features: Vec<Feature>,
    /// What a hold taken now pays: the cabin's fare plus the flight's
    /// surcharge for each feature.
    price_cents: i64,
}

#[utoipa::path(
    get,
    path = "/api/flights",
    tag = "flights",
    summary = "Every flight, earliest departure first",
    description = "`availableSeats` counts seats neither sold nor held by a live order; `fromPriceCents` is the cheapest seat's price.",
    responses(
        (status = 200, description = "The flights", body = FlightList),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres or Redis is down", body = super::errors::ErrorBody),
    ),
)]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let flights = with_availability(&state.pool, &state.request_holds()).await?;
    let ids: Vec<_> = flights.iter().map(|f| f.id).collect();
    let tables = fares::tables(&state.pool, &ids).await?;
    let mut bodies: Vec<bodies::Flight> = bodies::all(&flights);
    for (body, table) in bodies.iter_mut().zip(&tables) {
        body.from_price_cents = Some(table.from_price().get());
    }
    Ok(HttpResponse::Ok().json(FlightList { flights: bodies }))
}

pub fn flight_id(path: &str) -> Result<Uuid, ApiError> {
    domain::parse_id(path).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidFlightId,
            format!("{path:?} is not a flight id (a UUID)"),
        )
    })
}

#[utoipa::path(
    get,
    path = "/api/flights/{id}",
    tag = "flights",
    summary = "A flight and its seat map",
    params(("id" = Uuid, Path, description = "The flight's id", example = "550e8400-e29b-41d4-a716-446655440001")),
    responses(
        (status = 200, description = "The flight with its seat map", body = FlightDetail),
        (status = 400, description = "`INVALID_FLIGHT_ID`: the id is not a UUID", body = super::errors::ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`", body = super::errors::ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres or Redis is down", body = super::errors::ErrorBody),
    ),
)]
pub async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = flight_id(&path)?;
    let holds = state.request_holds();
    let mut flight = flights::find(&state.pool, id.into()).await?;
    let seats = seat_views(&state.pool, &holds, id).await?;
    let table = fares::table(&state.pool, id.into()).await?;
    flight.available_seats = seats.iter().filter(|s| s.status == "available").count() as i32;
    let rows = seats.iter().map(|s| s.row).max().unwrap_or(0);
    let seats = seats
        .into_iter()
        .map(|seat| {
            let price =
                domain::SeatId::parse(&seat.id).map(|id| (table.price(&id), table.features(&id)));
            let (price, features) = price.map_err(|e| ApiError::internal(&e))?;
            Ok(PricedSeat {
                seat,
                cabin: price.cabin,
                features,
                price_cents: price.price_cents.get(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let mut body = bodies::Flight::from(&flight);
    body.from_price_cents = Some(table.from_price().get());
    Ok(HttpResponse::Ok().json(FlightDetail {
        flight: body,
        seat_map: SeatMap {
            rows,
            seats_per_row: domain::COLUMNS.len(),
            cabins: bodies::all(&table.cabins),
            seats,
        },
    }))
}

/// Event `seat`: one seat's new status.
#[derive(Serialize, ToSchema)]
pub struct SeatChange {
    #[schema(example = "12A")]
    seat: String,
    #[schema(value_type = SeatStatus)]
    status: &'static str,
}

/// Event `seats`: every seat's status.
#[derive(Serialize, ToSchema)]
pub struct SeatsSnapshot {
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
#[utoipa::path(
    get,
    path = "/api/flights/{id}/events",
    tag = "events",
    summary = "A flight's seat changes, as server-sent events",
    description = "First `event: seats` with every seat's status (`SeatsSnapshot`), then `event: seat` with `{seat, status}` (`SeatChange`) for each seat that is held, released or sold, within 500 ms. A `: keep-alive` comment every 15 s; the stream does not end by itself (it ends when the server shuts down: reconnect).",
    params(("id" = Uuid, Path, description = "The flight's id")),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "`INVALID_FLIGHT_ID`: the id is not a UUID", body = super::errors::ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`", body = super::errors::ErrorBody),
        (status = 429, description = "`TOO_MANY_STREAMS`: this client has `MAX_STREAMS_PER_CLIENT` event streams open (16); close one", body = super::errors::ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres or Redis is down", body = super::errors::ErrorBody),
    ),
)]
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = flight_id(&path)?;
    let lease = sse::lease(&state, &req).await?;
    flights::find(&state.pool, id.into()).await?;
    sse::feed(state.live.clone(), state.live.flight(id), lease).await
}

/// Event `flight`: one flight's availability.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlightAvailability {
    flight_id: Uuid,
    available_seats: i32,
}

/// Event `flights`: every flight's availability.
#[derive(Serialize, ToSchema)]
pub struct FlightsSnapshot {
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
#[utoipa::path(
    get,
    path = "/api/flights/events",
    tag = "events",
    summary = "Every flight's availability changes, as server-sent events",
    description = "First `event: flights` with every flight's availability (`FlightsSnapshot`), then `event: flight` with `{flightId, availableSeats}` (`FlightAvailability`) for each change. A `: keep-alive` comment every 15 s; the stream does not end by itself.",
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 429, description = "`TOO_MANY_STREAMS`: this client has `MAX_STREAMS_PER_CLIENT` event streams open (16); close one", body = super::errors::ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres or Redis is down", body = super::errors::ErrorBody),
    ),
)]
pub async fn list_events(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let lease = sse::lease(&state, &req).await?;
    sse::feed(state.live.clone(), state.live.flights(), lease).await
}
