//! Security headers on every answer, and HEAD answered without a body: one
//! middleware (`secure`), wrapped around the whole app in `mod.rs`, so a
//! route added later (or an error page, a 404) has them without asking.
//!
//! - Every answer, JSON too: `X-Content-Type-Options: nosniff` (a browser
//!   runs or renders a body only as the type we said) and
//!   `Referrer-Policy: strict-origin-when-cross-origin`. Not `no-referrer`:
//!   for a form POST that policy makes the browser send `Origin: null`, and
//!   the operator console's CSRF check compares `Origin` with this site;
//!   this one still tells another site the origin only, never a path or a
//!   query (`/manage?reference=…` names a booking).
//! - Every answer with order, booking or ops data — whatever the route
//!   answers under `/api/orders`, `/api/bookings`, `/api/ops`, the page's
//!   stream `/api/events` (it carries the order) and the codec (decrypted
//!   payloads), errors and streams included: `Cache-Control: no-store`, so
//!   no browser, proxy or shared cache keeps it ([`private`]). It replaces
//!   what a handler set (a stream's `no-cache`).
//! - Every HTML answer (`text/html`, whichever route): [`CONTENT_SECURITY_POLICY`]
//!   and `X-Frame-Options: DENY` for browsers older than `frame-ancestors`.
//!   A handler that sets one of these itself keeps its own.
//! - HEAD: the route table answers HEAD on every GET route with the GET
//!   handler. Over HTTP/1.1 actix writes no body bytes for HEAD but still
//!   drains the body, which for an event stream would never end: a
//!   streamed body is dropped here (the stream's watch with it) and the
//!   answer ends after its headers. A sized body is left to actix, which
//!   sends its `Content-Length` as GET would.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;

/// The policy of every page: scripts, styles, images and connections from
/// this origin only, no inline script or style (the pages are static files
/// with their modules and stylesheets under `/assets/`; the UI sets styles
/// through the CSSOM and draws the QR code as SVG elements, which the policy
/// allows), `data:` images for the empty favicon, no plugins, no `<base>`,
/// forms posting here only, and no framing by any site.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub const REFERRER_POLICY: &str = "strict-origin-when-cross-origin";

/// On every answer.
const EVERYWHERE: [(HeaderName, &str); 2] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, REFERRER_POLICY),
];

/// On every HTML answer.
const PAGES: [(HeaderName, &str); 2] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// Where answers carry order, booking or ops data (routed paths; a path
/// under one of these that no route has is a 404 that is not stored
/// either).
const PRIVATE: [&str; 5] = [
    "/api/orders",
    "/api/bookings",
    "/api/ops",
    "/api/events",
    "/codec/",
];

/// Whether answers at `path` (as routed, percent-decoded) carry order,
/// booking or ops data.
pub fn private(path: &str) -> bool {
    PRIVATE.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'))
    })
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.get(..9)
                .is_some_and(|t| t.eq_ignore_ascii_case("text/html"))
        })
}

fn add(headers: &mut HeaderMap, set: &[(HeaderName, &'static str)]) {
    for (name, value) in set {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
    }
}

/// Middleware: the headers above on every answer; a HEAD answer's streamed
/// body ended at once.
pub async fn secure(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, Ended>>, actix_web::Error> {
    let head = req.method() == Method::HEAD;
    // The path as routed (percent-decoded): `/api/%6Frders` is an order too.
    let private = private(req.match_info().as_str());
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    add(headers, &EVERYWHERE);
    if private {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if is_html(headers) {
        add(headers, &PAGES);
    }
    if head && res.response().body().size() == BodySize::Stream {
        return Ok(res.map_body(|_, _| EitherBody::right(Ended)));
    }
    Ok(res.map_into_left_body())
}

/// A streamed body that has ended: what a HEAD answer to an event stream
/// sends after its headers (which stay as GET's, `Transfer-Encoding`
/// included).
pub struct Ended;

impl MessageBody for Ended {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(None)
    }
}

#[cfg(test)]
mod tests {
    use super::private;

    #[test]
    fn order_booking_ops_and_codec_paths_are_private() {
        for path in [
            "/api/orders",
            "/api/orders/1/status",
            "/api/bookings/K7QX2M",
            "/api/bookings/lookup",
            "/api/ops",
            "/api/ops/session",
            "/api/events",
            "/codec/decode",
        ] {
            assert!(private(path), "{path}");
        }
        for path in [
            "/",
            "/api/flights",
            "/api/config",
            "/api/ordersx",
            "/api/opsy",
            "/assets/app.js",
            "/metrics",
        ] {
            assert!(!private(path), "{path}");
        }
    }
}
