//! `GET /metrics` and the HTTP series: every request is counted by its
//! route's pattern (`/api/orders/{id}`, never the raw path), method and
//! status, and timed to its response. An event stream's response is its
//! start; the stream then lives as long as the client stays, so it is not
//! timed (it would swamp the latency percentiles) but counted open while
//! its body lives.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use prometheus::{Encoder, IntGauge, TextEncoder};

use super::{ApiError, AppState};
use crate::metrics::{self, LIVE_HOLDS};
use crate::store::{StoreError, flights};

/// The `route` of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// A method label: the standard ones, anything else `other` (a client
/// must not be able to mint series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn is_event_stream(res: &ServiceResponse<impl MessageBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Middleware: count and time every request.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.match_pattern().unwrap_or_else(|| UNMATCHED.to_string());
    let m = metrics::api();
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(e) => {
            let status = e.as_response_error().status_code();
            let labels = [method, route.as_str(), status.as_str()];
            m.http_requests.with_label_values(&labels).inc();
            return Err(e);
        }
    };
    let status = res.status();
    let labels = [method, route.as_str(), status.as_str()];
    m.http_requests.with_label_values(&labels).inc();
    if status.is_success() && is_event_stream(&res) {
        let open = m.open_streams.with_label_values(&[route.as_str()]);
        open.inc();
        return Ok(res.map_body(|_, body| {
            BoxBody::new(Stream {
                body: body.boxed(),
                _open: Open(open),
            })
        }));
    }
    m.http_duration
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    Ok(res.map_into_boxed_body())
}

/// One open stream on the gauge, until dropped.
struct Open(IntGauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// An event stream's body: counted open while it lives (it is dropped when
/// the stream ends or the client goes away).
struct Stream {
    body: BoxBody,
    _open: Open,
}

impl MessageBody for Stream {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// Seats held in Redis now, every flight.
async fn live_holds(state: &AppState) -> Result<i64, StoreError> {
    let (flights, holds) = (flights::list(&state.pool).await?, state.request_holds());
    let held = futures::future::try_join_all(flights.iter().map(|f| holds.list(f.id))).await?;
    Ok(held.iter().map(|h| h.len() as i64).sum())
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Metrics in the Prometheus text format (`flightctl_*`)",
    description = "Served on the **admin listener** (`ADMIN_HOST:ADMIN_PORT`), where Prometheus \
scrapes it. The public listener (this document's server) answers `404 NOT_FOUND` here unless \
`PUBLIC_METRICS=true` (set in development).",
    responses(
        (status = 200, description = "HTTP, hold, admission and stream series; see README", content_type = "text/plain; version=0.0.4", body = String),
        (status = 404, description = "`NOT_FOUND`: asked on the public listener without `PUBLIC_METRICS=true`", body = super::errors::ErrorBody),
    ),
)]
/// `GET /metrics`: the Prometheus text format. The live holds are read when
/// scraped; should Redis or Postgres not answer, that one series is left
/// out and the rest still served.
pub async fn render(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let m = metrics::api();
    let live = tokio::time::timeout(Duration::from_secs(2), live_holds(&state)).await;
    let known = match live {
        Ok(Ok(n)) => {
            m.live_holds.set(n);
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e.report(), "metrics: cannot count live holds");
            false
        }
        Err(_) => {
            tracing::warn!("metrics: counting live holds took over 2s");
            false
        }
    };
    let mut families = m.registry.gather();
    if !known {
        families.retain(|f| f.name() != LIVE_HOLDS);
    }
    let encoder = TextEncoder::new();
    let mut text = Vec::new();
    encoder
        .encode(&families, &mut text)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok()
        .content_type(encoder.format_type())
        .body(text))
}
