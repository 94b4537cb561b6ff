//! What the order endpoints read and answer: request bodies, answers, the
//! status view of an order row, and parsing at the edge.

use crate::api::ErrorCode;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::request_id;
use crate::api::{ApiError, AppState, bodies};
use crate::domain::{self, OrderStatus, SeatSelection, seat_texts};
use crate::orders::{Hold, SeatRequest};
use crate::passengers::{self, Passenger, PassengerInput};
use crate::store::orders::Order;
use crate::store::refunds;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"flightId": "550e8400-e29b-41d4-a716-446655440001", "seats": ["1A", "1B"]}))]
pub struct CreateOrder {
    #[schema(value_type = Uuid)]
    pub flight_id: String,
    #[schema(value_type = SeatList)]
    pub seats: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"seats": ["1A", "2C"]}))]
pub struct ChangeSeats {
    #[schema(value_type = SeatList)]
    pub seats: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"paymentCode": "00000", "passengers": [
    {"seat": "12A", "givenName": "Ada", "familyName": "Lovelace", "email": "ada@example.com"}
]}))]
pub struct PayBody {
    /// 5 digits. `00000` always succeeds, `99999` is always declined,
    /// `88888` always times out; other codes fail at the configured rate.
    #[schema(value_type = String, pattern = "^[0-9]{5}$", example = "00000")]
    pub payment_code: serde_json::Value,
    /// Optional: the order's passengers, one per held seat, checked as
    /// `PUT /api/orders/{id}/passengers` checks them. Given, they replace
    /// any named before and are saved with the payment, in the same step:
    /// a refusal saves neither. Absent: the passengers named before.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Passenger>>, min_items = 1, max_items = 9)]
    pub passengers: Option<serde_json::Value>,
}

impl PayBody {
    /// The passengers the payment names, checked: 400
    /// `INVALID_PASSENGERS` naming the seat and field at fault.
    pub fn passengers(&self) -> Result<Option<Vec<Passenger>>, ApiError> {
        let Some(list) = &self.passengers else {
            return Ok(None);
        };
        let list: Vec<PassengerInput> = serde_json::from_value(list.clone()).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidPassengers,
                "passengers must be a list of {seat, givenName, familyName, email?}",
            )
            .about(None, "passengers")
        })?;
        PassengersBody { passengers: list }.parse().map(Some)
    }
}

/// 1 to 9 distinct seat ids of one flight, e.g. `["1A", "12F"]` (a lowercase
/// column letter is accepted; the answer names the seat in capitals).
pub struct SeatList;

impl utoipa::PartialSchema for SeatList {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        let seat = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(domain::SEAT_ID_PATTERN))
            .examples(["12A"]);
        ArrayBuilder::new()
            .items(seat)
            .min_items(Some(1))
            .max_items(Some(domain::MAX_SEATS_PER_ORDER))
            .unique_items(true)
            .into()
    }
}

impl ToSchema for SeatList {}

/// A create's body, parsed: 400 `INVALID_FLIGHT_ID` or `INVALID_SEATS`.
pub fn seat_request(body: &CreateOrder) -> Result<SeatRequest, ApiError> {
    let flight_id = domain::parse_id(&body.flight_id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidFlightId,
            format!("{:?} is not a flight id (a UUID)", body.flight_id),
        )
    })?;
    let seats = selection(&body.seats)?;
    Ok(SeatRequest {
        flight_id: flight_id.into(),
        seats,
    })
}

/// The passengers of an order: one per held seat.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"passengers": [
    {"seat": "12A", "givenName": "Ada", "familyName": "Lovelace", "email": "ada@example.com"},
    {"seat": "12B", "givenName": "Charles", "familyName": "Babbage"}
]}))]
pub struct PassengersBody {
    #[schema(value_type = Vec<Passenger>, min_items = 1, max_items = 9)]
    pub passengers: Vec<PassengerInput>,
}

impl PassengersBody {
    /// The list, checked: 400 `INVALID_PASSENGERS` naming the seat and
    /// field at fault.
    pub fn parse(&self) -> Result<Vec<Passenger>, ApiError> {
        passengers::validate(&self.passengers).map_err(|e| {
            let message = e.to_string();
            ApiError::new(ErrorCode::InvalidPassengers, message).about(Some(e.seat), e.field)
        })
    }
}

/// The seats an order holds.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    pub order_id: Uuid,
    /// `booking-<orderId>` (on creation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// `SEATS_RESERVED`.
    pub status: OrderStatus,
    pub seats: Vec<String>,
    /// When the hold ends unless paid or changed (RFC 3339, UTC).
    pub expires_at: Option<DateTime<Utc>>,
    /// The latest a seat change can make the hold end: the order's creation
    /// plus `HOLD_MAX_LIFETIME` (RFC 3339, UTC). A change restarts the hold
    /// up to it, never past it.
    pub max_expires_at: Option<DateTime<Utc>>,
}

impl Held {
    /// The body of a hold: `workflow_id` on creation only.
    pub fn of(hold: &Hold, workflow_id: Option<String>) -> Self {
        Self {
            order_id: hold.order_id.uuid(),
            workflow_id,
            status: hold.status,
            seats: seat_texts(&hold.seats),
            expires_at: hold.expires_at,
            max_expires_at: hold.max_expires_at,
        }
    }
}

/// An accepted change of the order's status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    pub order_id: Uuid,
    pub status: OrderStatus,
}

/// The order's status, from its row.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub order_id: Uuid,
    pub workflow_id: String,
    pub flight_id: Uuid,
    pub status: OrderStatus,
    pub seats: Vec<String>,
    /// When the hold ends (RFC 3339, UTC); none unless seats are held.
    pub expires_at: Option<DateTime<Utc>>,
    /// While seats are held, the latest a seat change can make the hold
    /// end: the order's creation plus `HOLD_MAX_LIFETIME` (RFC 3339, UTC).
    /// A change restarts the hold up to it; naming passengers does not
    /// restart it.
    pub max_expires_at: Option<DateTime<Utc>>,
    /// Whole seconds left on the hold; 0 when none is running.
    pub timer_remaining: u64,
    /// Payment validation attempts made so far.
    pub payment_attempts: u32,
    pub max_payment_attempts: u32,
    /// Why the last payment attempt failed, or why the order failed.
    pub last_error: Option<String>,
    pub total_price_cents: i64,
    /// One object per held seat: its cabin, the price it was taken at and
    /// its fare rules (`totalPriceCents` is the sum of the prices). A later
    /// fare change never alters them.
    pub seat_prices: Vec<crate::api::bodies::SeatPriceBody>,
    /// The seats named so far (all of them before paying), one object per
    /// seat: the seat only. Names and emails are never on a route keyed by
    /// the order id (the id is in the workflow id and in log spans): the
    /// page that sent them keeps them, and the booking look-up shows the
    /// names to whoever knows the reference and a family name.
    pub passengers: Vec<NamedSeat>,
    /// The booking reference, once confirmed (6 characters, no look-alikes).
    #[schema(example = "K7PQ2X")]
    pub booking_reference: Option<String>,
    /// The order's refund, once one is asked for: a cancelled booking's,
    /// or an approved payment's whose order was not sold (the order then
    /// stays `FAILED`, its `lastError` saying the payment is refunded).
    /// Absent from the event stream's events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundBrief>,
}

/// A seat whose passenger is named: no name, no email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct NamedSeat {
    #[schema(example = "12A")]
    pub seat: String,
}

impl NamedSeat {
    /// The seats of `passengers`, and nothing else of them.
    pub fn of(passengers: &[Passenger]) -> Vec<Self> {
        let seats = passengers.iter().map(|p| p.seat.to_string());
        seats.map(|seat| Self { seat }).collect()
    }
}

/// An order's refund as its status shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundBrief {
    /// PENDING, REFUNDED or FAILED.
    pub status: String,
    pub amount_cents: i64,
}

/// The order id of a path, parsed, and named on the request's span.
pub fn order_id(path: &str) -> Result<Uuid, ApiError> {
    let id = domain::parse_id(path).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidOrderId,
            format!("{path:?} is not an order id (a UUID)"),
        )
    })?;
    request_id::order(id.into());
    Ok(id)
}

/// Seats as a request lists them, parsed: 400 `INVALID_SEATS`.
pub fn selection(items: &[String]) -> Result<SeatSelection, ApiError> {
    SeatSelection::parse(items).map_err(|e| ApiError::new(ErrorCode::InvalidSeats, e))
}

/// Whole seconds left on a live hold, from the absolute deadline and the
/// server's clock now.
fn remaining(status: OrderStatus, deadline_ms: Option<u64>) -> u64 {
    match (status, deadline_ms) {
        (OrderStatus::SeatsReserved, Some(d)) => {
            d.saturating_sub(crate::time::now_ms()).div_ceil(1000)
        }
        _ => 0,
    }
}

impl StatusView {
    pub fn from_row(o: Order, max_attempts: u32) -> Self {
        let deadline = o.expires_at.map(|t| t.timestamp_millis() as u64);
        Self {
            order_id: o.id.uuid(),
            workflow_id: o.workflow_id,
            flight_id: o.flight_id.uuid(),
            status: o.status,
            timer_remaining: remaining(o.status, deadline),
            seats: seat_texts(&o.seats),
            expires_at: o.expires_at,
            max_expires_at: o.max_expires_at,
            payment_attempts: o.payment_attempts as u32,
            max_payment_attempts: max_attempts,
            last_error: o.failure_reason.or(o.last_payment_error),
            total_price_cents: o.total_price_cents.get(),
            seat_prices: crate::api::bodies::all(&o.seat_prices),
            passengers: NamedSeat::of(&o.passengers),
            booking_reference: o.reference,
            refund: None,
        }
    }
}

/// The order's status now, from its row.
pub fn status_of(state: &AppState, order: Order) -> StatusView {
    StatusView::from_row(order, state.settings.booking.payment_max_attempts)
}

/// The order's status now, with its refund: only an ended order can have
/// one, so a live order costs no second read.
pub async fn status_with_refund(state: &AppState, order: Order) -> Result<StatusView, ApiError> {
    let refund = match order.status.is_terminal() {
        true => refunds::find(&state.pool, order.id).await?,
        false => None,
    };
    let mut view = status_of(state, order);
    view.refund = refund.map(|r| RefundBrief {
        status: r.status,
        amount_cents: r.amount_cents.get(),
    });
    Ok(view)
}

/// The order's status with its flight.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetail {
    #[serde(flatten)]
    pub status: StatusView,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub flight: bodies::Flight,
}
