//! "Manage my booking": a confirmed order found by its reference and a
//! passenger's family name, and its cancellation with a refund.
//!
//! The family name travels in the request's body, never in its URL
//! (`POST /api/bookings/lookup`, `POST /api/bookings/{reference}/cancel`),
//! so no access log, proxy or browser history keeps it. A look-up answers
//! the booking, or `404 BOOKING_NOT_FOUND` whether the reference or the
//! name was wrong (no oracle, and the same work: `orders::refund`); a client that fails too
//! often is refused `429 TOO_MANY_LOOKUPS` for the rest of a window
//! (`store::lookups`, counted per client address: the peer, or behind a
//! load balancer in `TRUSTED_PROXIES` the address it forwards). It never lists other
//! bookings, nor any passenger's email.
//!
//! A cancellation is recorded in Postgres (CONFIRMED → REFUND_PENDING, the
//! cutoff checked in the same transaction) before it is answered 202; the
//! refund workflow (`booking::refund`) is started then, and by the
//! reconciliation sweep should that start fail. Both are the flows of
//! `orders::refund`; this file parses, calls them, and says their outcome
//! in HTTP.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::errors::ErrorBody;
use super::idempotency::Key;
use super::{ApiError, AppState, ErrorCode, bodies};
use crate::api::orders::answers::outcome;
use crate::domain::{OrderStatus, seat_texts};
use crate::orders::refund::{self, Refunding, Refunds, Refusal};
use crate::store::refunds::Booking;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"reference": "K7PQ2X", "lastName": "Lovelace"}))]
pub struct LookUpBooking {
    /// The booking reference (6 characters, any case).
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    reference: serde_json::Value,
    /// The family name of one of the booking's passengers (any case,
    /// accents optional).
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    last_name: serde_json::Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"lastName": "Lovelace"}))]
pub struct CancelBooking {
    /// The family name of one of the booking's passengers.
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    last_name: serde_json::Value,
}

/// Who flies on a seat of the booking (no email: a look-up never shows one).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookedPassenger {
    pub seat: String,
    pub given_name: String,
    pub family_name: String,
}

/// The refund of a cancelled booking.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    /// `PENDING`, `REFUNDED` or `FAILED` (an operator must act).
    pub status: String,
    pub amount_cents: i64,
    pub requested_at: DateTime<Utc>,
    pub refunded_at: Option<DateTime<Utc>>,
}

/// A booking as its passengers see it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingView {
    #[schema(example = "K7PQ2X")]
    pub reference: String,
    /// `CONFIRMED`, `REFUND_PENDING`, `REFUNDED` or `REFUND_FAILED`.
    pub status: OrderStatus,
    pub flight: bodies::Flight,
    pub seats: Vec<String>,
    pub passengers: Vec<BookedPassenger>,
    /// What was paid.
    pub total_price_cents: i64,
    /// Each seat's cabin, price paid and fare rules.
    pub seat_prices: Vec<bodies::SeatPriceBody>,
    /// What a cancellation would refund now: each seat's price less its
    /// cancellation fee; `null` when a fare is not refundable (a
    /// cancellation is refused, 409 `FARE_NOT_REFUNDABLE`).
    pub refundable_cents: Option<i64>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub refund: Option<RefundView>,
}

impl BookingView {
    fn of(b: Booking) -> Self {
        let passengers = b.order.passengers.iter().map(|p| BookedPassenger {
            seat: p.seat.to_string(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
        });
        Self {
            reference: b.order.reference.clone().unwrap_or_default(),
            status: b.order.status,
            seats: seat_texts(&b.order.seats),
            passengers: passengers.collect(),
            total_price_cents: b.order.total_price_cents.get(),
            seat_prices: bodies::all(&b.order.seat_prices),
            refundable_cents: crate::fares::refund_of(&b.order.seat_prices).map(|c| c.get()),
            confirmed_at: b.order.confirmed_at,
            refund: b.refund.map(|r| RefundView {
                refunded_at: (r.status == "REFUNDED").then_some(r.finished_at).flatten(),
                status: r.status,
                amount_cents: r.amount_cents.get(),
                requested_at: r.requested_at,
            }),
            flight: bodies::Flight::from(&b.flight),
        }
    }
}

/// The answer to an accepted cancellation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cancelled {
    #[schema(example = "K7PQ2X")]
    pub reference: String,
    /// `REFUND_PENDING`.
    pub status: OrderStatus,
}

impl Cancelled {
    /// The refund under way: the booking is REFUND_PENDING.
    pub fn of(refunding: Refunding) -> Self {
        Self {
            reference: refunding.reference,
            status: OrderStatus::RefundPending,
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/bookings/lookup",
    tag = "bookings",
    summary = "Find a booking by its reference and a passenger's family name",
    description = "A POST, so that neither the name nor the reference is in a URL (access \
logs, proxies, browser history). The family name matches without regard to case or accents. \
A wrong reference and a wrong name get the same 404 after the same work; a client with too \
many failed look-ups is refused for a while (429 with `Retry-After`). The answer names the \
passengers, never their emails.",
    request_body = LookUpBooking,
    responses(
        (status = 200, description = "The booking", body = BookingView),
        (status = 400, description = "`INVALID_REQUEST`: no `reference` or no `lastName` (each a string)", body = ErrorBody),
        (status = 404, description = "`BOOKING_NOT_FOUND`: no booking with this reference and name", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_LOOKUPS`: too many failed look-ups; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: a dependency is down", body = ErrorBody),
    ),
)]
pub async fn look_up(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LookUpBooking>,
) -> Result<HttpResponse, ApiError> {
    let (Some(reference), Some(last_name)) = (body.reference.as_str(), body.last_name.as_str())
    else {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "give reference (the booking reference) and lastName (the family name of one of \
             the booking's passengers), each a string",
        ));
    };
    let who = refund::LookUp {
        reference,
        last_name,
        client: &client(&state, &req),
    };
    let booking = outcome(refund::look_up(&refunds(&state), &who).await?, refused)?;
    Ok(HttpResponse::Ok().json(BookingView::of(booking)))
}

#[utoipa::path(
    post,
    path = "/api/bookings/{reference}/cancel",
    tag = "bookings",
    summary = "Cancel a confirmed booking; its payment is refunded",
    description = "Recorded before it is answered: from 202 on the booking is `REFUND_PENDING` \
and its refund runs (a Temporal workflow `refund-<orderId>`, retried with backoff) until it is \
`REFUNDED`, its seats back on sale, or `REFUND_FAILED` for an operator. One refund per \
booking. Not within `REFUND_CUTOFF` (24 h) of departure. With `Idempotency-Key`, asking again \
with the same key answers the same 202.",
    params(
        ("reference" = String, Path, description = "The booking reference (6 characters)", example = "K7PQ2X"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x20-\\x7E]+$",
         description = "1–255 printable ASCII characters: the same key asking again gets the same answer"),
    ),
    request_body = CancelBooking,
    responses(
        (status = 202, description = "The refund is under way", body = Cancelled),
        (status = 400, description = "`INVALID_REQUEST`: no `lastName`; `INVALID_IDEMPOTENCY_KEY`", body = ErrorBody),
        (status = 404, description = "`BOOKING_NOT_FOUND`: no booking with this reference and name", body = ErrorBody),
        (status = 409, description = "`REFUND_WINDOW_CLOSED`: departure is too close; `BOOKING_NOT_CANCELLABLE`: cancelled already", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_LOOKUPS`: too many failed look-ups; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: a dependency is down; nothing was changed", body = ErrorBody),
    ),
)]
pub async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CancelBooking>,
) -> Result<HttpResponse, ApiError> {
    let key = Key::from_request(&req)?;
    let Some(last_name) = body.last_name.as_str() else {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "give lastName: the family name of one of the booking's passengers",
        ));
    };
    let who = refund::LookUp {
        reference: &path,
        last_name,
        client: &client(&state, &req),
    };
    let key = key.as_ref().map(Key::as_str);
    let flow = refund::cancel(&refunds(&state), &who, key).await?;
    let refunding = outcome(flow, refused)?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(Cancelled::of(refunding)))
}

/// What the refund flows work with, from the app's state.
pub(super) fn refunds(state: &AppState) -> Refunds<'_> {
    let booking = &state.settings.booking;
    Refunds {
        pool: &state.pool,
        lookups: &state.lookups,
        engine: &state.engine,
        cutoff: booking.refund_cutoff,
        max_attempts: booking.refund_max_attempts,
    }
}

/// The client a look-up counts against: its address, as the API sees it.
fn client(state: &AppState, req: &HttpRequest) -> String {
    state
        .client_address(req)
        .map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

/// Why the customer's look-up or cancellation was refused, as HTTP.
fn refused(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::TooManyLookUps { retry_after_secs } => ApiError {
            retry_after: Some(retry_after_secs.min(u64::from(u32::MAX)) as u32),
            ..ApiError::new(
                ErrorCode::TooManyLookups,
                "too many failed booking look-ups from this client; try again later",
            )
        },
        Refusal::BookingNotFound => ApiError::new(
            ErrorCode::BookingNotFound,
            "no booking with this reference and last name",
        ),
        Refusal::WindowClosed { cutoff } => ApiError::new(
            ErrorCode::RefundWindowClosed,
            format!(
                "a booking cannot be cancelled within {} of departure",
                humantime::format_duration(cutoff)
            ),
        ),
        Refusal::FareNotRefundable => ApiError::new(
            ErrorCode::FareNotRefundable,
            "the booking's fare is not refundable: it cannot be cancelled",
        ),
        // A customer's flow never retries a refund; should it, as refused.
        Refusal::NotCancellable(status) | Refusal::NothingToRetry(status) => ApiError::new(
            ErrorCode::BookingNotCancellable,
            format!("the booking is {status}: it cannot be cancelled again"),
        ),
    }
}
