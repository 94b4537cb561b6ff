//! API bodies that show a stored row. The store's rows are not API types:
//! each body here is built from its row and owns its OpenAPI schema, so a
//! column can change without changing the wire, and the other way round.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::OrderStatus;
use crate::store::{flights, ledger, ops, refunds};

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Flight {
    pub id: Uuid,
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub departure_time: DateTime<Utc>,
    pub arrival_time: DateTime<Utc>,
    pub total_seats: i32,
    /// Seats not sold in Postgres; live holds are subtracted by the caller.
    pub available_seats: i32,
    /// The economy fare (the flight's own price; kept for clients that
    /// know one price per flight).
    pub price_cents: i64,
    /// False while an operator has closed its sales: creates are refused
    /// (409 `SALES_CLOSED`); orders already made go on.
    pub sales_open: bool,
    /// The cheapest seat's price (cabin fare plus surcharges) where the
    /// answer lists flights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_price_cents: Option<i64>,
    /// A scheduled sale's opening (RFC 3339): before it creates are
    /// refused 409 `SALES_NOT_OPEN` and buyers wait in the flight's queue
    /// (`POST /api/flights/{id}/queue`); from it every create needs an
    /// admission from the queue.
    pub sales_open_at: Option<DateTime<Utc>>,
}

impl From<&flights::Flight> for Flight {
    fn from(f: &flights::Flight) -> Self {
        Self {
            id: f.id.uuid(),
            flight_number: f.flight_number.clone(),
            origin: f.origin.clone(),
            destination: f.destination.clone(),
            departure_time: f.departure_time,
            arrival_time: f.arrival_time,
            total_seats: f.total_seats,
            available_seats: f.available_seats,
            price_cents: f.price_cents.get(),
            sales_open: f.sales_open,
            from_price_cents: None,
            sales_open_at: f.sales_open_at,
        }
    }
}

/// A flight's sales, as the console shows them.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlightSales {
    #[serde(flatten)]
    pub flight: Flight,
    /// Seats sold (booked in Postgres).
    pub sold: i64,
    /// Seats live orders reserve now: held in Redis or claimed by a payment.
    pub held: i64,
    /// Seats neither sold nor held.
    pub available: i64,
    /// What the sold bookings paid (refunded ones excluded).
    pub revenue_cents: i64,
    /// Bookings confirmed per minute over the last 30 minutes, oldest first.
    pub bookings_per_minute: Vec<i64>,
}

impl From<&ops::FlightSales> for FlightSales {
    fn from(s: &ops::FlightSales) -> Self {
        Self {
            flight: Flight::from(&s.flight),
            sold: s.sold,
            held: s.held,
            available: s.available,
            revenue_cents: s.revenue_cents.get(),
            bookings_per_minute: s.bookings_per_minute.clone(),
        }
    }
}

/// A refund as the booking look-up shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// PENDING, REFUNDED or FAILED.
    pub status: String,
    pub amount_cents: i64,
    pub attempts: i32,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&refunds::Refund> for Refund {
    fn from(r: &refunds::Refund) -> Self {
        Self {
            status: r.status.clone(),
            amount_cents: r.amount_cents.get(),
            attempts: r.attempts,
            requested_at: r.requested_at,
            finished_at: r.finished_at,
        }
    }
}

/// One line of the audit trail.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub operator: String,
    /// `cancel_order`, `refund_booking`, `retry_refund`, `close_sales`, `open_sales`,
    /// `add_flight`, `sign_in`, `sign_out`; `read_order` and `read_orders`: an
    /// operator was shown passengers' names and emails.
    pub action: String,
    /// What it acted on: an order id, a booking reference, a flight
    /// (`orders` for the order list, whose detail lists the ids shown).
    pub target: String,
    /// `ok`, or the error code it was refused with.
    pub outcome: String,
    pub detail: Option<String>,
}

impl From<&ops::AuditEntry> for AuditEntry {
    fn from(e: &ops::AuditEntry) -> Self {
        Self {
            at: e.at,
            operator: e.operator.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            outcome: e.outcome.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// One status an order had, and when the database recorded it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: String,
    pub at: DateTime<Utc>,
}

impl From<&ops::StatusChange> for StatusChange {
    fn from(c: &ops::StatusChange) -> Self {
        Self {
            status: c.status.clone(),
            at: c.at,
        }
    }
}

/// One payment attempt of an order.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: i32,
    pub outcome: String,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<&ops::Attempt> for Attempt {
    fn from(a: &ops::Attempt) -> Self {
        Self {
            attempt: a.attempt,
            outcome: a.outcome.clone(),
            error: a.error.clone(),
            at: a.at,
        }
    }
}

/// One run of the reconciliation sweep.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SweepRun {
    pub at: DateTime<Utc>,
    /// What it fixed (the sweep's report).
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

impl From<&ops::SweepRun> for SweepRun {
    fn from(r: &ops::SweepRun) -> Self {
        Self {
            at: r.at,
            report: r.report.clone(),
        }
    }
}

/// The money ledger against what is sold: approved charges less refunds
/// must be the price of what is held sold, order by order.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// Every approved charge.
    pub charged_cents: i64,
    /// Every refund paid.
    pub refunded_cents: i64,
    /// The price of every order whose seats are sold to it now.
    pub sold_cents: i64,
    /// The same, per flight, by flight number.
    pub flights: Vec<FlightMoney>,
    /// Every order whose charges less refunds are not what it holds sold
    /// (or whose seats disagree with its sale); empty when all balances.
    pub discrepancies: Vec<Discrepancy>,
}

impl From<&ledger::Money> for Money {
    fn from(m: &ledger::Money) -> Self {
        Self {
            charged_cents: m.charged.get(),
            refunded_cents: m.refunded.get(),
            sold_cents: m.sold.get(),
            flights: all(&m.flights),
            discrepancies: all(&m.discrepancies),
        }
    }
}

/// One flight's money.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlightMoney {
    pub flight_id: Uuid,
    pub flight_number: String,
    pub charged_cents: i64,
    pub refunded_cents: i64,
    pub sold_cents: i64,
}

impl From<&ledger::FlightMoney> for FlightMoney {
    fn from(f: &ledger::FlightMoney) -> Self {
        Self {
            flight_id: f.flight_id.uuid(),
            flight_number: f.flight_number.clone(),
            charged_cents: f.charged.get(),
            refunded_cents: f.refunded.get(),
            sold_cents: f.sold.get(),
        }
    }
}

/// An order whose money does not match what it holds sold.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Discrepancy {
    pub order_id: Uuid,
    /// Null: the ledger has money for an order with no row.
    pub flight_id: Option<Uuid>,
    /// Null: no order row.
    pub status: Option<OrderStatus>,
    pub charged_cents: i64,
    pub refunded_cents: i64,
    pub sold_cents: i64,
    /// What is off, like "charged without a sale", "sold without a
    /// charge", "refunded more than charged".
    pub problem: String,
}

impl From<&ledger::Discrepancy> for Discrepancy {
    fn from(d: &ledger::Discrepancy) -> Self {
        Self {
            order_id: d.order_id.uuid(),
            flight_id: d.flight_id.map(|f| f.uuid()),
            status: d.status,
            charged_cents: d.charged.get(),
            refunded_cents: d.refunded.get(),
            sold_cents: d.sold.get(),
            problem: d.problem.clone(),
        }
    }
}

/// Each row of `rows` as its body.
pub fn all<'a, R: 'a, B: From<&'a R>>(rows: &'a [R]) -> Vec<B> {
    rows.iter().map(B::from).collect()
}

/// A cabin of a flight: its rows, fare and fare rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CabinBody {
    pub code: crate::fares::Cabin,
    #[schema(example = "Business")]
    pub name: String,
    pub first_row: i32,
    pub last_row: i32,
    /// The cabin's fare: a seat costs it plus its features' surcharges.
    pub price_cents: i64,
    /// Whether a cancellation refunds (the price less the fee) or is refused.
    pub refundable: bool,
    pub cancellation_fee_cents: i64,
}

impl From<&crate::fares::CabinFare> for CabinBody {
    fn from(c: &crate::fares::CabinFare) -> Self {
        Self {
            code: c.code,
            name: c.name.clone(),
            first_row: c.first_row,
            last_row: c.last_row,
            price_cents: c.price_cents.get(),
            refundable: c.refundable,
            cancellation_fee_cents: c.cancellation_fee_cents.get(),
        }
    }
}

/// One seat's price and fare rules, fixed when the order took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatPriceBody {
    #[schema(example = "2A")]
    pub seat: String,
    pub cabin: crate::fares::Cabin,
    pub price_cents: i64,
    pub refundable: bool,
    pub cancellation_fee_cents: i64,
}

impl From<&crate::fares::SeatPrice> for SeatPriceBody {
    fn from(p: &crate::fares::SeatPrice) -> Self {
        Self {
            seat: p.seat.to_string(),
            cabin: p.cabin,
            price_cents: p.price_cents.get(),
            refundable: p.refundable,
            cancellation_fee_cents: p.cancellation_fee_cents.get(),
        }
    }
}
