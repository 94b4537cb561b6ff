//! Sign-in, the session cookie and the guard every ops route is behind.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::Method;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::errors::ErrorBody;
use crate::api::{ApiError, AppState, ErrorCode};
use crate::ops::{self, Password, Token};
use crate::store::ops::{self as store};

/// The session cookie's name.
pub const COOKIE: &str = "flightctl_ops";
/// The longest name a failed sign-in is audited with (as typed, trimmed):
/// an operator name is at most 64 characters.
pub const AUDITED_NAME_CHARS: usize = 64;
/// How often an operator's event stream looks whether its session still
/// lives (signed out, revoked, expired: the stream ends).
pub const SESSION_RECHECK: Duration = Duration::from_secs(1);

/// How long a sign-in refused for want of a password-check slot waits
/// before its 503: a waiting request holds no slot and no connection to any
/// store, only its own few kilobytes, so a flood of retries is slowed to a
/// few a second per connection at no cost to anyone else.
const BUSY_REFUSAL_PAUSE: Duration = Duration::from_millis(500);

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
        return Err(ErrorCode::CrossOrigin.into());
    }
    Ok(Operator {
        name: session.operator,
        expires_at: session.expires_at,
        token,
    })
}

/// The operator whose live session `req`'s cookie is, if any. No Origin
/// check: for the codec, whose callers are another origin (the Temporal
/// UI's) that CORS allows by name.
pub async fn signed_in(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(token) = req.cookie(COOKIE).and_then(|c| Token::parse(c.value())) else {
        return Ok(None);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(&"no application state"))?;
    let session = store::session(&state.pool, &token.digest()).await?;
    Ok(session.map(|s| s.operator))
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
    crate::api::ROUTES
        .iter()
        .any(|r| r.method == method && matches(r.path))
}

fn unauthenticated() -> ApiError {
    ErrorCode::Unauthenticated.into()
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

impl Operator {
    /// Whether the session this operator signed in with still lives (not
    /// signed out, revoked or expired). A store that cannot answer says
    /// nothing against it: `None`.
    pub async fn still_signed_in(&self, state: &AppState) -> Option<bool> {
        match store::session(&state.pool, &self.token.digest()).await {
            Ok(session) => Some(session.is_some()),
            Err(_) => None,
        }
    }
}

/// An operator's name and password.
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
over TLS). Failed sign-ins are counted per client address (`SIGN_IN_MAX_PER_ADDRESS`, 20 by \
default, whatever the names) and per name from that address (`SIGN_IN_MAX_PER_NAME`, 5) within \
`SIGN_IN_WINDOW` (15 minutes): beyond either, 429 for the rest of the window, before any \
password is checked. Password checks run a few at a time (`SIGN_IN_CONCURRENCY`, one per core): \
a sign-in beyond them is answered 503 `SERVICE_BUSY` with `Retry-After` after half a second that holds no slot. Every failed or \
refused sign-in is in the audit trail (the name as typed, the client's address).",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in", body = SessionView),
        (status = 400, description = "`INVALID_JSON` or `INVALID_REQUEST`: not `{name, password}`", body = ErrorBody),
        (status = 401, description = "`INVALID_CREDENTIALS`: no such operator, or another password", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_SIGN_INS`: retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY`: every password check slot is taken, retry after `Retry-After` seconds; or `SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let name = body.name.trim().to_string();
    let address = state
        .client_address(&req)
        .map_or_else(|| "unknown".to_string(), |a| a.to_string());
    // A slot for the password check, or 503: never a queue, and nothing
    // asked of any store (a flood's refusals cost next to nothing). The
    // refusal is answered after a short pause that holds no slot: a
    // client that retries at once can then ask only a few times a second,
    // instead of spending the cores the customers need on its refusals.
    let Some(slot) = state.password_checks.try_slot() else {
        actix_web::rt::time::sleep(BUSY_REFUSAL_PAUSE).await;
        return Err(ApiError::new(
            ErrorCode::ServiceBusy,
            "too many sign-ins are being checked at once; try again shortly",
        ));
    };
    // Counted before the check: an attempt past a limit is refused before
    // its password is looked at, however many arrive at once.
    if let Some(retry_after) = state.sign_ins.take(&address, &name).await? {
        drop(slot);
        let refused = ApiError::from(ErrorCode::TooManySignIns).retry_in(retry_after);
        return Err(failed_sign_in(&state, &name, &address, refused).await);
    }
    let hash = match ops::valid_name(&name) {
        true => store::password_hash(&state.pool, &name).await?,
        false => None,
    };
    let password = Password::new(body.password.clone());
    let known = hash.is_some();
    // An unknown name costs a check too (the decoy), in the same slot.
    let verified = slot.verify(password, hash).await;
    if !(known && verified) {
        let wrong = ApiError::from(ErrorCode::InvalidCredentials);
        return Err(failed_sign_in(&state, &name, &address, wrong).await);
    }
    give_back(&state, &address, &name).await;
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

/// A sign-in attempt that did not count against the limits (it signed in)
/// is given back; should Redis not take it back, it counts until its
/// window ends, which is only logged.
async fn give_back(state: &AppState, address: &str, name: &str) {
    if let Err(e) = state.sign_ins.give_back(address, name).await {
        tracing::warn!(error = %e.report(), "a sign-in attempt could not be given back");
    }
}

/// Record a failed or refused sign-in in the audit trail: the name as
/// typed (trimmed, at most [`AUDITED_NAME_CHARS`]), the client's address,
/// the refusal's code; never the password. The refusal is the answer, or
/// 503 if the audit trail could not record it.
async fn failed_sign_in(
    state: &AppState,
    name: &str,
    address: &str,
    refusal: ApiError,
) -> ApiError {
    let typed: String = name.chars().take(AUDITED_NAME_CHARS).collect();
    let outcome = refusal.code.as_str();
    tracing::info!(outcome, "an operator sign-in failed");
    match store::audit(&state.pool, &typed, "sign_in", address, outcome, None).await {
        Ok(()) => refusal,
        Err(e) => {
            tracing::error!(error = %e.report(), "the audit trail could not record a failed sign-in");
            ApiError::unavailable("the sign-in failed, but the audit trail could not record it")
        }
    }
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
