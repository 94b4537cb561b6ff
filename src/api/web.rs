//! The web UI, embedded in the binary, and the settings it needs.

use actix_web::http::header::{CACHE_CONTROL, ContentType};
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::{ApiError, AppState, ErrorCode};

const INDEX: &str = include_str!("web/index.html");
const MANAGE: &str = include_str!("web/manage.html");
const OPS: &str = include_str!("web/ops.html");

/// A module of the UI, by file name.
macro_rules! js {
    ($name:literal) => {
        (
            $name,
            "text/javascript; charset=utf-8",
            include_str!(concat!("web/", $name)),
        )
    };
}

const ASSETS: &[(&str, &str, &str)] = &[
    js!("api.js"),
    js!("app.js"),
    js!("booking.js"),
    js!("checkin.js"),
    js!("clock.js"),
    js!("countdown.js"),
    js!("docs.js"),
    js!("dom.js"),
    js!("flights.js"),
    js!("format.js"),
    js!("live.js"),
    js!("manage.js"),
    js!("names.js"),
    js!("ops.js"),
    js!("ops-common.js"),
    js!("ops-dashboard.js"),
    js!("ops-flight-form.js"),
    js!("ops-settings.js"),
    js!("ops-logs.js"),
    js!("ops-order.js"),
    js!("ops-orders.js"),
    js!("ops-signin.js"),
    js!("panels.js"),
    js!("pax-form.js"),
    js!("passengers.js"),
    js!("payment.js"),
    // npm `qrcode-generator` 2.0.4's `dist/qrcode.mjs`, unchanged (MIT,
    // its licence in its header; sha256 ea91d711…4911b7c0).
    (
        "qrcode-generator.mjs",
        "text/javascript; charset=utf-8",
        include_str!("web/vendor/qrcode-generator.mjs"),
    ),
    js!("seatmap.js"),
    js!("ticket.js"),
    js!("waiting-room.js"),
    (
        "docs.css",
        "text/css; charset=utf-8",
        include_str!("web/docs.css"),
    ),
    (
        "ops.css",
        "text/css; charset=utf-8",
        include_str!("web/ops.css"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("web/style.css"),
    ),
];

#[utoipa::path(
    get,
    path = "/",
    tag = "ui",
    summary = "The web UI",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)),
)]
pub async fn index() -> HttpResponse {
    page(INDEX)
}

#[utoipa::path(
    get,
    path = "/manage",
    tag = "ui",
    summary = "Manage a booking: look it up by reference and last name, cancel it for a refund",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)),
)]
pub async fn manage() -> HttpResponse {
    page(MANAGE)
}

#[utoipa::path(
    get,
    path = "/ops",
    tag = "ui",
    summary = "The operator console: flights live, orders, new flights, the sweep's runs, the audit trail (signed in)",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)),
)]
pub async fn ops() -> HttpResponse {
    page(OPS)
}

fn page(html: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(html)
}

#[utoipa::path(
    get,
    path = "/assets/{file}",
    tag = "ui",
    summary = "A module or stylesheet of the web UI or of the reference page",
    params(("file" = String, Path, description = "The file's name", example = "app.js")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"),
            (String = "text/css"),
        )),
        (status = 404, description = "`NOT_FOUND`: no such file", body = super::errors::ErrorBody),
    ),
)]
pub async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, mime, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == path.as_str())
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such asset"))?;
    Ok(HttpResponse::Ok()
        .content_type(*mime)
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(*body))
}

/// What the web UI shows about this deployment.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig {
    temporal_ui_url: String,
    temporal_namespace: String,
    payment_failure_rate: f64,
    payment_max_retries: u32,
    seat_reservation_seconds: u64,
    /// `HOLD_MAX_LIFETIME`: no hold lasts past an order's creation plus this.
    hold_max_lifetime_seconds: u64,
}

/// `GET /api/config`: what the UI shows about this deployment.
#[utoipa::path(
    get,
    path = "/api/config",
    tag = "operations",
    summary = "What the web UI shows about this deployment",
    description = "Served on both listeners. It carries what the UI shows and nothing more: \
the Temporal UI's address (as browsers reach it, for the workflow link), the namespace, and \
the booking rules the page states.",
    responses((status = 200, description = "The settings", body = ClientConfig)),
)]
pub async fn client_config(state: web::Data<AppState>) -> HttpResponse {
    let s = &state.settings;
    HttpResponse::Ok().json(ClientConfig {
        temporal_ui_url: s.temporal.ui_url.trim_end_matches('/').to_string(),
        temporal_namespace: s.temporal.namespace.clone(),
        payment_failure_rate: s.booking.payment_failure_rate,
        payment_max_retries: s.booking.payment_max_attempts,
        seat_reservation_seconds: s.booking.seat_reservation_timeout.as_secs(),
        hold_max_lifetime_seconds: s.booking.hold_max_lifetime.as_secs(),
    })
}
