//! `Idempotency-Key` for `POST /api/orders` and `POST /api/orders/{id}/pay`.
//!
//! A key's state is the state machine of `booking::keys` (New → Running →
//! Answered | Abandoned), kept in Postgres (`store::idempotency`). The first
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
use hmac::{KeyInit, Mac};
use serde_json::Value;
use uuid::Uuid;

use super::{ApiError, AppState, ErrorCode};
use crate::booking::keys::{self, Outcome};
use crate::store::idempotency::{self, Binding, Entry};

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
            return Err(ApiError::new(
                ErrorCode::InvalidIdempotencyKey,
                "the Idempotency-Key header must be 1 to 255 printable ASCII characters",
            ));
        }
        Ok(Some(Key(text.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A keyed HMAC-SHA256 of the scope and the parts, hex: equal requests in
/// one scope give equal fingerprints, and a payment code cannot be read back
/// or guessed from it. The scope is always hashed in, so the same code paid
/// on two orders (`pay:<orderId>`) gives two unrelated fingerprints, and one
/// recovered fingerprint says nothing about another order's.
pub fn fingerprint(secret: &str, scope: &str, parts: &[&str]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    // Each part is length-prefixed, so no two lists of parts run together.
    for part in std::iter::once(scope).chain(parts.iter().copied()) {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An answer as stored and replayed.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn new(status: StatusCode, body: impl serde::Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_value(body).unwrap_or_default(),
        }
    }

    pub fn respond(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }

    /// The answer to replay for `outcome`, if it is final (not a 5xx).
    pub fn of(outcome: &Result<Answer, ApiError>) -> Option<Answer> {
        match outcome {
            Ok(a) => Some(Answer::new(a.status, &a.body)),
            Err(e) if e.status().is_client_error() => Some(Answer::new(e.status(), e.body())),
            Err(_) => None,
        }
    }
}

/// One keyed request: where its key lives and what the request was. Its
/// state is `booking::keys::KeyState`; this is where it is read and moved.
pub struct Keyed<'a> {
    state: &'a AppState,
    scope: String,
    key: Key,
    fingerprint: String,
}

/// A key's state, with answers as the API replays them.
pub type KeyState = keys::KeyState<Answer>;

impl<'a> Keyed<'a> {
    /// A request under `key` in `scope` (`create`, `pay:<orderId>`), told
    /// apart from others by `request`, fingerprinted with the scope.
    pub fn new(state: &'a AppState, scope: String, key: Key, request: &[&str]) -> Self {
        let secret = state.settings.server.idempotency_secret.expose();
        let fingerprint = fingerprint(secret, &scope, request);
        Self {
            state,
            scope,
            key,
            fingerprint,
        }
    }

    /// The workflow update id of the key's attempt `attempt`: every retry
    /// of one attempt lands on the same update.
    pub fn update_id(&self, what: &str, attempt: u32) -> String {
        let secret = self.state.settings.server.idempotency_secret.expose();
        let id = fingerprint(secret, &self.scope, &[&self.key.0]);
        keys::update_id(&format!("{what}-{}", &id[..32]), attempt)
    }

    fn retention(&self) -> std::time::Duration {
        self.state.settings.server.idempotency_ttl
    }

    fn names(&self) -> (&str, &str) {
        (&self.scope, &self.key.0)
    }

    fn check(&self, entry: Entry) -> Result<KeyState, ApiError> {
        if entry.fingerprint != self.fingerprint {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request; use a new key",
            ));
        }
        Ok(match entry.state {
            keys::KeyState::New => KeyState::New,
            keys::KeyState::Running { order_id, attempt } => {
                KeyState::Running { order_id, attempt }
            }
            keys::KeyState::Abandoned { order_id, attempt } => {
                KeyState::Abandoned { order_id, attempt }
            }
            keys::KeyState::Answered((code, body)) => KeyState::Answered(Answer {
                status: StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
                body,
            }),
        })
    }

    /// The key's state now (New if unused or past its retention).
    pub async fn find(&self) -> Result<KeyState, ApiError> {
        let pool = &self.state.pool;
        match idempotency::find(pool, &self.scope, &self.key.0, self.retention()).await? {
            Some(entry) => self.check(entry),
            None => Ok(KeyState::New),
        }
    }

    /// Bind the key to `order_id`, with `outcome` as its answer when final.
    /// Returns the state that holds (another request may have bound it first).
    pub async fn bind(
        &self,
        order_id: Uuid,
        outcome: Option<&Result<Answer, ApiError>>,
    ) -> Result<KeyState, ApiError> {
        let binding = Binding {
            scope: &self.scope,
            key: &self.key.0,
            fingerprint: &self.fingerprint,
            order_id,
        };
        let answer = outcome.and_then(Answer::of);
        let stored = answer.as_ref().map(|a| (a.status.as_u16(), &a.body));
        let entry = idempotency::bind(&self.state.pool, &binding, stored, self.retention()).await?;
        self.check(entry)
    }

    /// Start the attempt after the abandoned `attempt`, for `order_id`.
    pub async fn renew(&self, attempt: u32, order_id: Uuid) -> Result<KeyState, ApiError> {
        let entry = idempotency::renew(&self.state.pool, self.names(), attempt, order_id).await?;
        self.check(entry)
    }

    /// Record what attempt `attempt` came to. A failure to store costs a
    /// retry only the replay: the work itself is deduplicated by Temporal.
    pub async fn settle(&self, attempt: u32, outcome: Outcome<&Result<Answer, ApiError>>) {
        let pool = &self.state.pool;
        let stored = match outcome {
            Outcome::Final(result) => match Answer::of(result) {
                Some(a) => {
                    let answer = (a.status.as_u16(), &a.body);
                    idempotency::answer(pool, self.names(), attempt, answer).await
                }
                None => Ok(()),
            },
            Outcome::NothingHappened => idempotency::abandon(pool, self.names(), attempt).await,
            Outcome::Unknown => Ok(()),
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, "could not store the state of an Idempotency-Key");
        }
    }
}

/// Delete expired keys every hour, for as long as the server runs (the
/// first time an hour after start: nothing to do at start-up).
pub async fn purge_expired(pool: deadpool_postgres::Pool, retention: std::time::Duration) {
    let every = std::time::Duration::from_secs(3600);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        match idempotency::purge(&pool, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret";

    #[test]
    fn equal_codes_on_two_orders_give_different_fingerprints() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let pay = |order: Uuid| fingerprint(SECRET, &format!("pay:{order}"), &["12345"]);
        assert_ne!(pay(a), pay(b));
        assert_eq!(pay(a), pay(a), "a retry on the same order matches");
        let other = fingerprint("another-secret", &format!("pay:{a}"), &["12345"]);
        assert_ne!(pay(a), other, "the secret keys it");
    }

    /// Update ids hash the scope and the key as before the scope became a
    /// parameter: a retry across the upgrade lands on the same update.
    #[test]
    fn update_ids_keep_their_value() {
        let id = fingerprint(SECRET, "create", &["key-1"]);
        assert_eq!(
            id,
            "ebcddeec808d5f3adce72c210900745e23ee1cbdf6b816e753764019f4ca94a4"
        );
    }

    #[test]
    fn the_scope_and_the_parts_never_run_together() {
        assert_ne!(
            fingerprint(SECRET, "pay:1", &["2345"]),
            fingerprint(SECRET, "pay:12", &["345"])
        );
    }
}
