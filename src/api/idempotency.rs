//! `Idempotency-Key` for `POST /api/orders` and `POST /api/orders/{id}/pay`.
//!
//! A key's state is the state machine of `orders::idempotency` (New →
//! Running → Answered | Abandoned), kept in Postgres, walked by the order
//! flows; this is the edge: the header, and the answers a key keeps. The first
//! request with a key binds it to a fingerprint of the request (an HMAC of
//! the key's scope and the request: a payment's binds its order and code)
//! and an order id; its final answer (any 2xx or 4xx) is stored and returned
//! to every later request with the same key and body. A 5xx is not an
//! answer: a retry sends the running attempt again, for the same order and
//! with the same workflow update id, so Temporal itself answers it once; an
//! attempt that changed nothing gives way to the next. The same key with
//! another body is `422 IDEMPOTENCY_KEY_REUSED`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use super::ApiError;
use crate::orders::idempotency::Kept;

pub const HEADER: &str = "Idempotency-Key";

/// A valid key: 1–255 printable ASCII characters.
pub struct Key(String);

impl Key {
    /// The request's key, if it sent one.
    pub fn from_request(req: &HttpRequest) -> Result<Option<Key>, ApiError> {
        let Some(value) = req.headers().get(HEADER) else {
            return Ok(None);
        };
        let text = value.to_str().unwrap_or_default();
        let printable = text.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if text.is_empty() || text.len() > 255 || !printable || value.len() != text.len() {
            return Err(ApiError::bad_request(
                "INVALID_IDEMPOTENCY_KEY",
                "the Idempotency-Key header must be 1 to 255 printable ASCII characters",
            ));
        }
        Ok(Some(Key(text.to_string())))
    }

    /// The key, as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An answer as stored and replayed.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// The answer `status` with `body` as JSON.
    pub fn new(status: StatusCode, body: impl serde::Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_value(body).unwrap_or_default(),
        }
    }

    /// The answer as a response.
    pub fn respond(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}

/// Rows keep the status code and the body, as they always have: a key
/// stored before an upgrade replays the same answer after it.
impl Kept for Answer {
    fn to_row(&self) -> (u16, Value) {
        (self.status.as_u16(), self.body.clone())
    }

    fn from_row(code: u16, body: Value) -> Self {
        Self {
            status: StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
            body,
        }
    }
}
