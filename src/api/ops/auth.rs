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

/// Record an action and its outcome in the audit trail; the action's answer
/// is passed through. An audit that cannot be written fails the answer (503),
/// though the action itself took place: the message says so.

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
        return Err(ApiError::from(ErrorCode::TooManySignIns).retry_in(retry_after));
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
        return Err(ErrorCode::InvalidCredentials.into());
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
