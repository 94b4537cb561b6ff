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
use crate::orders::checkin;
use crate::orders::refund::{self, Refunding, Refunds, Refusal};
use crate::store::checkin::{self as store_checkin, Boarding, Ticket, Window};
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
    /// The passenger's e-ticket: 13 digits, the airline's 3-digit prefix
    /// then a serial. None for a booking sold before tickets existed (it
    /// gets one at check-in).
    #[schema(example = "7240000000001", pattern = "^[0-9]{13}$")]
    pub ticket_number: Option<String>,
}

/// A passenger's boarding pass.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoardingPassView {
    #[schema(example = "12A")]
    pub seat: String,
    /// Given and family name, as booked.
    #[schema(example = "Ada Lovelace")]
    pub passenger: String,
    /// The boarding sequence number: per flight, from 1.
    #[schema(example = 1, minimum = 1, maximum = 9999)]
    pub sequence: u32,
    #[schema(example = "7240000000001", pattern = "^[0-9]{13}$")]
    pub ticket_number: String,
    /// The IATA BCBP (Resolution 792) M1 string, one leg, mandatory items:
    /// 60 characters, for the pass's barcode.
    #[schema(
        example = "M1LOVELACE/ADA        EK7PQ2X NYCLAXFL 0101 032M012A0001 100",
        min_length = 60,
        max_length = 60
    )]
    pub bcbp: String,
}

impl BoardingPassView {
    fn of(p: checkin::BoardingPass) -> Self {
        Self {
            seat: p.seat.to_string(),
            passenger: p.passenger,
            sequence: p.sequence,
            ticket_number: p.ticket_number,
            bcbp: p.bcbp,
        }
    }
}

/// The answer to a check-in.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckedInView {
    #[schema(example = "K7PQ2X")]
    pub reference: String,
    /// One per passenger, by seat.
    pub boarding_passes: Vec<BoardingPassView>,
}

/// When the booking's online check-in is open, and whether it is done.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckInState {
    /// `CHECKIN_OPENS` before departure.
    pub opens_at: DateTime<Utc>,
    /// `CHECKIN_CLOSES` before departure.
    pub closes_at: DateTime<Utc>,
    /// Whether the window is open now (and the booking confirmed).
    pub open: bool,
    pub checked_in: bool,
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
    /// Online check-in: its window and whether it is done.
    pub check_in: CheckInState,
    /// Once checked in: each passenger's pass (as the check-in answered).
    pub boarding_passes: Vec<BoardingPassView>,
}

impl BookingView {
    fn of(b: Booking, tickets: &[Ticket], passes: &[Boarding], window: Window) -> Self {
        let ticket = |seat: &crate::domain::SeatId| {
            (tickets.iter().find(|t| &t.seat == seat)).map(|t| t.number.clone())
        };
        let passengers = b.order.passengers.iter().map(|p| BookedPassenger {
            seat: p.seat.to_string(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            ticket_number: ticket(&p.seat),
        });
        let departure = b.flight.departure_time;
        let span = |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or_default();
        let (opens_at, closes_at) = (
            departure - span(window.opens),
            departure - span(window.closes),
        );
        let now = Utc::now();
        let confirmed = b.order.status == OrderStatus::Confirmed;
        let boarding_passes = checkin::boarding_passes(&b, passes).unwrap_or_default();
        Self {
            check_in: CheckInState {
                opens_at,
                closes_at,
                open: confirmed && opens_at <= now && now < closes_at,
                checked_in: !passes.is_empty(),
            },
            boarding_passes: boarding_passes
                .into_iter()
                .map(BoardingPassView::of)
                .collect(),
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
    let tickets = store_checkin::tickets(&state.pool, booking.order.id).await?;
    let passes = store_checkin::passes(&state.pool, booking.order.id).await?;
    let view = BookingView::of(booking, &tickets, &passes, window(&state));
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    post,
    path = "/api/bookings/checkin",
    tag = "bookings",
    summary = "Check in every passenger of a confirmed booking; their boarding passes",
    description = "Found as `POST /api/bookings/lookup` finds a booking (the same 404 for a wrong \
reference or name, the same limit of failed look-ups). Open from `CHECKIN_OPENS` (24 h) to \
`CHECKIN_CLOSES` (1 h) before departure. Each passenger gets a boarding sequence number (per \
flight, from 1) and a pass whose `bcbp` is the IATA BCBP M1 string for its barcode. Checking \
in again answers the same passes. A checked-in booking can no longer be cancelled.",
    request_body = LookUpBooking,
    responses(
        (status = 200, description = "Checked in: the boarding passes", body = CheckedInView),
        (status = 400, description = "`INVALID_REQUEST`: no `reference` or no `lastName` (each a string)", body = ErrorBody),
        (status = 404, description = "`BOOKING_NOT_FOUND`: no booking with this reference and name", body = ErrorBody),
        (status = 409, description = "`CHECKIN_NOT_OPEN`: too early; `CHECKIN_CLOSED`: too late; `BOOKING_NOT_CONFIRMED`: cancelled or refunded", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_LOOKUPS`: too many failed look-ups; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: a dependency is down; nothing was changed", body = ErrorBody),
    ),
)]
pub async fn check_in(
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
    let prefix = state.settings.booking.ticket_prefix();
    let flow = checkin::check_in(&refunds(&state), &who, window(&state), &prefix).await?;
    let done = outcome(flow, refused_check_in)?;
    Ok(HttpResponse::Ok().json(CheckedInView {
        reference: done.reference,
        boarding_passes: done.passes.into_iter().map(BoardingPassView::of).collect(),
    }))
}

/// The check-in window of the settings.
fn window(state: &AppState) -> Window {
    let booking = &state.settings.booking;
    Window {
        opens: booking.checkin_opens,
        closes: booking.checkin_closes,
    }
}

/// Why a check-in was refused, as HTTP.
fn refused_check_in(refusal: checkin::Refusal) -> ApiError {
    use checkin::Refusal as R;
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match refusal {
        R::LookUp(refusal) => refused(refusal),
        R::NotConfirmed(status) => ApiError::new(
            ErrorCode::BookingNotConfirmed,
            format!("the booking is {status}: only a confirmed booking can be checked in"),
        ),
        R::NotOpen { opens_at } => ApiError::new(
            ErrorCode::CheckinNotOpen,
            format!("online check-in for this flight opens at {}", at(opens_at)),
        ),
        R::Closed { closed_at } => ApiError::new(
            ErrorCode::CheckinClosed,
            format!(
                "online check-in for this flight closed at {}",
                at(closed_at)
            ),
        ),
        R::Unprintable(cause) => ApiError::internal(&cause),
    }
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
        (status = 409, description = "`REFUND_WINDOW_CLOSED`: departure is too close; `BOOKING_NOT_CANCELLABLE`: cancelled already; `BOOKING_CHECKED_IN`: its passengers have checked in", body = ErrorBody),
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
        Refusal::CheckedIn => ApiError::from(ErrorCode::BookingCheckedIn),
        // A customer's flow never retries a refund; should it, as refused.
        Refusal::NotCancellable(status) | Refusal::NothingToRetry(status) => ApiError::new(
            ErrorCode::BookingNotCancellable,
            format!("the booking is {status}: it cannot be cancelled again"),
        ),
    }
}
