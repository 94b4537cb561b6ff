//! The one mapping from failures to HTTP: `{"error": CODE, "message": ...}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::StoreError;

pub const ORDER_EXPIRED: &str = "ORDER_EXPIRED";
pub const ORDER_NOT_MODIFIABLE: &str = "ORDER_NOT_MODIFIABLE";
pub const SEATS_UNAVAILABLE: &str = "SEATS_UNAVAILABLE";
pub const SERVICE_BUSY: &str = "SERVICE_BUSY";
pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";

#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
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
}

/// Seconds to wait before retrying when the API is at its in-flight limit.
const BUSY_RETRY_AFTER: u32 = 1;
/// Seconds to wait before retrying when a dependency is down.
const UNAVAILABLE_RETRY_AFTER: u32 = 2;

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(flatten)]
    detail: &'a Detail,
}

/// Every code an error body can carry. The document's `ErrorCode` enum is
/// this list, so a response with a code missing here is outside the schema
/// (and the schemathesis test says so).
pub const CODES: &[&str] = &[
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
    ORDER_EXPIRED,
    ORDER_NOT_MODIFIABLE,
    SEATS_UNAVAILABLE,
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "IDEMPOTENCY_KEY_REUSED",
    SERVICE_BUSY,
    SERVICE_UNAVAILABLE,
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
    "INTERNAL",
];

/// The error body, as documented: `{"error": CODE, "message": "..."}`.
#[derive(utoipa::ToSchema)]
#[schema(
    as = Error,
    example = json!({"error": "SEATS_UNAVAILABLE", "message": "already booked or held by another order: 1A"})
)]
#[allow(dead_code)]
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
}

/// A machine-readable error code (`CODES`).
pub struct ErrorCode;

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(CODES.iter().copied()))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            detail: Detail::default(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::warn!(%message, "dependency unavailable");
        Self {
            retry_after: Some(UNAVAILABLE_RETRY_AFTER),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                message,
            )
        }
    }

    /// Something that should not happen did: logged with its cause, answered
    /// without it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "unexpected error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "an unexpected error occurred; it was logged",
        )
    }

    /// The API has as much booking work in flight as it allows, or the work
    /// did not finish in time: try again shortly, nothing was changed.
    pub fn busy(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(BUSY_RETRY_AFTER),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, SERVICE_BUSY, message)
        }
    }
}

impl ApiError {
    /// The same error, about this seat and field.
    pub fn about(mut self, seat: Option<String>, field: &'static str) -> Self {
        self.detail.seat = seat.filter(|s| !s.is_empty());
        self.detail.field = Some(field);
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
                Self::not_found("FLIGHT_NOT_FOUND", format!("no flight with id {id}"))
            }
            StoreError::OrderNotFound(id) => {
                Self::not_found("ORDER_NOT_FOUND", format!("no order with id {id}"))
            }
            StoreError::Postgres(_) => {
                tracing::warn!(cause = %e.report(), "postgres unavailable");
                Self::unavailable("the database is unavailable; try again shortly")
            }
            StoreError::Redis(_) => {
                tracing::warn!(cause = %e.report(), "redis unavailable");
                Self::unavailable("the seat store is unavailable; try again shortly")
            }
            StoreError::Query(_) | StoreError::Migration(_) => Self::internal(&e.report()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
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
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body is larger than {limit} bytes"),
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as application/json",
        ),
        E::Deserialize(e) if e.is_data() => ApiError::bad_request(
            "INVALID_REQUEST",
            format!("the request body has the wrong shape: {e}"),
        ),
        _ => ApiError::bad_request(
            "INVALID_JSON",
            format!("the request body is not valid JSON: {err}"),
        ),
    }
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("NOT_FOUND", "no such route"))
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
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
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
    ApiError::bad_request(
        "INVALID_QUERY",
        format!("the query string has the wrong shape: {err}"),
    )
}
