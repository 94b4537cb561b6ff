//! Domain types. Values are parsed once at the edge; past it they are valid
//! by construction.

use std::collections::BTreeSet;
use std::fmt;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use uuid::Uuid;

/// The error a failed conversion to SQL gives.
type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Seat columns of every aircraft we sell.
pub const COLUMNS: [char; 6] = ['A', 'B', 'C', 'D', 'E', 'F'];
/// Most seats one order may hold.
pub const MAX_SEATS_PER_ORDER: usize = 9;

/// What a seat id looks like: the row (1–999, no leading zero), then the
/// column (A–F, either case). `SeatId::parse` accepts exactly these.
pub const SEAT_ID_PATTERN: &str = "^[1-9][0-9]{0,2}[A-Fa-f]$";

/// A seat id such as `12A`: a row number from 1 and a column letter A–F.
/// Serialised, bound to SQL and logged (`{:?}`) as its text, exactly as the
/// plain string it replaced, so recorded payloads and rows keep their form.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SeatId {
    row: u16,
    column: char,
}

impl SeatId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a seat id like 12A");
        let column = text.chars().last().ok_or_else(bad)?.to_ascii_uppercase();
        if !COLUMNS.contains(&column) {
            return Err(bad());
        }
        // The column is one ASCII byte: the rest is the row.
        let digits = &text[..text.len() - 1];
        let canonical = digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if digits.is_empty() || digits.len() > 3 || !canonical {
            return Err(bad());
        }
        let row = digits.parse::<u16>().map_err(|_| bad())?;
        Ok(Self { row, column })
    }

    pub fn row(&self) -> u16 {
        self.row
    }

    pub fn column(&self) -> char {
        self.column
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.row, self.column)
    }
}

impl fmt::Debug for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// A seat id binds as the text Postgres stores (`text`, `text[]`).
impl ToSql for SeatId {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.to_string().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// A seat id equals its canonical text (`12A`, not `12a`).
impl PartialEq<str> for SeatId {
    fn eq(&self, other: &str) -> bool {
        let Some(digits) = other.strip_suffix(self.column) else {
            return false;
        };
        let canonical = digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        canonical && digits.parse() == Ok(self.row)
    }
}

impl PartialEq<&str> for SeatId {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl TryFrom<String> for SeatId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SeatId> for String {
    fn from(value: SeatId) -> Self {
        value.to_string()
    }
}

/// Seat ids as their text: what an API body lists.
pub fn seat_texts(seats: &[SeatId]) -> Vec<String> {
    seats.iter().map(SeatId::to_string).collect()
}

/// Seat ids as one `, `-separated text: what a message names.
pub fn seat_list(seats: &[SeatId]) -> String {
    seat_texts(seats).join(", ")
}

/// 1 to 9 distinct seats, kept sorted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<SeatId>", into = "Vec<SeatId>")]
pub struct SeatSelection(Vec<SeatId>);

impl SeatSelection {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        let seats = items
            .iter()
            .map(|s| SeatId::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::try_from(seats)
    }

    pub fn seats(&self) -> &[SeatId] {
        &self.0
    }

    pub fn ids(&self) -> Vec<String> {
        seat_texts(&self.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<SeatId>> for SeatSelection {
    type Error = String;
    fn try_from(seats: Vec<SeatId>) -> Result<Self, Self::Error> {
        if seats.is_empty() {
            return Err("choose at least one seat".into());
        }
        if seats.len() > MAX_SEATS_PER_ORDER {
            return Err(format!(
                "an order holds at most {MAX_SEATS_PER_ORDER} seats, got {}",
                seats.len()
            ));
        }
        let distinct: BTreeSet<SeatId> = seats.iter().cloned().collect();
        if distinct.len() != seats.len() {
            return Err("each seat may appear only once".into());
        }
        Ok(Self(distinct.into_iter().collect()))
    }
}

impl From<SeatSelection> for Vec<SeatId> {
    fn from(value: SeatSelection) -> Self {
        value.0
    }
}

/// A 5-digit payment code. Never stored, never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentCode(String);

impl PaymentCode {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() == 5 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text.to_string()))
        } else {
            Err("the payment code must be exactly 5 digits".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PaymentCode(*****)")
    }
}

impl TryFrom<String> for PaymentCode {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PaymentCode> for String {
    fn from(value: PaymentCode) -> Self {
        value.0
    }
}

/// Defines an id newtype over a UUID. It serialises (`transparent`), binds to
/// and reads from SQL, and prints as the bare UUID, so recorded payloads and
/// rows keep their form; only the compiler tells the kinds apart.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            /// The UUID, for the edges (API bodies, Temporal ids).
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <Uuid as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $name {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                Uuid::from_sql(ty, raw).map(Self)
            }

            fn accepts(ty: &Type) -> bool {
                <Uuid as FromSql>::accepts(ty)
            }
        }
    };
}

uuid_id!(
    /// The id of an order (and of its booking workflow).
    OrderId
);
uuid_id!(
    /// The id of a flight.
    FlightId
);

/// Parse a UUID path segment.
pub fn parse_id(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text).ok()
}

/// Workflow id of an order's booking workflow.
pub fn workflow_id(order_id: OrderId) -> String {
    format!("booking-{order_id}")
}

/// The status of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Created,
    SeatsReserved,
    PaymentPending,
    PaymentProcessing,
    Confirmed,
    Failed,
    Expired,
    Cancelled,
    /// A confirmed booking the customer cancelled: its refund is running.
    RefundPending,
    /// Refunded; its seats are back on sale.
    Refunded,
    /// The refund's last attempt failed: an operator must act. The seats
    /// stay sold.
    RefundFailed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::SeatsReserved => "SEATS_RESERVED",
            Self::PaymentPending => "PAYMENT_PENDING",
            Self::PaymentProcessing => "PAYMENT_PROCESSING",
            Self::Confirmed => "CONFIRMED",
            Self::Failed => "FAILED",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
            Self::RefundPending => "REFUND_PENDING",
            Self::Refunded => "REFUNDED",
            Self::RefundFailed => "REFUND_FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Created,
            Self::SeatsReserved,
            Self::PaymentPending,
            Self::PaymentProcessing,
            Self::Confirmed,
            Self::Failed,
            Self::Expired,
            Self::Cancelled,
            Self::RefundPending,
            Self::Refunded,
            Self::RefundFailed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Confirmed
                | Self::Failed
                | Self::Expired
                | Self::Cancelled
                | Self::RefundPending
                | Self::Refunded
                | Self::RefundFailed
        )
    }

    /// Paid for: confirmed, and whatever its refund did since.
    pub fn was_sold(self) -> bool {
        matches!(
            self,
            Self::Confirmed | Self::RefundPending | Self::Refunded | Self::RefundFailed
        )
    }

    /// A live order that holds its seats (or pays for them): the only kind
    /// whose seats may be sold to it.
    pub fn holds_seats(self) -> bool {
        matches!(
            self,
            Self::SeatsReserved | Self::PaymentPending | Self::PaymentProcessing
        )
    }

    /// Its seats are sold to it now: what it must have been paid for. A
    /// refund running or failed keeps them sold; a refunded order has none.
    pub fn keeps_sale(self) -> bool {
        matches!(
            self,
            Self::Confirmed | Self::RefundPending | Self::RefundFailed
        )
    }

    /// A live order: its workflow is on its way to an ending.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Created) || self.holds_seats()
    }
}

/// How one payment attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptOutcome {
    Succeeded,
    Declined,
    TimedOut,
    Error,
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_ids_parse_row_and_column() {
        let seat = SeatId::parse("12a").unwrap();
        assert_eq!((seat.row(), seat.column()), (12, 'A'));
        assert_eq!(seat.to_string(), "12A");
        assert_eq!(format!("{seat:?}"), r#""12A""#);
        assert!(seat == "12A" && seat != "12a" && seat != "012A" && seat != "12B");
        for bad in [
            "", "A", "12", "0A", "01A", "12G", "12AA", "-1A", "+1A", "1000A", " 1A", "1A ", "1é",
            "é", "1\u{0}A",
        ] {
            assert!(SeatId::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn a_selection_is_one_to_nine_distinct_seats() {
        assert!(SeatSelection::parse::<&str>(&[]).is_err());
        assert!(SeatSelection::parse(&["1A", "1A"]).is_err());
        let ten: Vec<String> = (1..=10).map(|r| format!("{r}A")).collect();
        assert!(SeatSelection::parse(&ten).is_err());
        let ok = SeatSelection::parse(&["2B", "1A"]).unwrap();
        assert_eq!(ok.ids(), vec!["1A", "2B"]);
    }

    #[test]
    fn payment_codes_are_five_digits() {
        assert!(PaymentCode::parse("00000").is_ok());
        for bad in ["", "1234", "123456", "12a45", " 1234"] {
            assert!(PaymentCode::parse(bad).is_err());
        }
        assert_eq!(
            format!("{:?}", PaymentCode::parse("12345").unwrap()),
            "PaymentCode(*****)"
        );
    }

    #[test]
    fn ids_keep_the_form_of_the_uuid_they_wrap() {
        let uuid = Uuid::from_u128(0x1234);
        let order = OrderId::from(uuid);
        assert_eq!(order.to_string(), uuid.to_string());
        let json = serde_json::to_string(&order).unwrap();
        assert_eq!(json, serde_json::to_string(&uuid).unwrap());
        assert_eq!(serde_json::from_str::<OrderId>(&json).unwrap(), order);
        assert_eq!(uuid.to_string().parse::<FlightId>().unwrap().uuid(), uuid);
        assert!("not-a-uuid".parse::<OrderId>().is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in ["CREATED", "CONFIRMED", "CANCELLED", "PAYMENT_PROCESSING"] {
            assert_eq!(OrderStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(OrderStatus::Expired.is_terminal());
        assert!(!OrderStatus::SeatsReserved.is_terminal());
        assert!(OrderStatus::PaymentProcessing.holds_seats());
        for other in [
            OrderStatus::Created,
            OrderStatus::Failed,
            OrderStatus::Confirmed,
        ] {
            assert!(!other.holds_seats(), "{other}");
        }
    }
}
