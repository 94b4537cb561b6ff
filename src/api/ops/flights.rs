//! What operators see of flights and do to them: sales, new flights.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audited;
use super::auth::Operator;
use crate::api::bodies::{self, FlightSales};
use crate::api::errors::ErrorBody;
use crate::api::{ApiError, AppState, ErrorCode, seats, sse};
use crate::money::Cents;
use crate::store::flights;
use crate::store::ops::{self as store, AddFlight, NewFlight};

/// Every flight's sales.
#[derive(Serialize, ToSchema)]
pub struct FlightsView {
    flights: Vec<FlightSales>,
}

async fn flights_view(state: &AppState) -> Result<FlightsView, ApiError> {
    let mut flights = store::sales(&state.pool).await?;
    let ids: Vec<_> = flights.iter().map(|f| f.flight.id).collect();
    let reserved = seats::reserved(&state.pool, &state.request_holds(), &ids).await?;
    for (f, reserved) in flights.iter_mut().zip(reserved) {
        f.held = reserved.len() as i64;
        f.available = (f.available - f.held).max(0);
    }
    Ok(FlightsView {
        flights: bodies::all(&flights),
    })
}

#[utoipa::path(
    get,
    path = "/api/ops/flights",
    tag = "operations console",
    summary = "Every flight's sales: seats sold, held and available, revenue, bookings per minute",
    security(("ops_session" = [])),
    responses(
        (status = 200, description = "The flights", body = FlightsView),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn flights(state: web::Data<AppState>, _op: Operator) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(flights_view(&state).await?))
}

/// How often the sales stream looks for a change, and whether its session
/// still lives.
const SALES_EVERY: Duration = super::auth::SESSION_RECHECK;

#[utoipa::path(
    get,
    path = "/api/ops/flights/events",
    tag = "operations console",
    summary = "Every flight's sales, as server-sent events",
    description = "`event: flights` (`FlightsView`) at once, then whenever it changes (looked at \
every second); a `: keep-alive` comment every 15 s. The stream ends within a second of its \
session ending (signed out, revoked, expired).",
    security(("ops_session" = [])),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
    ),
)]
pub async fn flights_events(
    state: web::Data<AppState>,
    op: Operator,
) -> Result<HttpResponse, ApiError> {
    let first = flights_view(&state).await?;
    let first = serde_json::to_string(&first.flights).unwrap_or_default();
    let stream = futures::stream::unfold(
        (state, op, first, true, std::time::Instant::now()),
        |(state, op, last, fresh, quiet_since)| async move {
            if fresh {
                let text = format!("event: flights\ndata: {{\"flights\":{last}}}\n\n");
                return Some((text, (state, op, last, false, std::time::Instant::now())));
            }
            let mut quiet_since = quiet_since;
            loop {
                tokio::select! {
                    () = state.live.closing() => return None,
                    () = tokio::time::sleep(SALES_EVERY) => {}
                }
                // Signed out or revoked: the stream ends with the session.
                if op.still_signed_in(&state).await == Some(false) {
                    return None;
                }
                if let Ok(now) = flights_view(&state).await {
                    let now = serde_json::to_string(&now.flights).unwrap_or_default();
                    if now != last {
                        let text = format!("event: flights\ndata: {{\"flights\":{now}}}\n\n");
                        return Some((text, (state, op, now, false, std::time::Instant::now())));
                    }
                }
                if quiet_since.elapsed() >= Duration::from_secs(15) {
                    quiet_since = std::time::Instant::now();
                    let text = sse::KEEP_ALIVE_EVENT.to_string();
                    return Some((text, (state, op, last, false, quiet_since)));
                }
            }
        },
    );
    Ok(sse::respond(stream))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"flightNumber": "FL301", "origin": "BER", "destination": "LIS",
    "departureTime": "2030-06-01T08:30:00Z", "arrivalTime": "2030-06-01T11:45:00Z",
    "rows": 20, "seatLetters": "ABCDEF", "priceCents": 12900}))]
pub struct AddFlightBody {
    /// What a boarding pass carries: 1–3 capital letters, 1–4 digits and at
    /// most one letter, e.g. `FL301`.
    #[schema(value_type = String, pattern = "^[A-Z]{1,3}[0-9]{1,4}[A-Z]?$")]
    flight_number: serde_json::Value,
    /// A 3-letter airport code.
    #[schema(value_type = String, pattern = "^[A-Z]{3}$")]
    origin: serde_json::Value,
    #[schema(value_type = String, pattern = "^[A-Z]{3}$")]
    destination: serde_json::Value,
    /// RFC 3339, in the future.
    #[schema(value_type = String, format = DateTime)]
    departure_time: serde_json::Value,
    /// RFC 3339, after departure.
    #[schema(value_type = String, format = DateTime)]
    arrival_time: serde_json::Value,
    /// 1 to 60.
    #[schema(value_type = i32, minimum = 1, maximum = 60)]
    rows: serde_json::Value,
    /// Distinct letters of A–F, e.g. `ABCDEF` or `ACDF`.
    #[schema(value_type = String, pattern = "^[A-F]{1,6}$")]
    seat_letters: serde_json::Value,
    /// The economy fare: the one cabin's fare when `cabins` is absent.
    #[schema(value_type = i64, minimum = 0, maximum = 100000000)]
    price_cents: serde_json::Value,
    /// The cabins, each a range of rows; together they cover every row
    /// without overlap (else 400 `INVALID_CABINS`). Absent: one economy
    /// cabin over every row at `priceCents`, refundable without a fee.
    #[serde(default)]
    #[schema(value_type = Option<Vec<CabinInput>>)]
    cabins: serde_json::Value,
    /// Exit rows (EXIT_ROW and EXTRA_LEGROOM seats).
    #[serde(default)]
    #[schema(value_type = Option<Vec<i32>>)]
    exit_rows: serde_json::Value,
    /// What a feature adds to a seat's cabin fare, e.g.
    /// `{"EXIT_ROW": 2500, "WINDOW": 500}`.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::HashMap<String, i64>>)]
    surcharges: serde_json::Value,
    /// A scheduled sale: RFC 3339, before the departure. Until then creates
    /// are refused 409 `SALES_NOT_OPEN` and buyers wait in the flight's
    /// queue; absent or null: on sale at once.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    sales_open_at: serde_json::Value,
}

/// One cabin of a new flight.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CabinInput {
    code: crate::fares::Cabin,
    /// Shown on the seat map; the code's name when absent.
    name: Option<String>,
    first_row: i32,
    last_row: i32,
    #[schema(minimum = 0)]
    price_cents: i64,
    refundable: bool,
    #[schema(minimum = 0)]
    cancellation_fee_cents: Option<i64>,
}

fn invalid_cabins(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidCabins, message).about(None, "cabins")
}

/// A cabin of a request body, or what is wrong with it.
fn cabin_of(v: &serde_json::Value) -> Result<crate::fares::CabinFare, ApiError> {
    use crate::fares::{Cabin, CabinFare};
    let code = v["code"].as_str().and_then(Cabin::parse).ok_or_else(|| {
        invalid_cabins("cabins: code must be FIRST, BUSINESS, PREMIUM_ECONOMY or ECONOMY")
    })?;
    let int = |field: &str| {
        v[field]
            .as_i64()
            .ok_or_else(|| invalid_cabins(format!("cabins: {code} {field} must be a whole number")))
    };
    let row = |field: &str| {
        int(field)?
            .try_into()
            .map_err(|_| invalid_cabins(format!("cabins: {code} {field} is out of range")))
    };
    let name = match &v["name"] {
        serde_json::Value::Null => code.default_name().to_string(),
        n => n
            .as_str()
            .map(|s| s.trim().to_string())
            .ok_or_else(|| invalid_cabins(format!("cabins: {code} name must be a string")))?,
    };
    let fee = match v["cancellationFeeCents"] {
        serde_json::Value::Null => 0,
        _ => int("cancellationFeeCents")?,
    };
    let refundable = v["refundable"].as_bool().ok_or_else(|| {
        invalid_cabins(format!("cabins: {code} refundable must be true or false"))
    })?;
    Ok(CabinFare {
        code,
        name,
        first_row: row("firstRow")?,
        last_row: row("lastRow")?,
        price_cents: Cents::new(int("priceCents")?),
        refundable,
        cancellation_fee_cents: Cents::new(fee),
    })
}

fn invalid_flight(field: &'static str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidFlight, format!("{field}: {message}")).about(None, field)
}

impl AddFlightBody {
    fn parse(&self) -> Result<NewFlight, ApiError> {
        let text = |v: &serde_json::Value, field: &'static str| {
            v.as_str()
                .map(|s| s.trim().to_string())
                .ok_or_else(|| invalid_flight(field, "must be a string"))
        };
        let number = text(&self.flight_number, "flightNumber")?;
        // What a boarding pass carries (src/bcbp.rs): a 1-3 letter carrier,
        // 1-4 digits, at most one letter after them.
        if crate::bcbp::carrier_and_number(&number).is_err() {
            return Err(invalid_flight(
                "flightNumber",
                "1 to 3 capital letters, then 1 to 4 digits and at most one letter, like FL305",
            ));
        }
        let airport = |v: &serde_json::Value, field: &'static str| {
            let code = text(v, field)?;
            match code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
                true => Ok(code),
                false => Err(invalid_flight(field, "a 3-letter airport code such as LIS")),
            }
        };
        let origin = airport(&self.origin, "origin")?;
        let destination = airport(&self.destination, "destination")?;
        if origin == destination {
            return Err(invalid_flight("destination", "must differ from the origin"));
        }
        let time = |v: &serde_json::Value, field: &'static str| {
            let t = text(v, field)?;
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| invalid_flight(field, "an RFC 3339 time such as 2030-06-01T08:30:00Z"))
        };
        let departure_time = time(&self.departure_time, "departureTime")?;
        let arrival_time = time(&self.arrival_time, "arrivalTime")?;
        if departure_time <= Utc::now() {
            return Err(invalid_flight("departureTime", "must be in the future"));
        }
        if arrival_time <= departure_time {
            return Err(invalid_flight("arrivalTime", "must be after the departure"));
        }
        let rows = self
            .rows
            .as_i64()
            .filter(|r| (1..=60).contains(r))
            .ok_or_else(|| invalid_flight("rows", "a whole number from 1 to 60"))?;
        let letters = text(&self.seat_letters, "seatLetters")?;
        let mut seat_letters: Vec<char> = letters.chars().collect();
        seat_letters.sort_unstable();
        seat_letters.dedup();
        if seat_letters.is_empty()
            || seat_letters.len() != letters.chars().count()
            || !seat_letters
                .iter()
                .all(|c| crate::domain::COLUMNS.contains(c))
        {
            return Err(invalid_flight(
                "seatLetters",
                "distinct letters of A to F, such as ABCDEF",
            ));
        }
        let price_cents = self
            .price_cents
            .as_i64()
            .filter(|p| (0..=100_000_000).contains(p))
            .ok_or_else(|| invalid_flight("priceCents", "a whole number of cents, 0 or more"))?;
        let price_cents = Cents::new(price_cents);
        let rows = rows as i32;
        let cabins = match &self.cabins {
            serde_json::Value::Null => vec![crate::fares::CabinFare::economy(rows, price_cents)],
            serde_json::Value::Array(items) => {
                items.iter().map(cabin_of).collect::<Result<Vec<_>, _>>()?
            }
            _ => return Err(invalid_cabins("cabins: must be a list of cabins")),
        };
        crate::fares::validate_cabins(&cabins, rows).map_err(invalid_cabins)?;
        let exit_rows: Vec<i32> = match &self.exit_rows {
            serde_json::Value::Null => Vec::new(),
            v => serde_json::from_value(v.clone())
                .ok()
                .filter(|r: &Vec<i32>| r.iter().all(|r| (1..=rows).contains(r)))
                .ok_or_else(|| invalid_flight("exitRows", "a list of the flight's rows"))?,
        };
        let surcharges = match &self.surcharges {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    let feature = crate::fares::Feature::parse(k);
                    match (feature, v.as_i64().filter(|c| *c >= 0)) {
                        (Some(f), Some(c)) => Ok((f, Cents::new(c))),
                        _ => Err(invalid_flight(
                            "surcharges",
                            "feature codes (WINDOW, AISLE, MIDDLE, EXIT_ROW, EXTRA_LEGROOM) to cents, 0 or more",
                        )),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(invalid_flight("surcharges", "an object of feature codes to cents")),
        };
        let sales_open_at = match &self.sales_open_at {
            serde_json::Value::Null => None,
            v => Some(time(v, "salesOpenAt")?),
        };
        if sales_open_at.is_some_and(|at| at >= departure_time) {
            return Err(invalid_flight(
                "salesOpenAt",
                "must be before the departure",
            ));
        }
        Ok(NewFlight {
            cabins,
            exit_rows,
            surcharges,
            sales_open_at,
            flight_number: number,
            origin,
            destination,
            departure_time,
            arrival_time,
            rows,
            seat_letters,
            price_cents,
        })
    }
}

#[utoipa::path(
    post,
    path = "/api/ops/flights",
    tag = "operations console",
    summary = "Add a flight and its seats (one transaction); on sale at once",
    security(("ops_session" = [])),
    request_body = AddFlightBody,
    responses(
        (status = 201, description = "The flight, as the console lists it", body = FlightSales),
        (status = 400, description = "`INVALID_FLIGHT`: `field` names the field at fault; `INVALID_CABINS`: the cabins do not cover the rows once each, or a fare or fee is below 0 (the message says which)", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`CROSS_ORIGIN`", body = ErrorBody),
        (status = 409, description = "`FLIGHT_EXISTS`: the flight number is taken", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn add_flight(
    state: web::Data<AppState>,
    op: Operator,
    body: web::Json<AddFlightBody>,
) -> Result<HttpResponse, ApiError> {
    let target = body.flight_number.as_str().unwrap_or("?").to_string();
    let added = async {
        let new = body.parse()?;
        store::add_flight(&state.pool, &new)
            .await
            .map_err(|e| match e {
                AddFlight::NumberTaken(n) => ApiError::new(
                    ErrorCode::FlightExists,
                    format!("flight number {n} is taken"),
                ),
                AddFlight::Store(e) => e.into(),
            })
    };
    let flight = audited(&state, &op, "add_flight", &target, added.await).await?;
    Ok(HttpResponse::Created().json(sales_of(&state, flight).await?))
}

/// A flight as the console lists it.
async fn sales_of(state: &AppState, flight: flights::Flight) -> Result<FlightSales, ApiError> {
    let listed = flights_view(state).await?.flights;
    Ok(listed
        .into_iter()
        .find(|f| f.flight.id == flight.id.uuid())
        .unwrap_or(FlightSales {
            sold: 0,
            held: 0,
            available: i64::from(flight.available_seats),
            revenue_cents: 0,
            bookings_per_minute: vec![0; store::SPARK_MINUTES],
            flight: bodies::Flight::from(&flight),
        }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SalesBody {
    /// True: on sale; false: creates are refused 409 `SALES_CLOSED`.
    open: bool,
    /// A scheduled sale's opening (RFC 3339): creates are refused 409
    /// `SALES_NOT_OPEN` before it and need an admission from the flight's
    /// queue from it. Null: no scheduled sale; absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    opens_at: Option<serde_json::Value>,
    /// The most buyers the flight's queue admits per minute (1 or more).
    /// Null: no cap (paced by the engine alone); absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>, minimum = 1)]
    admit_per_minute: Option<serde_json::Value>,
}

/// A member given, null included (`Some(Null)`), apart from one absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

impl SalesBody {
    /// The change of the scheduled sale and of the cap: `None` leaves one
    /// as it is, `Some(None)` clears it.
    fn schedule(&self) -> Result<store::Schedule, ApiError> {
        let opens_at = match &self.opens_at {
            None => None,
            Some(serde_json::Value::Null) => Some(None),
            Some(v) => {
                let at = v
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
                    .ok_or_else(|| {
                        invalid_flight("opensAt", "an RFC 3339 time such as 2030-06-01T08:30:00Z")
                    })?;
                Some(Some(at.with_timezone(&Utc)))
            }
        };
        let admit_per_minute = match &self.admit_per_minute {
            None => None,
            Some(serde_json::Value::Null) => Some(None),
            Some(v) => Some(Some(
                v.as_i64()
                    .filter(|n| (1..=i64::from(i32::MAX)).contains(n))
                    .ok_or_else(|| invalid_flight("admitPerMinute", "a whole number, 1 or more"))?
                    as i32,
            )),
        };
        Ok(store::Schedule {
            opens_at,
            admit_per_minute,
        })
    }
}

#[utoipa::path(
    post,
    path = "/api/ops/flights/{id}/sales",
    tag = "operations console",
    summary = "Open or close a flight's sales (orders already made go on), schedule its sale, cap its queue's admissions",
    security(("ops_session" = [])),
    params(("id" = Uuid, Path, description = "The flight's id")),
    request_body = SalesBody,
    responses(
        (status = 200, description = "The flight, as the console lists it", body = FlightSales),
        (status = 400, description = "`INVALID_FLIGHT_ID`; `INVALID_FLIGHT`: `opensAt` or `admitPerMinute` is not valid (`field` names it); nothing was changed", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`CROSS_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn sales(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
    body: web::Json<SalesBody>,
) -> Result<HttpResponse, ApiError> {
    let action = if body.open {
        "open_sales"
    } else {
        "close_sales"
    };
    let set = async {
        let id = crate::domain::parse_id(&path).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidFlightId,
                format!("{:?} is not a flight id", *path),
            )
        })?;
        let schedule = body.schedule()?;
        Ok(store::set_sales(&state.pool, id.into(), body.open, &schedule).await?)
    };
    let flight = audited(&state, &op, action, &path, set.await).await?;
    Ok(HttpResponse::Ok().json(sales_of(&state, flight).await?))
}

/// New fares for some of a flight's cabins.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"fares": [{"code": "ECONOMY", "priceCents": 14900}]}))]
pub struct FaresBody {
    #[schema(value_type = Vec<FareInput>)]
    fares: serde_json::Value,
}

/// One cabin's new fare; rules left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct FareInput {
    code: crate::fares::Cabin,
    #[schema(minimum = 0)]
    price_cents: i64,
    refundable: Option<bool>,
    #[schema(minimum = 0)]
    cancellation_fee_cents: Option<i64>,
}

/// A flight's cabins after a fare change.
#[derive(Serialize, ToSchema)]
pub struct FlightCabins {
    cabins: Vec<bodies::CabinBody>,
}

fn fare_change(v: &serde_json::Value) -> Result<crate::store::fares::FareChange, ApiError> {
    let code = (v["code"].as_str())
        .and_then(crate::fares::Cabin::parse)
        .ok_or_else(|| {
            invalid_cabins("fares: code must be FIRST, BUSINESS, PREMIUM_ECONOMY or ECONOMY")
        })?;
    let cents = |field: &str, v: &serde_json::Value| {
        v.as_i64()
            .filter(|c| *c >= 0)
            .map(Cents::new)
            .ok_or_else(|| {
                invalid_cabins(format!(
                    "fares: {code} {field} must be a whole number of cents, 0 or more"
                ))
            })
    };
    let price_cents = cents("priceCents", &v["priceCents"])?;
    let cancellation_fee_cents = match &v["cancellationFeeCents"] {
        serde_json::Value::Null => None,
        fee => Some(cents("cancellationFeeCents", fee)?),
    };
    let refundable = match &v["refundable"] {
        serde_json::Value::Null => None,
        r => Some(r.as_bool().ok_or_else(|| {
            invalid_cabins(format!("fares: {code} refundable must be true or false"))
        })?),
    };
    Ok(crate::store::fares::FareChange {
        cabin: code,
        price_cents,
        refundable,
        cancellation_fee_cents,
    })
}

#[utoipa::path(
    put,
    path = "/api/ops/flights/{id}/fares",
    tag = "operations console",
    summary = "Change cabin fares and rules for new holds (audited)",
    description = "Seats held or sold keep the price and rules fixed when they were taken.",
    security(("ops_session" = [])),
    params(("id" = Uuid, Path, description = "The flight's id")),
    request_body = FaresBody,
    responses(
        (status = 200, description = "The flight's cabins now", body = FlightCabins),
        (status = 400, description = "`INVALID_FLIGHT_ID`; `INVALID_CABINS`: a code the flight has no cabin for, or a fare or fee below 0", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`CROSS_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn set_fares(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
    body: web::Json<FaresBody>,
) -> Result<HttpResponse, ApiError> {
    let set = async {
        let id: crate::domain::FlightId = crate::domain::parse_id(&path)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidFlightId,
                    format!("{:?} is not a flight id", *path),
                )
            })?
            .into();
        let changes = match &body.fares {
            serde_json::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(fare_change)
                .collect::<Result<Vec<_>, _>>(
            )?,
            _ => return Err(invalid_cabins("fares: a list of at least one cabin's fare")),
        };
        flights::find(&state.pool, id).await?;
        let conn = state
            .pool
            .get()
            .await
            .map_err(crate::store::StoreError::from)?;
        let missing = crate::store::fares::set_fares(&conn, id, &changes).await?;
        if let Some(cabin) = missing.first() {
            return Err(invalid_cabins(format!(
                "fares: the flight has no {cabin} cabin"
            )));
        }
        let table = crate::store::fares::table(&state.pool, id).await?;
        Ok(FlightCabins {
            cabins: bodies::all(&table.cabins),
        })
    };
    let cabins = audited(&state, &op, "set_fares", &path, set.await).await?;
    Ok(HttpResponse::Ok().json(cabins))
}
