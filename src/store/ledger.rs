//! The money ledger (`ledger`, migration V12) and its check.
//!
//! Every approved charge and every refund paid is a ledger row, written by
//! Postgres triggers on `payment_attempts` (outcome SUCCEEDED) and
//! `provider_refunds`, never by code here: no path that moves money can
//! skip it. At most one charge per order (a unique index); rows are never
//! changed or deleted (a trigger refuses).
//!
//! The check: per order, what was charged less what was refunded must be
//! what the order holds sold, its total while its seats are sold to it
//! (CONFIRMED, REFUND_PENDING, REFUND_FAILED), else nothing; and the seats
//! table must book to it exactly the seats a sale lists. Each order that
//! disagrees is a [`Discrepancy`] with the reason in words. Two moments of
//! an order's own progress are not discrepancies: a live order charged
//! whose sale is being committed, and a refund paid whose release is being
//! committed (each the next step of a running workflow; should that
//! workflow be lost, the sweep ends the order and the mismatch shows).

use std::collections::BTreeMap;

use deadpool_postgres::Pool;
use tokio_postgres::Row;

use super::StoreError;
use crate::domain::{FlightId, OrderId, OrderStatus};
use crate::money::Cents;

/// One order's money and what it holds sold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderMoney {
    pub order_id: OrderId,
    /// `None`: the ledger has money for an order with no row.
    pub status: Option<OrderStatus>,
    pub flight_id: Option<FlightId>,
    pub flight_number: Option<String>,
    /// The order's total.
    pub price: Cents,
    pub charged: Cents,
    pub refunded: Cents,
    /// What a cancelled booking's fare rules keep: its total less the
    /// refund recorded for it (the cancellation fees); nothing otherwise.
    pub retained: Cents,
    /// Seats the order lists.
    pub seats: i64,
    /// Seats the `seats` table books to it.
    pub booked: i64,
}

impl OrderMoney {
    /// The price of what it holds sold.
    pub fn sold(&self) -> Cents {
        match self.status {
            Some(status) if status.keeps_sale() => self.price,
            Some(OrderStatus::Refunded) => self.retained,
            _ => Cents::ZERO,
        }
    }

    /// What is off, in words; `None`: it balances.
    pub fn problem(&self) -> Option<String> {
        let problems: Vec<String> = [self.money_problem(), self.seat_problem()]
            .into_iter()
            .flatten()
            .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// A step of the order's own progress, taken in the ledger and not yet
    /// in its row: charged in full while live (the sale is being committed),
    /// refunded in full while REFUND_PENDING (the release is).
    fn settling(&self) -> bool {
        let (charged, refunded) = (self.charged.get(), self.refunded.get());
        match self.status {
            Some(OrderStatus::RefundPending) => {
                charged > 0 && refunded == charged - self.retained.get()
            }
            Some(status) if status.is_live() => refunded == 0 && self.charged == self.price,
            _ => false,
        }
    }

    fn money_problem(&self) -> Option<String> {
        let (charged, refunded, sold) =
            (self.charged.get(), self.refunded.get(), self.sold().get());
        let net = charged - refunded;
        if net == sold || self.settling() {
            return None;
        }
        Some(if self.status.is_none() {
            "money moved for an order that has no row".to_string()
        } else if refunded > charged {
            "refunded more than charged".to_string()
        } else if sold == 0 && refunded == 0 {
            "charged without a sale".to_string()
        } else if sold == 0 {
            "charged without a sale, refunded only in part".to_string()
        } else if charged == 0 {
            "sold without a charge".to_string()
        } else if net == 0 {
            "refunded while still sold".to_string()
        } else {
            format!(
                "charged {} net for a sale of {}",
                Cents::new(net),
                Cents::new(sold)
            )
        })
    }

    /// The seats table disagrees with what the order holds sold.
    fn seat_problem(&self) -> Option<String> {
        let status = self.status?;
        let expected = if status.keeps_sale() { self.seats } else { 0 };
        if self.booked == expected {
            return None;
        }
        Some(if status.keeps_sale() {
            format!(
                "sold, but {} of its {} seats are booked to it",
                self.booked, self.seats
            )
        } else {
            format!("{} seat(s) booked to it without a sale", self.booked)
        })
    }
}

/// One flight's money.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlightMoney {
    pub flight_id: FlightId,
    pub flight_number: String,
    pub charged: Cents,
    pub refunded: Cents,
    pub sold: Cents,
}

/// An order whose money does not match what it holds sold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discrepancy {
    pub order_id: OrderId,
    pub flight_id: Option<FlightId>,
    pub status: Option<OrderStatus>,
    pub charged: Cents,
    pub refunded: Cents,
    pub sold: Cents,
    pub problem: String,
}

/// The whole ledger against what is sold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Money {
    pub charged: Cents,
    pub refunded: Cents,
    pub sold: Cents,
    /// By flight number.
    pub flights: Vec<FlightMoney>,
    /// By order id.
    pub discrepancies: Vec<Discrepancy>,
}

/// Totals, per flight, and every order that does not balance.
pub fn summarise(orders: &[OrderMoney]) -> Money {
    let mut money = Money::default();
    let mut flights: BTreeMap<(String, FlightId), FlightMoney> = BTreeMap::new();
    for o in orders {
        let sold = o.sold();
        money.charged = money.charged + o.charged;
        money.refunded = money.refunded + o.refunded;
        money.sold = money.sold + sold;
        if let (Some(id), Some(number)) = (o.flight_id, &o.flight_number) {
            let flight = flights
                .entry((number.clone(), id))
                .or_insert_with(|| FlightMoney {
                    flight_id: id,
                    flight_number: number.clone(),
                    charged: Cents::ZERO,
                    refunded: Cents::ZERO,
                    sold: Cents::ZERO,
                });
            flight.charged = flight.charged + o.charged;
            flight.refunded = flight.refunded + o.refunded;
            flight.sold = flight.sold + sold;
        }
        if let Some(problem) = o.problem() {
            money.discrepancies.push(Discrepancy {
                order_id: o.order_id,
                flight_id: o.flight_id,
                status: o.status,
                charged: o.charged,
                refunded: o.refunded,
                sold,
                problem,
            });
        }
    }
    money.flights = flights.into_values().collect();
    money
}

/// Every order that has money on the ledger, seats booked to it, or was
/// ever sold; any other order has nothing to balance.
pub async fn orders(pool: &Pool) -> Result<Vec<OrderMoney>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "WITH money AS (
                SELECT order_id,
                       COALESCE(sum(amount_cents) FILTER (WHERE kind = 'CHARGE'), 0)::bigint AS charged,
                       COALESCE(sum(amount_cents) FILTER (WHERE kind = 'REFUND'), 0)::bigint AS refunded
                FROM ledger GROUP BY order_id),
             booked AS (
                SELECT order_id, count(*) AS booked FROM seats
                WHERE order_id IS NOT NULL GROUP BY order_id)
             SELECT COALESCE(o.id, m.order_id) AS order_id, o.status, o.flight_id, f.flight_number,
                    COALESCE(o.total_price_cents, 0) AS price,
                    COALESCE(m.charged, 0) AS charged, COALESCE(m.refunded, 0) AS refunded,
                    COALESCE(cardinality(o.seats), 0)::bigint AS seats,
                    GREATEST(COALESCE(o.total_price_cents - r.amount_cents, 0), 0)::bigint
                        AS retained,
                    COALESCE(b.booked, 0) AS booked
             FROM orders o
             FULL JOIN money m ON m.order_id = o.id
             LEFT JOIN booked b ON b.order_id = o.id
             LEFT JOIN refunds r ON r.order_id = o.id AND o.confirmed_at IS NOT NULL
             LEFT JOIN flights f ON f.id = o.flight_id
             WHERE m.order_id IS NOT NULL OR b.order_id IS NOT NULL OR o.confirmed_at IS NOT NULL
             ORDER BY 1",
            &[],
        )
        .await?;
    rows.iter().map(order_money).collect()
}

fn order_money(r: &Row) -> Result<OrderMoney, StoreError> {
    let status = match r.get::<_, Option<&str>>("status") {
        Some(text) => {
            Some(OrderStatus::parse(text).ok_or_else(|| StoreError::corrupt("status", text))?)
        }
        None => None,
    };
    Ok(OrderMoney {
        order_id: r.get("order_id"),
        status,
        flight_id: r.get("flight_id"),
        flight_number: r.get("flight_number"),
        price: r.get("price"),
        charged: r.get("charged"),
        refunded: r.get("refunded"),
        retained: r.get("retained"),
        seats: r.get("seats"),
        booked: r.get("booked"),
    })
}

/// The ledger checked against every order.
pub async fn check(pool: &Pool) -> Result<Money, StoreError> {
    Ok(summarise(&orders(pool).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICE: Cents = Cents::new(25_000);

    /// A two-seat order of `status` with what the ledger has for it; its
    /// seats booked to it while it keeps a sale.
    fn order(status: OrderStatus, charged: i64, refunded: i64) -> OrderMoney {
        OrderMoney {
            order_id: OrderId::random(),
            status: Some(status),
            flight_id: Some(FlightId::random()),
            flight_number: Some("FL101".into()),
            price: PRICE,
            charged: Cents::new(charged),
            refunded: Cents::new(refunded),
            retained: Cents::ZERO,
            seats: 2,
            booked: if status.keeps_sale() { 2 } else { 0 },
        }
    }

    fn problem(status: OrderStatus, charged: i64, refunded: i64) -> Option<String> {
        order(status, charged, refunded).problem()
    }

    #[test]
    fn what_is_sold_and_paid_for_balances() {
        use OrderStatus::*;
        let p = PRICE.get();
        for (status, charged, refunded) in [
            (Confirmed, p, 0),
            (RefundFailed, p, 0),
            (RefundPending, p, 0),
            (Refunded, p, p),
            // A payment approved without a sale, paid back.
            (Failed, p, p),
            (Expired, 0, 0),
            (Cancelled, 0, 0),
            (SeatsReserved, 0, 0),
            // The sale or the release being committed.
            (PaymentProcessing, p, 0),
            (RefundPending, p, p),
        ] {
            assert_eq!(
                problem(status, charged, refunded),
                None,
                "{status:?} {charged} {refunded}"
            );
        }
    }

    #[test]
    fn each_mismatch_says_what_is_off() {
        use OrderStatus::*;
        let p = PRICE.get();
        for (status, charged, refunded, said) in [
            (Failed, p, 0, "charged without a sale"),
            (
                Cancelled,
                p,
                100,
                "charged without a sale, refunded only in part",
            ),
            (Confirmed, 0, 0, "sold without a charge"),
            (Refunded, p, 2 * p, "refunded more than charged"),
            (RefundFailed, p, p, "refunded while still sold"),
            (Confirmed, 100, 0, "charged $1.00 net for a sale of $250.00"),
            // Charged, but not its total: not the sale's own step.
            (PaymentProcessing, 100, 0, "charged without a sale"),
        ] {
            assert_eq!(
                problem(status, charged, refunded).as_deref(),
                Some(said),
                "{status:?} {charged} {refunded}"
            );
        }
    }

    #[test]
    fn the_seats_table_must_agree_with_the_sale() {
        let p = PRICE.get();
        let mut half = order(OrderStatus::Confirmed, p, 0);
        half.booked = 1;
        assert_eq!(
            half.problem().as_deref(),
            Some("sold, but 1 of its 2 seats are booked to it")
        );
        let mut kept = order(OrderStatus::Refunded, p, 0);
        kept.booked = 2;
        assert_eq!(
            kept.problem().as_deref(),
            Some("charged without a sale; 2 seat(s) booked to it without a sale")
        );
    }

    #[test]
    fn totals_add_up_per_flight_and_list_each_discrepancy() {
        let p = PRICE.get();
        let sold = order(OrderStatus::Confirmed, p, 0);
        let mut refunded = order(OrderStatus::Refunded, p, p);
        refunded.flight_id = sold.flight_id;
        let unsold = order(OrderStatus::Failed, p, 0);
        let mut orphan = order(OrderStatus::Failed, 0, 300);
        (orphan.status, orphan.flight_id, orphan.flight_number) = (None, None, None);
        let money = summarise(&[sold.clone(), refunded, unsold.clone(), orphan.clone()]);
        assert_eq!(
            (money.charged, money.refunded, money.sold),
            (Cents::new(3 * p), Cents::new(p + 300), PRICE)
        );
        assert_eq!(money.flights.len(), 2);
        let shared = money
            .flights
            .iter()
            .find(|f| Some(f.flight_id) == sold.flight_id)
            .unwrap();
        assert_eq!(
            (shared.charged, shared.refunded, shared.sold),
            (Cents::new(2 * p), PRICE, PRICE)
        );
        let listed: Vec<_> = money
            .discrepancies
            .iter()
            .map(|d| (d.order_id, d.problem.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                (unsold.order_id, "charged without a sale"),
                (orphan.order_id, "money moved for an order that has no row")
            ]
        );
    }
}
