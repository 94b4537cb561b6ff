//! Orders, one order, cancel and refund, the sweep's runs and the money
//! ledger, the audit trail.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Operator;
use super::{audited, read_audited};
use crate::api::bodies::{self, Attempt, AuditEntry, Money, Refund, StatusChange, SweepRun};
use crate::api::bookings;
use crate::api::errors::ErrorBody;
use crate::api::orders::{Ack, StatusView, answers, context, order_id};
use crate::api::{ApiError, AppState, ErrorCode};
use crate::domain::{FlightId, OrderStatus, seat_texts};
use crate::orders::refund::{self, Refusal};
use crate::passengers::Passenger;
use crate::store::ops::{self as store, OrderFilter};
use crate::store::refunds as refund_rows;
use crate::store::{checkin, flights, ledger, orders};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    /// Only orders of this flight.
    #[param(value_type = Option<Uuid>)]
    flight: Option<String>,
    /// A booking reference, an order id, or a passenger's family name.
    #[param(max_length = 64, pattern = "^[^\\x00-\\x1F\\x7F]*$")]
    q: Option<String>,
    /// From 1.
    #[param(minimum = 1, maximum = 100000)]
    page: Option<i64>,
}

/// An order in the console's list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    order_id: Uuid,
    flight_id: Uuid,
    flight_number: String,
    status: OrderStatus,
    seats: Vec<String>,
    booking_reference: Option<String>,
    passengers: Vec<Passenger>,
    total_price_cents: i64,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    /// Its refund's status (PENDING, REFUNDED, FAILED), if it has one: a
    /// cancelled booking's, or a FAILED order's approved payment's.
    refund: Option<String>,
}

/// A page of orders, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrdersView {
    orders: Vec<OrderItem>,
    page: i64,
    page_size: i64,
    total: i64,
}

#[utoipa::path(
    get,
    path = "/api/ops/orders",
    tag = "operations console",
    summary = "Orders, newest first: by status, flight, reference, family name or order id",
    description = "Each order with its passengers' names and emails: every read is in the audit \
trail (`read_orders`, the ids of the orders shown in its detail; never the search text, which \
may be a name).",
    security(("ops_session" = [])),
    params(OrdersQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrdersView),
        (status = 400, description = "`INVALID_QUERY`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn orders_list(
    state: web::Data<AppState>,
    op: Operator,
    query: web::Query<OrdersQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = orders_page(&state, &query).await;
    let shown = page.as_ref().ok().map(|view| {
        let ids: Vec<String> = view.orders.iter().map(|o| o.order_id.to_string()).collect();
        format!("page {}: {}", view.page, ids.join(" "))
    });
    let target = "orders";
    let page = read_audited(&state, &op, "read_orders", target, shown, page).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The page of orders a query asks for.
async fn orders_page(state: &AppState, query: &OrdersQuery) -> Result<OrdersView, ApiError> {
    let bad = |m: &str| ApiError::new(ErrorCode::InvalidQuery, m.to_string());
    let status = match query.status.as_deref() {
        Some(s) => Some(
            OrderStatus::parse(s)
                .ok_or_else(|| bad("status: not an order status"))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let flight = match query.flight.as_deref() {
        Some(f) => Some(crate::domain::parse_id(f).ok_or_else(|| bad("flight: not a flight id"))?),
        None => None,
    };
    let page = query.page.unwrap_or(1);
    if !(1..=100_000).contains(&page) {
        return Err(bad("page: from 1"));
    }
    if let Some(q) = &query.q
        && (q.chars().count() > 64 || q.chars().any(|c| c < ' ' || c == '\u{7f}'))
    {
        return Err(bad(
            "q: at most 64 characters, none of them control characters",
        ));
    }
    let filter = OrderFilter {
        status,
        flight: flight.map(FlightId::from),
        q: query.q.clone(),
        page,
    };
    let found = store::orders(&state.pool, &filter).await?;
    let mut orders = Vec::with_capacity(found.items.len());
    for (o, number) in found.items {
        let refund = match o.status.is_terminal() {
            true => refund_rows::find(&state.pool, o.id)
                .await?
                .map(|r| r.status),
            false => None,
        };
        orders.push(item(o, number, refund));
    }
    Ok(OrdersView {
        orders,
        page: found.page,
        page_size: found.page_size,
        total: found.total,
    })
}

/// An order as the console lists it.
fn item(o: orders::Order, flight_number: String, refund: Option<String>) -> OrderItem {
    OrderItem {
        order_id: o.id.uuid(),
        flight_id: o.flight_id.uuid(),
        flight_number,
        status: o.status,
        seats: seat_texts(&o.seats),
        booking_reference: o.reference,
        passengers: o.passengers,
        total_price_cents: o.total_price_cents.get(),
        created_at: o.created_at,
        updated_at: o.updated_at,
        refund,
    }
}

/// One order, all of it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// The status as the customer's routes show it (the seats named, no
    /// names).
    order: StatusView,
    /// Who flies, with their emails: personal data, so every read of this
    /// route is audited.
    passengers: Vec<Passenger>,
    flight_number: String,
    created_at: Option<DateTime<Utc>>,
    confirmed_at: Option<DateTime<Utc>>,
    attempts: Vec<Attempt>,
    /// Every status the order had, as the database recorded it.
    history: Vec<StatusChange>,
    refund: Option<Refund>,
    /// Each passenger's e-ticket, by seat (issued at the sale).
    tickets: Vec<TicketView>,
    /// Online check-in: each checked-in passenger's boarding sequence
    /// number; empty until the booking is checked in.
    check_ins: Vec<CheckInView>,
    /// The order's workflow in the Temporal UI.
    workflow_url: String,
}

/// A passenger's e-ticket.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    #[schema(example = "12A")]
    seat: String,
    #[schema(example = "7240000000001", pattern = "^[0-9]{13}$")]
    ticket_number: String,
}

/// A passenger checked in.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckInView {
    #[schema(example = "12A")]
    seat: String,
    /// The boarding sequence number (per flight, from 1).
    sequence: u32,
    /// The compartment code printed on the pass (F, C, E, M).
    #[schema(value_type = String, example = "M")]
    compartment: char,
    checked_in_at: DateTime<Utc>,
}

#[utoipa::path(
    get,
    path = "/api/ops/orders/{id}",
    tag = "operations console",
    summary = "One order: its row, passengers, payment attempts, status history, refund",
    description = "The passengers' names and emails are personal data: every read is in the \
audit trail (`read_order`, the order id its target).",
    security(("ops_session" = [])),
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "`INVALID_ORDER_ID`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn order(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = order_view(&state, &path).await;
    let view = read_audited(&state, &op, "read_order", &path, None, view).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// One order, all of it, personal data included.
async fn order_view(state: &AppState, path: &str) -> Result<OrderView, ApiError> {
    let id = order_id(path)?;
    let order = orders::find(&state.pool, id.into()).await?;
    let flight = flights::find(&state.pool, order.flight_id).await?;
    let ui = state.settings.temporal.ui_url.trim_end_matches('/');
    let namespace = &state.settings.temporal.namespace;
    Ok(OrderView {
        passengers: order.passengers.clone(),
        flight_number: flight.flight_number,
        created_at: order.created_at,
        confirmed_at: order.confirmed_at,
        attempts: bodies::all(&store::attempts(&state.pool, id.into()).await?),
        history: bodies::all(&store::history(&state.pool, id.into()).await?),
        refund: refund_rows::find(&state.pool, id.into())
            .await?
            .as_ref()
            .map(Refund::from),
        tickets: (checkin::tickets(&state.pool, id.into()).await?.into_iter())
            .map(|t| TicketView {
                seat: t.seat.to_string(),
                ticket_number: t.number,
            })
            .collect(),
        check_ins: (checkin::passes(&state.pool, id.into()).await?.into_iter())
            .map(|b| CheckInView {
                seat: b.seat.to_string(),
                sequence: b.sequence,
                compartment: b.compartment,
                checked_in_at: b.checked_in_at,
            })
            .collect(),
        workflow_url: format!(
            "{ui}/namespaces/{namespace}/workflows/{}",
            crate::domain::workflow_id(id.into())
        ),
        order: crate::api::orders::status_view(state, order).await?,
    })
}

#[utoipa::path(
    post,
    path = "/api/ops/orders/{id}/cancel",
    tag = "operations console",
    summary = "Cancel a live order: its holds are released at once",
    security(("ops_session" = [])),
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "Cancelled", body = Ack),
        (status = 400, description = "`INVALID_ORDER_ID`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`CROSS_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_NOT_MODIFIABLE`, `ORDER_EXPIRED`", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: this client has its share of booking calls in progress (`MAX_IN_FLIGHT_PER_CLIENT`); nothing was changed", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY` or `SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
        (status = 504, description = "`OUTCOME_UNKNOWN`", body = ErrorBody),
    ),
)]
pub async fn cancel_order(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let cancel = async {
        let id = order_id(&path)?;
        let ctx = context(&state, &req);
        let status = answers::result(crate::orders::cancel(&ctx, id.into()).await)?;
        Ok(Ack {
            order_id: id,
            status,
        })
    };
    let ack = audited(&state, &op, "cancel_order", &path, cancel.await).await?;
    Ok(HttpResponse::Ok().json(ack))
}

#[utoipa::path(
    post,
    path = "/api/ops/bookings/{reference}/refund",
    tag = "operations console",
    summary = "Refund a confirmed booking (whatever the departure cutoff), or retry a failed refund",
    description = "A `CONFIRMED` booking is cancelled and refunded; a `REFUND_FAILED` one (the \
provider declined `REFUND_MAX_ATTEMPTS` times) is refunded again in a new round: the provider \
keys the payout by the order, so it never pays twice. Audited.",
    security(("ops_session" = [])),
    params(("reference" = String, Path, description = "The booking reference", example = "K7PQ2X")),
    responses(
        (status = 202, description = "The refund is under way", body = crate::api::bookings::Cancelled),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`CROSS_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`BOOKING_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`BOOKING_NOT_CANCELLABLE`: refunded, or its refund under way; `BOOKING_CHECKED_IN`: its passengers have checked in", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
    ),
)]
pub async fn refund_booking(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let refund = async {
        let flow = refund::refund(&bookings::refunds(&state), &path).await?;
        answers::outcome(flow, refused).map(bookings::Cancelled::of)
    };
    let answer = audited(&state, &op, "refund_booking", &path, refund.await).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(answer))
}

#[utoipa::path(
    post,
    path = "/api/ops/orders/{id}/refund",
    tag = "operations console",
    summary = "Retry a refund the payment provider declined for good",
    description = "For an order whose refund is `FAILED`: a booking's (`REFUND_FAILED`), or an \
approved payment's whose order was not sold (the order stays `FAILED`). The refund runs again in \
a new round; the provider keys the payout by the order, so it never pays twice. Audited.",
    security(("ops_session" = [])),
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 202, description = "The refund runs again; the order's status now", body = Ack),
        (status = 400, description = "`INVALID_ORDER_ID`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`CROSS_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_NOT_MODIFIABLE`: the order has no failed refund", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
    ),
)]
pub async fn retry_refund(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let retry = async {
        let id = order_id(&path)?;
        let flow = refund::retry(&bookings::refunds(&state), id.into()).await?;
        let status = answers::outcome(flow, refused)?;
        Ok(Ack {
            order_id: id,
            status,
        })
    };
    let ack = audited(&state, &op, "retry_refund", &path, retry.await).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(ack))
}

/// Why an operator's refund was refused, as HTTP.
fn refused(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::NotCancellable(status) => ApiError::new(
            ErrorCode::BookingNotCancellable,
            format!("the booking is {status}: no refund to make"),
        ),
        Refusal::NothingToRetry(status) => ApiError::new(
            ErrorCode::OrderNotModifiable,
            format!("the order is {status} and has no failed refund to retry"),
        ),
        Refusal::FareNotRefundable => ApiError::new(
            ErrorCode::FareNotRefundable,
            "the booking's fare is not refundable: no refund to make",
        ),
        Refusal::CheckedIn => ApiError::from(ErrorCode::BookingCheckedIn),
        // An operator's refund is refused otherwise only for a booking
        // it does not find: no look-up limit, no cutoff.
        _ => ApiError::new(ErrorCode::BookingNotFound, "no booking with this reference"),
    }
}

/// The sweep's recent runs, and the money ledger checked now.
#[derive(Serialize, ToSchema)]
pub struct SweepView {
    runs: Vec<SweepRun>,
    money: Money,
}

#[utoipa::path(
    get,
    path = "/api/ops/reconciliation",
    tag = "operations console",
    summary = "The reconciliation sweep's recent runs, and the money ledger against what is sold",
    security(("ops_session" = [])),
    responses(
        (status = 200, description = "The runs, newest first, and the money checked now", body = SweepView),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn reconciliation(
    state: web::Data<AppState>,
    _op: Operator,
) -> Result<HttpResponse, ApiError> {
    let runs = store::sweep_runs(&state.pool, 100).await?;
    let money = ledger::check(&state.pool).await?;
    Ok(HttpResponse::Ok().json(SweepView {
        runs: bodies::all(&runs),
        money: Money::from(&money),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From 1.
    #[param(minimum = 1, maximum = 100000)]
    page: Option<i64>,
}

/// A page of the audit trail, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    entries: Vec<AuditEntry>,
    page: i64,
    page_size: i64,
    total: i64,
}

#[utoipa::path(
    get,
    path = "/api/ops/audit",
    tag = "operations console",
    summary = "The audit trail: every operator action, who, what, when, how it ended",
    security(("ops_session" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the trail", body = AuditView),
        (status = 400, description = "`INVALID_QUERY`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn audit(
    state: web::Data<AppState>,
    _op: Operator,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page.unwrap_or(1);
    if !(1..=100_000).contains(&page) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "page: from 1"));
    }
    let found = store::audit_page(&state.pool, page).await?;
    Ok(HttpResponse::Ok().json(AuditView {
        entries: bodies::all(&found.items),
        page: found.page,
        page_size: found.page_size,
        total: found.total,
    }))
}
