//! Request ids and the access log: each request runs in a span carrying an
//! id, taken from the caller's `X-Request-Id` when it is a sane token,
//! generated otherwise, and echoed back in the response's `X-Request-Id`.
//! Every line logged while the request is served carries it
//! (`LOG_FORMAT=json` makes it a field), the access line included; the order
//! handlers add `order_id` and `workflow_id` to the span once they know
//! them, and pass the id to the workflow in their messages, so the worker's
//! activity logs carry it too.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// A caller's id is kept if it is 1–128 characters of `A-Za-z0-9._-`.
fn accepted(value: &HeaderValue) -> Option<&str> {
    let id = value.to_str().ok()?;
    let sane = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    sane.then_some(id)
}

pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(accepted)
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_string);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
        order_id = tracing::field::Empty,
        workflow_id = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let served = next.call(req).instrument(span.clone());
    let mut res = CURRENT.scope(id.clone(), served).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    let (status, ms) = (res.status().as_u16(), started.elapsed().as_secs_f64() * 1e3);
    span.in_scope(|| {
        // Method and path are the span's fields already.
        tracing::info!(target: "flightctl::http", status, ms, "answered {status} in {ms:.1}ms");
    });
    Ok(res)
}

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being served (none outside a request): the
/// booking messages carry it to the worker, whose logs then show it too.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Name the order this request is about, and its workflow, on its span.
pub fn order(id: crate::domain::OrderId) {
    let span = tracing::Span::current();
    span.record("order_id", tracing::field::display(id));
    span.record(
        "workflow_id",
        tracing::field::display(crate::domain::workflow_id(id)),
    );
}
