//! The order endpoints: parse at the edge, call one flow (`crate::orders`),
//! map what it came to once (`answers`). The API never writes booking
//! state: the flows start the order's workflow and talk to it. Status and
//! its event stream are read from the order row the workflow saves at every
//! transition, so watching an order costs the engine nothing.
//!
//! - `answers.rs` — the one mapping of the flows' outcomes to HTTP, and of
//!   the answers an `Idempotency-Key` keeps;
//! - `views.rs` — bodies, answers, the status view;
//! - `stream.rs` — an order's event stream.

pub(super) mod answers;
mod stream;
mod views;

use crate::api::ErrorCode;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::errors::ErrorBody;
use super::idempotency::{Answer, Key};
use super::{ApiError, AppState, request_id, sse};
use crate::domain::{OrderStatus, PaymentCode, workflow_id};
use crate::orders::idempotency as keys;
use crate::orders::{self as flows, Hold, Refusal};
use crate::store::{flights, orders};

pub use stream::{last_event_id, order_events};
pub use views::{
    Ack, ChangeSeats, CreateOrder, Held, OrderDetail, PassengersBody, PayBody, StatusView, order_id,
};
use views::{seat_request, selection, status_of, status_with_refund};

/// The order's status view with its refund (for the console).
pub async fn status_view(state: &AppState, order: orders::Order) -> Result<StatusView, ApiError> {
    status_with_refund(state, order).await
}

/// What the order flows work with, for this request from `req`'s client.
pub(super) fn context<'a>(state: &'a AppState, req: &HttpRequest) -> flows::Context<'a> {
    flows::Context {
        settings: &state.settings,
        pool: &state.pool,
        holds: state.request_holds(),
        engine: &state.engine,
        admission: &state.admission,
        client: state.client_key(req),
        share: state.request_share(),
        request_id: request_id::current(),
        name_order: request_id::order,
        room: &state.room,
    }
}

/// The answer to a create that held seats.
fn created(hold: &Hold) -> Answer {
    let held = Held::of(hold, Some(workflow_id(hold.order_id)));
    Answer::new(StatusCode::CREATED, held)
}

/// The answer to a payment accepted for validation.
fn accepted(order_id: Uuid, status: OrderStatus) -> Answer {
    Answer::new(StatusCode::ACCEPTED, Ack { order_id, status })
}

#[utoipa::path(
    post,
    path = "/api/orders",
    tag = "orders",
    summary = "Hold seats: create an order",
    description = "Takes every seat or none. A seat already held or sold is refused (409) \
without starting a workflow; any answer but 201 leaves nothing held. With `Idempotency-Key`, \
the same key and body return the same answer for 24 h (one order), another body is 422.",
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x20-\\x7E]+$",
         description = "1–255 printable ASCII characters: retry with the same key and body to get the same order"),
    ),
    request_body = CreateOrder,
    responses(
        (status = 201, description = "The seats are held for the new order", body = Held,
         links(
            ("status" = (operation_id = "orders_status", parameters(("id" = "$response.body#/orderId")))),
            ("changeSeats" = (operation_id = "orders_change_seats", parameters(("id" = "$response.body#/orderId")))),
            ("pay" = (operation_id = "orders_pay", parameters(("id" = "$response.body#/orderId")))),
            ("cancel" = (operation_id = "orders_cancel", parameters(("id" = "$response.body#/orderId")))),
         )),
        (status = 400, description = "`INVALID_FLIGHT_ID`: not a UUID; `INVALID_SEATS`: not 1–9 distinct seat ids, or a seat the flight does not have; `INVALID_IDEMPOTENCY_KEY`", body = ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`SEATS_UNAVAILABLE`: a seat is sold or held by another order (the message names them)", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`: the key was used with another body", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_LIVE_ORDERS`: this client holds `MAX_LIVE_ORDERS_PER_CLIENT` live orders (4) already, `Retry-After` the latest its first one ends; `TOO_MANY_REQUESTS`: this client has its share of booking calls in progress (`MAX_IN_FLIGHT_PER_CLIENT`). Nothing was held", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY`: too many booking calls in flight, or the order was refused as too late (nothing was changed); `SERVICE_UNAVAILABLE`: a dependency is down (nothing was changed)", body = ErrorBody),
        (status = 504, description = "`OUTCOME_UNKNOWN`: the engine did not answer in time; the message names the status URL, and a retry with the same `Idempotency-Key` answers the outcome", body = ErrorBody),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<CreateOrder>,
) -> Result<HttpResponse, ApiError> {
    let key = Key::from_request(&req)?;
    let new = seat_request(&body)?;
    let keep = |outcome: Result<&Hold, &Refusal>| answers::kept(outcome, created);
    let key = key.as_ref().map(|key| keys::Key {
        value: key.as_str(),
        keep: &keep,
    });
    let admission = flows::RoomAdmission {
        token: admission_header(&req)?,
        key: req
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok()),
    };
    answers::reply(
        flows::create_in_room(&context(&state, &req), &new, key, admission).await,
        created,
    )
}

/// The `Admission` header of a create, if any (printable ASCII).
fn admission_header(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    match req.headers().get("admission") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(token) if !token.trim().is_empty() => Ok(Some(token.trim().to_string())),
            _ => Err(ApiError::new(
                ErrorCode::AdmissionInvalid,
                "the Admission header is not a token this server issued",
            )),
        },
    }
}

#[utoipa::path(
    put,
    path = "/api/orders/{id}/seats",
    tag = "orders",
    summary = "Change the order's seats; the hold restarts, never past its cap",
    description = "All or nothing: a refused change leaves the previous seats, their holds and \
the timer as they were. A change restarts the hold in full, but never past `maxExpiresAt` (the \
order's creation plus `HOLD_MAX_LIFETIME`): a hold kept alive by changes still ends there, \
`EXPIRED`.",
    params(("id" = Uuid, Path, description = "The order's id")),
    request_body = ChangeSeats,
    responses(
        (status = 200, description = "The new seats, held until `expiresAt` (at most `maxExpiresAt`)", body = Held),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID; `INVALID_SEATS`: not 1–9 distinct seat ids, or a seat the flight does not have", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`SEATS_UNAVAILABLE` (names the seats), `ORDER_EXPIRED`, `ORDER_NOT_MODIFIABLE` (paid, failed or cancelled)", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: this client has its share of booking calls in progress (`MAX_IN_FLIGHT_PER_CLIENT`); nothing was changed", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY` or `SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
        (status = 504, description = "`OUTCOME_UNKNOWN`: the engine did not answer in time; the message names the status URL, and a retry with the same `Idempotency-Key` answers the outcome", body = ErrorBody),
    ),
)]
pub async fn change_seats(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ChangeSeats>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let seats = selection(&body.seats)?;
    let hold = answers::result(flows::change(&context(&state, &req), id.into(), seats).await)?;
    Ok(HttpResponse::Ok().json(Held::of(&hold, None)))
}

#[utoipa::path(
    put,
    path = "/api/orders/{id}/passengers",
    tag = "orders",
    summary = "Name the passengers: one per held seat",
    description = "Replaces the order's passenger list. Unlike a seat change it does not \
restart the hold: `expiresAt` stays as it was. A later seat change keeps the passengers of kept seats. Every seat needs one before \
paying. Names: 1–64 characters after trimming, letters of any script, spaces, hyphens, \
apostrophes and dots; the email (optional) receives the confirmation. The answer, like every \
route keyed by the order id, lists the seats named and never a name or an email: the client \
keeps what it sent.",
    params(("id" = Uuid, Path, description = "The order's id")),
    request_body = PassengersBody,
    responses(
        (status = 200, description = "The order's status, its `passengers` the seats named (no names)", body = StatusView),
        (status = 400, description = "`INVALID_PASSENGERS`: a bad name, email or seat, or a seat the order does not hold (`seat` and `field` name it); `INVALID_ORDER_ID`", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_EXPIRED`, `ORDER_NOT_MODIFIABLE` (paid, failed or cancelled)", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: this client has its share of booking calls in progress (`MAX_IN_FLIGHT_PER_CLIENT`); nothing was changed", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY` or `SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
        (status = 504, description = "`OUTCOME_UNKNOWN`: the engine did not answer in time; the order's status tells whether the passengers were saved", body = ErrorBody),
    ),
)]
pub async fn set_passengers(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PassengersBody>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let passengers = body.parse()?;
    let named = flows::name_passengers(&context(&state, &req), id.into(), passengers).await;
    Ok(HttpResponse::Ok().json(status_of(&state, answers::result(named)?)))
}

#[utoipa::path(
    get,
    path = "/api/orders/{id}/status",
    tag = "orders",
    summary = "The order's status",
    description = "Works while the workflow runs and after it has ended. `passengers` lists the \
seats named, never who sits there (the order id is no key to personal data); a confirmed \
order carries its `bookingReference`.",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The status", body = StatusView),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres is down", body = ErrorBody),
    ),
)]
pub async fn status(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let order = orders::find(&state.pool, id.into()).await?;
    Ok(HttpResponse::Ok().json(status_with_refund(&state, order).await?))
}

#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = "orders",
    summary = "The order: its status, when it was confirmed, and its flight",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = OrderDetail),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres is down", body = ErrorBody),
    ),
)]
pub async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let order = orders::find(&state.pool, id.into()).await?;
    let flight = flights::find(&state.pool, order.flight_id).await?;
    Ok(HttpResponse::Ok().json(OrderDetail {
        confirmed_at: order.confirmed_at,
        status: status_with_refund(&state, order).await?,
        flight: (&flight).into(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/orders/{id}/pay",
    tag = "orders",
    summary = "Pay: start validating the payment code",
    description = "Accepted only while the hold is live; from then on the order ends \
`CONFIRMED` or `FAILED` (follow `/status` or `/events`). The holds are checked again first: a \
seat lost to another order is 409 `SEATS_UNAVAILABLE` with no payment attempt. With \
`Idempotency-Key`, the same key and code return the same answer for 24 h (one payment).",
    params(
        ("id" = Uuid, Path, description = "The order's id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x20-\\x7E]+$",
         description = "1–255 printable ASCII characters: retry with the same key and code to get the same answer"),
    ),
    request_body = PayBody,
    responses(
        (status = 202, description = "The payment is being validated", body = Ack),
        (status = 400, description = "`INVALID_PAYMENT_CODE`: not 5 digits; `INVALID_ORDER_ID`: not a UUID; `INVALID_IDEMPOTENCY_KEY`", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_EXPIRED`, `ORDER_NOT_MODIFIABLE` (already paid, failed or cancelled), `SEATS_UNAVAILABLE` (a seat lost to another order), `PASSENGERS_REQUIRED` (`seats` names the seats without a passenger; no payment was attempted)", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`: the key was used with another code", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: this client has its share of booking calls in progress (`MAX_IN_FLIGHT_PER_CLIENT`); nothing was changed", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY` or `SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
        (status = 504, description = "`OUTCOME_UNKNOWN`: the engine did not answer in time; the message names the status URL, and a retry with the same `Idempotency-Key` answers the outcome", body = ErrorBody),
    ),
)]
pub async fn pay(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PayBody>,
) -> Result<HttpResponse, ApiError> {
    let code = body
        .payment_code
        .as_str()
        .ok_or_else(|| "the payment code must be a string of 5 digits".to_string())
        .and_then(PaymentCode::parse)
        .map_err(|e| ApiError::new(ErrorCode::InvalidPaymentCode, e))?;
    let id = order_id(&path)?;
    let key = Key::from_request(&req)?;
    let answer = |status: &OrderStatus| accepted(id, *status);
    let keep = |outcome: Result<&OrderStatus, &Refusal>| answers::kept(outcome, answer);
    let key = key.as_ref().map(|key| keys::Key {
        value: key.as_str(),
        keep: &keep,
    });
    answers::reply(
        flows::pay(&context(&state, &req), id.into(), code, key).await,
        answer,
    )
}

#[utoipa::path(
    delete,
    path = "/api/orders/{id}",
    tag = "orders",
    summary = "Cancel the order: its seats go back on sale",
    description = "The order stays readable (`CANCELLED`).",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "Cancelled", body = Ack),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_EXPIRED`, `ORDER_NOT_MODIFIABLE` (paid, failed or already cancelled)", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: this client has its share of booking calls in progress (`MAX_IN_FLIGHT_PER_CLIENT`); nothing was changed", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY` or `SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
        (status = 504, description = "`OUTCOME_UNKNOWN`: the engine did not answer in time; the message names the status URL, and a retry with the same `Idempotency-Key` answers the outcome", body = ErrorBody),
    ),
)]
pub async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let status = answers::result(flows::cancel(&context(&state, &req), id.into()).await)?;
    Ok(HttpResponse::Ok().json(Ack {
        order_id: id,
        status,
    }))
}

/// Server-sent events: the status object each time the order's row
/// changes, its version as the event id, a keep-alive comment every 15 s;
/// closed after a terminal status. A reconnect with `Last-Event-ID` gets
/// only what it has not seen; `204` (which stops an `EventSource`) once it
/// has seen the last status.
#[utoipa::path(
    get,
    path = "/api/orders/{id}/events",
    tag = "events",
    summary = "The order's status changes, as server-sent events",
    description = "One unnamed event (`message`) per change of the order, its data the status \
object (`StatusView`), its `id:` the order row's version. A `: keep-alive` comment every 15 s; \
the stream ends after a terminal status (`CONFIRMED`, `FAILED`, `EXPIRED`, `CANCELLED`). \
`event: error` (`Error`) when a read failed (it is retried).",
    params(
        ("id" = Uuid, Path, description = "The order's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last event id seen: only newer changes are sent (a value that is not a number counts as none)"),
    ),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 204, description = "The client has seen the order's last status already (stops an `EventSource`)"),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_STREAMS`: this client has `MAX_STREAMS_PER_CLIENT` event streams open (16); close one", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres is down", body = ErrorBody),
    ),
)]
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let lease = sse::lease(&state, &req).await?;
    Ok(
        match order_events(&state, id, last_event_id(&req), None).await? {
            Some(stream) => sse::respond_leased(stream, lease),
            None => HttpResponse::NoContent().finish(),
        },
    )
}
