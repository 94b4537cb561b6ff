//! Money: one type for every price, total, refund and revenue, in whole
//! cents (US dollars, as the seed's prices). It serialises as the plain
//! number and binds as Postgres `BIGINT`, so payloads, rows and bodies keep
//! their form; only the code knows it is money.

use std::fmt;
use std::iter::Sum;
use std::ops::Add;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// An amount of money in cents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub const fn new(cents: i64) -> Self {
        Cents(cents)
    }

    /// The amount as a number of cents (an API body's `…Cents` member).
    pub const fn get(self) -> i64 {
        self.0
    }

    /// This amount `n` times: the price of `n` seats at this fare.
    pub fn times(self, n: usize) -> Self {
        Cents(self.0 * n as i64)
    }
}

impl Add for Cents {
    type Output = Cents;

    fn add(self, other: Cents) -> Cents {
        Cents(self.0 + other.0)
    }
}

impl Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(amounts: I) -> Cents {
        amounts.fold(Cents::ZERO, Add::add)
    }
}

/// `123456` cents as `$1,234.56`, as the web UI and the mails show prices.
impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let (whole, part) = (self.0.unsigned_abs() / 100, self.0.unsigned_abs() % 100);
        let digits = whole.to_string();
        let mut grouped = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        write!(f, "{sign}${grouped}.{part:02}")
    }
}

impl ToSql for Cents {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Cents {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        i64::from_sql(ty, raw).map(Cents)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_dollars_and_cents() {
        assert_eq!(Cents::new(123_456).to_string(), "$1,234.56");
        assert_eq!(Cents::new(35_000).to_string(), "$350.00");
        assert_eq!(Cents::new(5).to_string(), "$0.05");
        assert_eq!(Cents::new(-100_000_001).to_string(), "-$1,000,000.01");
    }

    #[test]
    fn a_fare_times_seats_is_the_total() {
        assert_eq!(Cents::new(35_000).times(3), Cents::new(105_000));
        let sum: Cents = [Cents::new(1), Cents::new(2)].into_iter().sum();
        assert_eq!(sum, Cents::new(3));
    }

    #[test]
    fn it_travels_as_the_plain_number() {
        assert_eq!(serde_json::to_string(&Cents::new(27_500)).unwrap(), "27500");
        let back: Cents = serde_json::from_str("27500").unwrap();
        assert_eq!(back, Cents::new(27_500));
    }
}
