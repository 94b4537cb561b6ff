//! The operator console's JSON API, `/api/ops/*`: sign-in and sessions,
//! what operators see (flights' sales, orders, an order's history, the
//! sweep's runs, the audit trail) and what they do (cancel an order, refund
//! a booking, close or open sales, add a flight), each action recorded in
//! the audit trail.
//!
//! **Nothing without a session.** Every route but `POST /api/ops/session`
//! takes an [`Operator`], the extractor that answers `401 UNAUTHENTICATED`
//! without a live session cookie and `403 CROSS_ORIGIN` for a state change
//! whose `Origin` is another site. `tests/ops.rs` walks the route table to
//! prove it for every ops route.
//!
//! The cookie (`flightctl_ops`) is opaque, HttpOnly, SameSite=Strict, Secure
//! over TLS; Postgres keeps only its SHA-256 (`ops::Token::digest`), with a
//! server-side expiry (`OPS_SESSION_TTL`) and revocation. Five failed
//! sign-ins for a name within 15 minutes are refused 429 for the rest of
//! the window.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::errors::ErrorBody;
use super::orders::StatusView;
use super::{ApiError, AppState, sse};
use crate::booking::refund::{self, RefundInput};
use crate::domain::OrderStatus;
use crate::ops::{self, Password, Token};
use crate::passengers::{Passenger, parse_reference};
use crate::store::ops::{
    self as store, AddFlight, Attempt, AuditEntry, FlightSales, NewFlight, OrderFilter,
    StatusChange, SweepRun,
};
use crate::store::refunds::{self, Refund, Request};
use crate::store::{flights, orders};

/// The session cookie's name.
pub const COOKIE: &str = "flightctl_ops";
/// Failed sign-ins per name in [`SIGN_IN_WINDOW`] before it is refused.
pub const SIGN_IN_FAILURES: u32 = 5;
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A signed-in operator: the extractor every ops route but sign-in takes.
#[derive(Clone, Debug)]
pub struct Operator {
    pub name: String,
    pub expires_at: DateTime<Utc>,
    token: Token,
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    /// The operator [`guard`] let through; checked again should a route
    /// ever be reached without the guard.
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(op) = req.extensions().get::<Operator>().cloned() {
                return Ok(op);
            }
            authenticate(&req).await
        })
    }
}

/// The session of a request, and whether it may change state from where it
/// comes: 401 without a live session, 403 for a state change from another
/// site.
async fn authenticate(req: &HttpRequest) -> Result<Operator, ApiError> {
    let token = req
        .cookie(COOKIE)
        .and_then(|c| Token::parse(c.value()))
        .ok_or_else(unauthenticated)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(&"no application state"))?;
    let session = store::session(&state.pool, &token.digest())
        .await?
        .ok_or_else(unauthenticated)?;
    if changes_state(req.method()) && !same_origin(req) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "CROSS_ORIGIN",
            "a state change must come from this site",
        ));
    }
    Ok(Operator {
        name: session.operator,
        expires_at: session.expires_at,
        token,
    })
}

/// Every `/api/ops/*` request but sign-in passes here before any handler
/// or extractor: no session, no route (a handler that forgot its
/// `Operator` parameter is still guarded).
pub async fn guard(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::ResponseError;
    let path = req.match_info().as_str();
    let sign_in = path == "/api/ops/session" && req.method() == Method::POST;
    // A path or method no route has is the router's (404, 405 with Allow).
    if !path.starts_with("/api/ops/") || sign_in || !routed(path, req.method()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    match authenticate(req.request()).await {
        Ok(op) => {
            req.extensions_mut().insert(op);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => {
            let response = e.error_response();
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// Whether the route table has `method` (HEAD: its GET) on `path`.
fn routed(path: &str, method: &Method) -> bool {
    let method = match *method {
        Method::HEAD => "get".to_string(),
        ref m => m.as_str().to_ascii_lowercase(),
    };
    let matches = |pattern: &str| {
        let (mut a, mut b) = (pattern.split('/'), path.split('/'));
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(p), Some(s)) if p.starts_with('{') || p == s => {}
                _ => return false,
            }
        }
    };
    super::ROUTES
        .iter()
        .any(|r| r.method == method && matches(r.path))
}

fn unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "sign in first: POST /api/ops/session",
    )
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The request's `Origin` (or, without one, `Sec-Fetch-Site`) says it comes
/// from this site. A client that sends neither (curl) is no browser a page
/// could drive, and the SameSite=Strict cookie stays home anyway.
fn same_origin(req: &HttpRequest) -> bool {
    let headers = req.headers();
    if let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) {
        let info = req.connection_info();
        return origin == format!("{}://{}", info.scheme(), info.host());
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

/// Record an action and its outcome in the audit trail; the action's answer
/// is passed through. An audit that cannot be written fails the answer (503),
/// though the action itself took place: the message says so.
async fn audited<T>(
    state: &AppState,
    op: &Operator,
    action: &str,
    target: &str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    let detail = result.as_ref().err().map(|e| e.message.clone());
    if let Err(e) = store::audit(
        &state.pool,
        &op.name,
        action,
        target,
        outcome,
        detail.as_deref(),
    )
    .await
    {
        tracing::error!(error = %e, action, target, "the audit trail could not record an action");
        return Err(ApiError::unavailable(format!(
            "{action} {target}: {outcome}, but the audit trail could not record it"
        )));
    }
    result
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "ada", "password": "correct horse battery staple"}))]
pub struct SignIn {
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    #[schema(min_length = 1, max_length = 1024)]
    password: String,
}

/// A session.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The operator signed in.
    name: String,
    /// When the session ends unless signed out before.
    expires_at: DateTime<Utc>,
}

#[utoipa::path(
    post,
    path = "/api/ops/session",
    tag = "operations console",
    summary = "Sign in: an operator's name and password",
    description = "Sets the session cookie `flightctl_ops` (HttpOnly, SameSite=Strict, Secure \
over TLS). Five failed sign-ins for a name within 15 minutes: 429 for the rest of the window.",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in", body = SessionView),
        (status = 400, description = "`INVALID_JSON` or `INVALID_REQUEST`: not `{name, password}`", body = ErrorBody),
        (status = 401, description = "`INVALID_CREDENTIALS`: no such operator, or another password", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_SIGN_INS`: retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let name = body.name.trim().to_string();
    let attempts = state.sign_ins.clone();
    let who = format!("name:{}", name.to_lowercase());
    if let Some(retry_after) = attempts.refused(&who).await? {
        return Err(ApiError {
            retry_after: Some(retry_after.min(u64::from(u32::MAX)) as u32),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_SIGN_INS",
                "too many failed sign-ins for this name; try again later",
            )
        });
    }
    let hash = match ops::valid_name(&name) {
        true => store::password_hash(&state.pool, &name).await?,
        false => None,
    };
    let password = Password::new(body.password.clone());
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| ops::decoy_hash().to_string());
    let verified = web::block(move || ops::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if !(known && verified) {
        attempts.failed(&who).await?;
        tracing::info!("an operator sign-in failed");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            "no operator with this name and password",
        ));
    }
    let token = Token::generate();
    let ttl = state.settings.server.ops_session_ttl;
    let expires_at = store::open_session(&state.pool, &token.digest(), &name, ttl).await?;
    store::audit(&state.pool, &name, "sign_in", &name, "ok", None).await?;
    tracing::info!(operator = %name, "operator signed in");
    let secure = req.connection_info().scheme() == "https";
    let cookie = Cookie::build(COOKIE, token.expose().to_string())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(
            ttl.as_secs() as i64
        ))
        .finish();
    Ok(HttpResponse::Ok()
        .cookie(cookie)
        .json(SessionView { name, expires_at }))
}

#[utoipa::path(
    get,
    path = "/api/ops/session",
    tag = "operations console",
    summary = "The session: who is signed in, until when",
    security(("ops_session" = [])),
    responses(
        (status = 200, description = "Signed in", body = SessionView),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
    ),
)]
pub async fn session(op: Operator) -> HttpResponse {
    HttpResponse::Ok().json(SessionView {
        name: op.name,
        expires_at: op.expires_at,
    })
}

#[utoipa::path(
    delete,
    path = "/api/ops/session",
    tag = "operations console",
    summary = "Sign out: the session ends at once",
    security(("ops_session" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`CROSS_ORIGIN`", body = ErrorBody),
    ),
)]
pub async fn sign_out(state: web::Data<AppState>, op: Operator) -> Result<HttpResponse, ApiError> {
    store::revoke_session(&state.pool, &op.token.digest()).await?;
    store::audit(&state.pool, &op.name, "sign_out", &op.name, "ok", None).await?;
    let mut gone = Cookie::build(COOKIE, "").path("/").finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

/// Every flight's sales.
#[derive(Serialize, ToSchema)]
pub struct FlightsView {
    flights: Vec<FlightSales>,
}

async fn flights_view(state: &AppState) -> Result<FlightsView, ApiError> {
    let mut flights = store::sales(&state.pool).await?;
    for f in &mut flights {
        let held = state.holds.list(f.flight.id).await?.len() as i64;
        f.held = held;
        f.available = (f.available - held).max(0);
    }
    Ok(FlightsView { flights })
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

/// How often the sales stream looks for a change.
const SALES_EVERY: Duration = Duration::from_secs(1);

#[utoipa::path(
    get,
    path = "/api/ops/flights/events",
    tag = "operations console",
    summary = "Every flight's sales, as server-sent events",
    description = "`event: flights` (`FlightsView`) at once, then whenever it changes (looked at \
every second); a `: keep-alive` comment every 15 s.",
    security(("ops_session" = [])),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
    ),
)]
pub async fn flights_events(
    state: web::Data<AppState>,
    _op: Operator,
) -> Result<HttpResponse, ApiError> {
    let first = flights_view(&state).await?;
    let first = serde_json::to_string(&first.flights).unwrap_or_default();
    let stream = futures::stream::unfold(
        (state, first, true, std::time::Instant::now()),
        |(state, last, fresh, quiet_since)| async move {
            if fresh {
                let text = format!("event: flights\ndata: {{\"flights\":{last}}}\n\n");
                return Some((text, (state, last, false, std::time::Instant::now())));
            }
            let mut quiet_since = quiet_since;
            loop {
                tokio::select! {
                    () = state.live.closing() => return None,
                    () = tokio::time::sleep(SALES_EVERY) => {}
                }
                if let Ok(now) = flights_view(&state).await {
                    let now = serde_json::to_string(&now.flights).unwrap_or_default();
                    if now != last {
                        let text = format!("event: flights\ndata: {{\"flights\":{now}}}\n\n");
                        return Some((text, (state, now, false, std::time::Instant::now())));
                    }
                }
                if quiet_since.elapsed() >= Duration::from_secs(15) {
                    quiet_since = std::time::Instant::now();
                    let text = sse::KEEP_ALIVE_EVENT.to_string();
                    return Some((text, (state, last, false, quiet_since)));
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
    /// 2–10 capital letters and digits, e.g. `FL301`.
    #[schema(value_type = String, pattern = "^[A-Z0-9]{2,10}$")]
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
    #[schema(value_type = i64, minimum = 0, maximum = 100000000)]
    price_cents: serde_json::Value,
}

fn invalid_flight(field: &'static str, message: &str) -> ApiError {
    ApiError::bad_request("INVALID_FLIGHT", format!("{field}: {message}")).about(None, field)
}

impl AddFlightBody {
    fn parse(&self) -> Result<NewFlight, ApiError> {
        let text = |v: &serde_json::Value, field: &'static str| {
            v.as_str()
                .map(|s| s.trim().to_string())
                .ok_or_else(|| invalid_flight(field, "must be a string"))
        };
        let number = text(&self.flight_number, "flightNumber")?;
        if !(2..=10).contains(&number.len())
            || !number
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(invalid_flight(
                "flightNumber",
                "2 to 10 capital letters and digits",
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
        Ok(NewFlight {
            flight_number: number,
            origin,
            destination,
            departure_time,
            arrival_time,
            rows: rows as i32,
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
        (status = 400, description = "`INVALID_FLIGHT`: `field` names the field at fault", body = ErrorBody),
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
                AddFlight::NumberTaken(n) => {
                    ApiError::conflict("FLIGHT_EXISTS", format!("flight number {n} is taken"))
                }
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
        .find(|f| f.flight.id == flight.id)
        .unwrap_or(FlightSales {
            sold: 0,
            held: 0,
            available: i64::from(flight.available_seats),
            revenue_cents: 0,
            bookings_per_minute: vec![0; store::SPARK_MINUTES],
            flight,
        }))
}

#[derive(Deserialize, ToSchema)]
pub struct SalesBody {
    /// True: on sale; false: creates are refused 409 `SALES_CLOSED`.
    open: bool,
}

#[utoipa::path(
    post,
    path = "/api/ops/flights/{id}/sales",
    tag = "operations console",
    summary = "Open or close a flight's sales (orders already made go on)",
    security(("ops_session" = [])),
    params(("id" = Uuid, Path, description = "The flight's id")),
    request_body = SalesBody,
    responses(
        (status = 200, description = "The flight, as the console lists it", body = FlightSales),
        (status = 400, description = "`INVALID_FLIGHT_ID`", body = ErrorBody),
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
            ApiError::bad_request(
                "INVALID_FLIGHT_ID",
                format!("{:?} is not a flight id", *path),
            )
        })?;
        Ok(store::set_sales(&state.pool, id, body.open).await?)
    };
    let flight = audited(&state, &op, action, &path, set.await).await?;
    Ok(HttpResponse::Ok().json(sales_of(&state, flight).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    /// Only orders of this flight.
    #[param(value_type = Option<Uuid>)]
    flight: Option<String>,
    /// A booking reference, an order id, or a passenger's family name.
    #[param(max_length = 64, pattern = "^[^\\x00-\\x1F\\x7F]*$")]
    q: Option<String>,
    /// From 1.
    #[param(minimum = 1, maximum = 100000)]
    page: Option<i64>,
}

/// An order in the console's list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    order_id: Uuid,
    flight_id: Uuid,
    flight_number: String,
    status: OrderStatus,
    seats: Vec<String>,
    booking_reference: Option<String>,
    passengers: Vec<Passenger>,
    total_price_cents: i64,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

/// A page of orders, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrdersView {
    orders: Vec<OrderItem>,
    page: i64,
    page_size: i64,
    total: i64,
}

#[utoipa::path(
    get,
    path = "/api/ops/orders",
    tag = "operations console",
    summary = "Orders, newest first: by status, flight, reference, family name or order id",
    security(("ops_session" = [])),
    params(OrdersQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrdersView),
        (status = 400, description = "`INVALID_QUERY`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn orders_list(
    state: web::Data<AppState>,
    _op: Operator,
    query: web::Query<OrdersQuery>,
) -> Result<HttpResponse, ApiError> {
    let bad = |m: &str| ApiError::bad_request("INVALID_QUERY", m.to_string());
    let status = match query.status.as_deref() {
        Some(s) => Some(
            OrderStatus::parse(s)
                .ok_or_else(|| bad("status: not an order status"))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let flight = match query.flight.as_deref() {
        Some(f) => Some(crate::domain::parse_id(f).ok_or_else(|| bad("flight: not a flight id"))?),
        None => None,
    };
    let page = query.page.unwrap_or(1);
    if !(1..=100_000).contains(&page) {
        return Err(bad("page: from 1"));
    }
    if let Some(q) = &query.q
        && (q.chars().count() > 64 || q.chars().any(|c| c < ' ' || c == '\u{7f}'))
    {
        return Err(bad(
            "q: at most 64 characters, none of them control characters",
        ));
    }
    let filter = OrderFilter {
        status,
        flight,
        q: query.q.clone(),
        page,
    };
    let found = store::orders(&state.pool, &filter).await?;
    let orders = found.items.into_iter().map(|(o, number)| OrderItem {
        order_id: o.id,
        flight_id: o.flight_id,
        flight_number: number,
        status: o.status,
        seats: o.seats,
        booking_reference: o.reference,
        passengers: o.passengers,
        total_price_cents: o.total_price_cents,
        created_at: o.created_at,
        updated_at: o.updated_at,
    });
    Ok(HttpResponse::Ok().json(OrdersView {
        orders: orders.collect(),
        page: found.page,
        page_size: found.page_size,
        total: found.total,
    }))
}

/// One order, all of it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    order: StatusView,
    flight_number: String,
    created_at: Option<DateTime<Utc>>,
    confirmed_at: Option<DateTime<Utc>>,
    attempts: Vec<Attempt>,
    /// Every status the order had, as the database recorded it.
    history: Vec<StatusChange>,
    refund: Option<Refund>,
    /// The order's workflow in the Temporal UI.
    workflow_url: String,
}

#[utoipa::path(
    get,
    path = "/api/ops/orders/{id}",
    tag = "operations console",
    summary = "One order: its row, passengers, payment attempts, status history, refund",
    security(("ops_session" = [])),
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "`INVALID_ORDER_ID`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn order(
    state: web::Data<AppState>,
    _op: Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::orders::order_id(&path)?;
    let order = orders::find(&state.pool, id).await?;
    let flight = flights::find(&state.pool, order.flight_id).await?;
    let ui = state.settings.temporal.ui_url.trim_end_matches('/');
    let namespace = &state.settings.temporal.namespace;
    Ok(HttpResponse::Ok().json(OrderView {
        flight_number: flight.flight_number,
        created_at: order.created_at,
        confirmed_at: order.confirmed_at,
        attempts: store::attempts(&state.pool, id).await?,
        history: store::history(&state.pool, id).await?,
        refund: refunds::find(&state.pool, id).await?,
        workflow_url: format!(
            "{ui}/namespaces/{namespace}/workflows/{}",
            crate::domain::workflow_id(id)
        ),
        order: super::orders::status_view(&state, order),
    }))
}

#[utoipa::path(
    post,
    path = "/api/ops/orders/{id}/cancel",
    tag = "operations console",
    summary = "Cancel a live order: its holds are released at once",
    security(("ops_session" = [])),
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "Cancelled", body = super::orders::Ack),
        (status = 400, description = "`INVALID_ORDER_ID`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`CROSS_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_NOT_MODIFIABLE`, `ORDER_EXPIRED`", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY` or `SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
        (status = 504, description = "`OUTCOME_UNKNOWN`", body = ErrorBody),
    ),
)]
pub async fn cancel_order(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let cancel = async {
        let id = super::orders::order_id(&path)?;
        super::orders::cancel_live(&state, id).await
    };
    let ack = audited(&state, &op, "cancel_order", &path, cancel.await).await?;
    Ok(HttpResponse::Ok().json(ack))
}

#[utoipa::path(
    post,
    path = "/api/ops/bookings/{reference}/refund",
    tag = "operations console",
    summary = "Refund a confirmed booking (whatever the departure cutoff)",
    security(("ops_session" = [])),
    params(("reference" = String, Path, description = "The booking reference", example = "K7PQ2X")),
    responses(
        (status = 202, description = "The refund is under way", body = super::bookings::Cancelled),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`CROSS_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`BOOKING_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`BOOKING_NOT_CANCELLABLE`: refunded or refunding already", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
    ),
)]
pub async fn refund_booking(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let refund = async {
        let not_found =
            || ApiError::not_found("BOOKING_NOT_FOUND", "no booking with this reference");
        let reference = parse_reference(&path).ok_or_else(not_found)?;
        let booking = refunds::booking(&state.pool, &reference)
            .await?
            .filter(|b| b.order.status.was_sold())
            .ok_or_else(not_found)?;
        match refunds::request(&state.pool, booking.order.id, Duration::ZERO, None).await? {
            Request::Accepted | Request::Repeated => {}
            Request::WindowClosed | Request::NotCancellable(_) => {
                return Err(ApiError::conflict(
                    "BOOKING_NOT_CANCELLABLE",
                    format!("the booking is {}: no refund to make", booking.order.status),
                ));
            }
        }
        start_refund(&state, booking.order.id).await;
        Ok(super::bookings::Cancelled {
            reference,
            status: OrderStatus::RefundPending,
        })
    };
    let answer = audited(&state, &op, "refund_booking", &path, refund.await).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(answer))
}

async fn start_refund(state: &AppState, order_id: Uuid) {
    let input = RefundInput {
        order_id,
        max_attempts: state.settings.booking.refund_max_attempts,
    };
    let queue = &state.settings.temporal.task_queue;
    if let Ok(client) = state.temporal().await
        && let Err(e) = refund::start(client, queue, input).await
    {
        tracing::warn!(order_id = %order_id, error = %e, "refund recorded; the sweep starts its workflow");
    }
}

/// The sweep's recent runs.
#[derive(Serialize, ToSchema)]
pub struct SweepView {
    runs: Vec<SweepRun>,
}

#[utoipa::path(
    get,
    path = "/api/ops/reconciliation",
    tag = "operations console",
    summary = "The reconciliation sweep's recent runs and what each fixed",
    security(("ops_session" = [])),
    responses(
        (status = 200, description = "The runs, newest first", body = SweepView),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn reconciliation(
    state: web::Data<AppState>,
    _op: Operator,
) -> Result<HttpResponse, ApiError> {
    let runs = store::sweep_runs(&state.pool, 100).await?;
    Ok(HttpResponse::Ok().json(SweepView { runs }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From 1.
    #[param(minimum = 1, maximum = 100000)]
    page: Option<i64>,
}

/// A page of the audit trail, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    entries: Vec<AuditEntry>,
    page: i64,
    page_size: i64,
    total: i64,
}

#[utoipa::path(
    get,
    path = "/api/ops/audit",
    tag = "operations console",
    summary = "The audit trail: every operator action, who, what, when, how it ended",
    security(("ops_session" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the trail", body = AuditView),
        (status = 400, description = "`INVALID_QUERY`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn audit(
    state: web::Data<AppState>,
    _op: Operator,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page.unwrap_or(1);
    if !(1..=100_000).contains(&page) {
        return Err(ApiError::bad_request("INVALID_QUERY", "page: from 1"));
    }
    let found = store::audit_page(&state.pool, page).await?;
    Ok(HttpResponse::Ok().json(AuditView {
        entries: found.items,
        page: found.page,
        page_size: found.page_size,
        total: found.total,
    }))
}
