//! The one mapping from failures to HTTP: `{"error": CODE, "message": ...}`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use strum::IntoEnumIterator;

use crate::store::StoreError;

/// Every code an error body can carry, as it is sent: `SEATS_UNAVAILABLE`
/// for [`ErrorCode::SeatsUnavailable`]. Each code has one HTTP status and,
/// for a 503 or 504, a `Retry-After`; the document's `ErrorCode` schema
/// lists the variants in this order, so a response with a code missing here
/// cannot be written (and the schemathesis test checks the document).
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidFlightId,
    InvalidOrderId,
    InvalidSeats,
    InvalidPaymentCode,
    InvalidIdempotencyKey,
    InvalidJson,
    InvalidRequest,
    InvalidQuery,
    NotFound,
    FlightNotFound,
    OrderNotFound,
    MethodNotAllowed,
    InvalidPayload,
    UnknownKeyId,
    OriginNotAllowed,
    OrderExpired,
    OrderNotModifiable,
    SeatsUnavailable,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyKeyReused,
    ServiceBusy,
    ServiceUnavailable,
    OutcomeUnknown,
    InvalidPassengers,
    PassengersRequired,
    BookingNotFound,
    TooManyLookups,
    RefundWindowClosed,
    BookingNotCancellable,
    SalesClosed,
    Unauthenticated,
    CrossOrigin,
    InvalidCredentials,
    TooManySignIns,
    InvalidFlight,
    FlightExists,
    TooManyRequests,
    TooManyLiveOrders,
    TooManyStreams,
    SalesNotOpen,
    QueueRequired,
    AdmissionInvalid,
    TicketNotFound,
    Internal,
}

/// Seconds to wait before retrying when the API is at its in-flight limit,
/// or a call's outcome is not known yet.
const BUSY_RETRY_AFTER: u32 = 1;
/// Seconds to wait before retrying when a dependency is down.
const UNAVAILABLE_RETRY_AFTER: u32 = 2;
/// Seconds to wait before opening a stream again when the client has its
/// share open: one keep-alive interval, by which a stream the client closed
/// has been noticed.
const STREAMS_RETRY_AFTER: u32 = 15;

impl ErrorCode {
    /// The code as it is sent (`"SEATS_UNAVAILABLE"`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The HTTP status every answer with this code has.
    pub fn status(self) -> StatusCode {
        use ErrorCode as C;
        match self {
            C::InvalidFlightId
            | C::InvalidOrderId
            | C::InvalidSeats
            | C::InvalidPaymentCode
            | C::InvalidIdempotencyKey
            | C::InvalidJson
            | C::InvalidRequest
            | C::InvalidQuery
            | C::InvalidPayload
            | C::UnknownKeyId
            | C::InvalidPassengers
            | C::InvalidFlight => StatusCode::BAD_REQUEST,
            C::Unauthenticated | C::InvalidCredentials => StatusCode::UNAUTHORIZED,
            C::OriginNotAllowed | C::CrossOrigin | C::AdmissionInvalid => StatusCode::FORBIDDEN,
            C::NotFound
            | C::FlightNotFound
            | C::OrderNotFound
            | C::BookingNotFound
            | C::TicketNotFound => StatusCode::NOT_FOUND,
            C::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            C::OrderExpired
            | C::OrderNotModifiable
            | C::SeatsUnavailable
            | C::PassengersRequired
            | C::RefundWindowClosed
            | C::BookingNotCancellable
            | C::SalesClosed
            | C::FlightExists
            | C::SalesNotOpen
            | C::QueueRequired => StatusCode::CONFLICT,
            C::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            C::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            C::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            C::TooManyLookups
            | C::TooManySignIns
            | C::TooManyRequests
            | C::TooManyLiveOrders
            | C::TooManyStreams => StatusCode::TOO_MANY_REQUESTS,
            C::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            C::ServiceBusy | C::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            C::OutcomeUnknown => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `Retry-After` this code carries unless the answer names its own
    /// (the look-up, sign-in and live-order limits know when they open
    /// again).
    pub fn retry_after(self) -> Option<u32> {
        match self {
            Self::ServiceBusy | Self::OutcomeUnknown | Self::TooManyRequests => {
                Some(BUSY_RETRY_AFTER)
            }
            Self::ServiceUnavailable => Some(UNAVAILABLE_RETRY_AFTER),
            Self::TooManyStreams => Some(STREAMS_RETRY_AFTER),
            _ => None,
        }
    }

    /// The sentence an answer with this code carries when it has nothing
    /// more particular to say (`ApiError::from(code)`).
    pub fn message(self) -> &'static str {
        use ErrorCode as C;
        match self {
            C::InvalidFlightId => "the flight id is not a UUID",
            C::InvalidOrderId => "the order id is not a UUID",
            C::InvalidSeats => "the seat selection is not valid",
            C::InvalidPaymentCode => "the payment code is not valid",
            C::InvalidIdempotencyKey => {
                "the Idempotency-Key header must be 1 to 255 printable ASCII characters"
            }
            C::InvalidJson => "the request body is not valid JSON",
            C::InvalidRequest => "the request body has the wrong shape",
            C::InvalidQuery => "the query string has the wrong shape",
            C::NotFound => "no such route",
            C::FlightNotFound => "no such flight",
            C::OrderNotFound => "no such order",
            C::MethodNotAllowed => "this route does not accept this method",
            C::InvalidPayload => "a payload is not valid",
            C::UnknownKeyId => "a payload is encrypted with an unknown key",
            C::OriginNotAllowed => "this origin may not call the codec",
            C::OrderExpired => "the hold on this order has expired",
            C::OrderNotModifiable => "the order can no longer be changed",
            C::SeatsUnavailable => "a seat is already booked or held by another order",
            C::PayloadTooLarge => "the request body is too large",
            C::UnsupportedMediaType => "send the body as application/json",
            C::IdempotencyKeyReused => {
                "this Idempotency-Key was used with a different request; use a new key"
            }
            C::ServiceBusy => "the server is busy; try again shortly",
            C::ServiceUnavailable => "a dependency is unavailable; try again shortly",
            C::OutcomeUnknown => "whether the request took effect is not known yet",
            C::InvalidPassengers => "the passengers are not valid",
            C::PassengersRequired => "name a passenger for every seat before paying",
            C::BookingNotFound => "no booking with this reference",
            C::TooManyLookups => {
                "too many failed booking look-ups from this client; try again later"
            }
            C::RefundWindowClosed => "the booking is too close to departure to be cancelled",
            C::BookingNotCancellable => "the booking cannot be cancelled",
            C::SalesClosed => "sales of this flight are closed",
            C::Unauthenticated => "sign in first: POST /api/ops/session",
            C::CrossOrigin => "a state change must come from this site",
            C::InvalidCredentials => "no operator with this name and password",
            C::TooManySignIns => "too many failed sign-ins from this client; try again later",
            C::InvalidFlight => "the flight is not valid",
            C::FlightExists => "the flight number is taken",
            C::TooManyRequests => {
                "this client has its share of booking calls in progress; try again shortly"
            }
            C::TooManyLiveOrders => {
                "this client holds as many live orders as it may; pay for or cancel one first"
            }
            C::TooManyStreams => {
                "this client has as many event streams open as it may; close one first"
            }
            C::SalesNotOpen => "sales of this flight have not opened yet",
            C::QueueRequired => "this flight's sale has a waiting room: join its queue first",
            C::AdmissionInvalid => "the admission is not valid for this flight",
            C::TicketNotFound => "no such ticket in this flight's queue",
            C::Internal => "an unexpected error occurred; it was logged",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The document's `ErrorCode`: a string, one of the variants' names.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Self::iter().map(Self::as_str)))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds a client should wait before retrying (every 503 has one).
    pub retry_after: Option<u32>,
    /// What the error is about, for a client to point at: `seat` and
    /// `field` (INVALID_PASSENGERS), `seats` (PASSENGERS_REQUIRED).
    pub detail: Detail,
}

/// The optional members of an error body.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Detail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats: Option<Vec<String>>,
    /// `SALES_NOT_OPEN`, `QUEUE_REQUIRED`: the waiting room's pointers.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub room: Option<Box<RoomDetail>>,
}

/// Where a refused create is sent: the sale's opening, the flight's queue.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorCode,
    message: &'a str,
    #[serde(flatten)]
    detail: &'a Detail,
}

/// The error body, as documented: `{"error": CODE, "message": "..."}`.
#[derive(utoipa::ToSchema)]
#[schema(
    as = Error,
    example = json!({"error": "SEATS_UNAVAILABLE", "message": "already booked or held by another order: 1A"})
)]
#[allow(dead_code, non_snake_case)]
pub struct ErrorBody {
    error: ErrorCode,
    /// A human sentence; never driver or stack text.
    message: String,
    /// `INVALID_PASSENGERS`: the seat at fault.
    seat: Option<String>,
    /// `INVALID_PASSENGERS`: `seat`, `givenName`, `familyName`, `email` or
    /// `passengers`.
    field: Option<String>,
    /// `PASSENGERS_REQUIRED`: the seats without a passenger.
    seats: Option<Vec<String>>,
    /// `SALES_NOT_OPEN`: when the sale opens (RFC 3339).
    #[schema(format = DateTime)]
    opensAt: Option<String>,
    /// `QUEUE_REQUIRED`: the flight's queue, to join with POST.
    queueUrl: Option<String>,
}

impl ApiError {
    /// An answer with this code and sentence; its status and `Retry-After`
    /// are the code's.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: code.retry_after(),
            detail: Detail::default(),
        }
    }

    /// The HTTP status of this answer: its code's.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The same error, asking the client to wait `seconds` before retrying.
    pub fn retry_in(mut self, seconds: u64) -> Self {
        self.retry_after = Some(u32::try_from(seconds).unwrap_or(u32::MAX));
        self
    }

    /// A dependency is down: 503 `SERVICE_UNAVAILABLE` with `Retry-After`
    /// and `sentence`, a fixed one of ours (`&'static`, so no driver or
    /// Temporal client text can reach a body); the cause goes to the log
    /// through [`ApiError::dependency_down`].
    pub fn unavailable(sentence: &'static str) -> Self {
        tracing::warn!(message = sentence, "dependency unavailable");
        Self::new(ErrorCode::ServiceUnavailable, sentence)
    }

    /// A dependency is down for `cause` (a driver's or the Temporal
    /// client's words): logged, and answered with `sentence` only.
    pub fn dependency_down(sentence: &'static str, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%cause, message = sentence, "dependency unavailable");
        Self::new(ErrorCode::ServiceUnavailable, sentence)
    }

    /// Something that should not happen did: logged with its cause, answered
    /// without it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "unexpected error");
        ErrorCode::Internal.into()
    }

    /// The API has as much booking work in flight as it allows, or the work
    /// did not finish in time: try again shortly, nothing was changed.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceBusy, message)
    }
}

impl From<ErrorCode> for ApiError {
    /// The code with its own sentence.
    fn from(code: ErrorCode) -> Self {
        Self::new(code, code.message())
    }
}

impl ApiError {
    /// The same error, about this seat and field.
    pub fn about(mut self, seat: Option<String>, field: &'static str) -> Self {
        self.detail.seat = seat.filter(|s| !s.is_empty());
        self.detail.field = Some(field);
        self
    }

    /// The same error, pointing at the waiting room: when the sale opens,
    /// the flight's queue.
    pub fn room(mut self, opens_at: Option<String>, queue_url: Option<String>) -> Self {
        self.detail.room = Some(Box::new(RoomDetail {
            opens_at,
            queue_url,
        }));
        self
    }

    /// The same error, naming these seats.
    pub fn naming(mut self, seats: Vec<String>) -> Self {
        self.detail.seats = Some(seats);
        self
    }

    /// The JSON body of this error.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Body {
            error: self.code,
            message: &self.message,
            detail: &self.detail,
        })
        .unwrap_or_default()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::FlightNotFound(id) => {
                Self::new(ErrorCode::FlightNotFound, format!("no flight with id {id}"))
            }
            StoreError::OrderNotFound(id) => {
                Self::new(ErrorCode::OrderNotFound, format!("no order with id {id}"))
            }
            StoreError::Postgres(_) => Self::dependency_down(
                "the database is unavailable; try again shortly",
                &e.report(),
            ),
            StoreError::Redis(_) => Self::dependency_down(
                "the seat store is unavailable; try again shortly",
                &e.report(),
            ),
            StoreError::Query(_) | StoreError::Migration(_) | StoreError::Corrupt { .. } => {
                Self::internal(&e.report())
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        if let Some(seconds) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self.body())
    }
}

/// Body errors from actix's JSON extractor, in our shape.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match &err {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        ),
        E::ContentType => ErrorCode::UnsupportedMediaType.into(),
        E::Deserialize(e) if e.is_data() => ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the request body has the wrong shape: {e}"),
        ),
        _ => ApiError::new(
            ErrorCode::InvalidJson,
            format!("the request body is not valid JSON: {err}"),
        ),
    }
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ErrorCode::NotFound.into())
}

/// `405` naming, in `Allow`, the methods the route accepts (the route
/// table's, lower case; a GET route accepts HEAD too).
pub fn method_not_allowed(allowed: &[&str]) -> HttpResponse {
    let allow = allowed
        .iter()
        .flat_map(|m| match *m {
            "get" => vec!["GET".to_string(), "HEAD".to_string()],
            m => vec![m.to_ascii_uppercase()],
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("this route accepts {allow} only"),
    )
    .error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}

/// Query-string errors from actix's extractor, in our shape.
pub fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("the query string has the wrong shape: {err}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes on the wire, in the document's order: renaming a variant
    /// must not rename what clients match on.
    #[test]
    fn codes_are_sent_as_they_always_were() {
        let sent: Vec<&str> = ErrorCode::iter().map(ErrorCode::as_str).collect();
        assert_eq!(
            sent,
            [
                "INVALID_FLIGHT_ID",
                "INVALID_ORDER_ID",
                "INVALID_SEATS",
                "INVALID_PAYMENT_CODE",
                "INVALID_IDEMPOTENCY_KEY",
                "INVALID_JSON",
                "INVALID_REQUEST",
                "INVALID_QUERY",
                "NOT_FOUND",
                "FLIGHT_NOT_FOUND",
                "ORDER_NOT_FOUND",
                "METHOD_NOT_ALLOWED",
                "INVALID_PAYLOAD",
                "UNKNOWN_KEY_ID",
                "ORIGIN_NOT_ALLOWED",
                "ORDER_EXPIRED",
                "ORDER_NOT_MODIFIABLE",
                "SEATS_UNAVAILABLE",
                "PAYLOAD_TOO_LARGE",
                "UNSUPPORTED_MEDIA_TYPE",
                "IDEMPOTENCY_KEY_REUSED",
                "SERVICE_BUSY",
                "SERVICE_UNAVAILABLE",
                "OUTCOME_UNKNOWN",
                "INVALID_PASSENGERS",
                "PASSENGERS_REQUIRED",
                "BOOKING_NOT_FOUND",
                "TOO_MANY_LOOKUPS",
                "REFUND_WINDOW_CLOSED",
                "BOOKING_NOT_CANCELLABLE",
                "SALES_CLOSED",
                "UNAUTHENTICATED",
                "CROSS_ORIGIN",
                "INVALID_CREDENTIALS",
                "TOO_MANY_SIGN_INS",
                "INVALID_FLIGHT",
                "FLIGHT_EXISTS",
                "TOO_MANY_REQUESTS",
                "TOO_MANY_LIVE_ORDERS",
                "TOO_MANY_STREAMS",
                "SALES_NOT_OPEN",
                "QUEUE_REQUIRED",
                "ADMISSION_INVALID",
                "TICKET_NOT_FOUND",
                "INTERNAL",
            ]
        );
    }

    #[test]
    fn every_503_says_when_to_retry() {
        for code in ErrorCode::iter() {
            if code.status() == StatusCode::SERVICE_UNAVAILABLE {
                assert!(ApiError::from(code).retry_after.is_some(), "{code}");
            }
        }
    }

    #[test]
    fn the_body_is_the_code_the_message_and_the_detail() {
        let e = ApiError::new(ErrorCode::InvalidPassengers, "bad email")
            .about(Some("1A".into()), "email");
        assert_eq!(
            e.body(),
            serde_json::json!({
                "error": "INVALID_PASSENGERS", "message": "bad email", "seat": "1A", "field": "email"
            })
        );
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}
