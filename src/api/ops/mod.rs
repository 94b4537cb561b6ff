//! The operator console's JSON API, `/api/ops/*`: sign-in and sessions,
//! what operators see (flights' sales, orders, an order's history, the
//! sweep's runs, the audit trail) and what they do (cancel an order, refund
//! a booking, retry a refund the provider declined for good, close or open
//! sales, add a flight), each action recorded in the audit trail, as is
//! every read of passengers' names and emails (the order list and one
//! order: `read_orders`, `read_order`).
//!
//! **Nothing without a session.** Every route but `POST /api/ops/session`
//! takes an [`Operator`], the extractor that answers `401 UNAUTHENTICATED`
//! without a live session cookie and `403 CROSS_ORIGIN` for a state change
//! whose `Origin` is another site. `tests/ops.rs` walks the route table to
//! prove it for every ops route.
//!
//! The cookie (`flightctl_ops`) is opaque, HttpOnly, SameSite=Strict, Secure
//! over TLS; Postgres keeps only its SHA-256 (`ops::Token::digest`), with a
//! server-side expiry (`OPS_SESSION_TTL`) and revocation; the operators'
//! event stream ends with its session.
//!
//! **Sign-in holds against a crowd** (`auth::sign_in`): an attempt is
//! counted before its password is checked, per client address
//! (`SIGN_IN_MAX_PER_ADDRESS`) and per name from that address
//! (`SIGN_IN_MAX_PER_NAME`), atomically in Redis (`store::attempts`); past
//! either, 429. Password checks take one of a fixed number of slots
//! (`ops::PasswordChecks`, `SIGN_IN_CONCURRENCY`) or are refused 503
//! after a half-second pause that holds no slot. Every failed or refused sign-in is audited (name as typed,
//! address; never the password).

//!
//! - `auth.rs` — sign-in, the session cookie, the guard and `Operator`;
//! - `flights.rs` — the sales overview and its stream, sales open/closed,
//!   new flights;
//! - `orders.rs` — orders, one order, cancel, refund and its retry, the
//!   sweep's runs, the audit trail.

mod auth;
mod flights;
mod orders;

pub use auth::*;
pub use flights::*;
pub use orders::*;

use super::{ApiError, AppState};
use crate::store::ops as store;

pub(super) async fn audited<T>(
    state: &AppState,
    op: &Operator,
    action: &str,
    target: &str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    read_audited(state, op, action, target, None, result).await
}

/// An operator's read of passengers' personal data, recorded in the audit
/// trail before it is answered: no answer without its row. `shown` is the
/// detail of a read that succeeded (what it showed, by id: never a name or
/// an email, nor the search text, which may be a name).
pub(super) async fn read_audited<T>(
    state: &AppState,
    op: &Operator,
    action: &str,
    target: &str,
    shown: Option<String>,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    let detail = match &result {
        Ok(_) => shown,
        Err(e) => Some(e.message.clone()),
    };
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
        tracing::error!(error = %e.report(), action, target, "the audit trail could not record an action");
        // Our words only (the action, its target and outcome code); the
        // driver's are in the log line above.
        return Err(ApiError::new(
            crate::api::ErrorCode::ServiceUnavailable,
            format!("{action} {target}: {outcome}, but the audit trail could not record it"),
        ));
    }
    result
}
