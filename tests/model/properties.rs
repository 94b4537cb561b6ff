//! What must hold, named like issue 23's sentences. `always` properties
//! hold in every reachable state; those about how things end hold in every
//! state where no step is left, which every run reaches (the graph is
//! acyclic: see `space::potential`). `sometimes` properties are
//! witnesses that the model does reach what the others speak of.

use stateright::Property;

use super::protocol::{ORDERS, Order, OrderIx, Protocol, RefundStatus, Row, SEATS, State};

pub const NO_SEAT_SOLD_TWICE: &str = "no seat sold twice";
pub const PAYMENT_KEEPS_ITS_SEATS: &str =
    "an accepted payment never loses its seats to another order";
pub const NO_CHARGE_WITHOUT_SEAT: &str = "no charge finds its seats sold to another order";
pub const CLAIMS_BELONG_TO_PAYMENTS: &str = "every claim belongs to an order paying for it";
pub const REFUNDS_PAY_BACK_CHARGES: &str = "a refund pays back an approved charge";
pub const PAID_OUT_NEVER_FAILED: &str = "a refund paid out is never REFUND_FAILED";
pub const REFUNDED_KEEPS_NO_SEAT: &str = "a refunded order keeps no seat";
pub const CHARGES_END_SOLD_OR_REFUNDED: &str =
    "no approved payment ends without a sale or a paid refund";
pub const CLAIMS_END: &str = "every claim is sold or released";
pub const REFUNDS_END: &str = "every refund ends";
pub const ORDERS_END: &str = "every order ends";

pub fn all() -> Vec<Property<Protocol>> {
    vec![
        Property::always(NO_SEAT_SOLD_TWICE, no_seat_sold_twice),
        Property::always(PAYMENT_KEEPS_ITS_SEATS, payments_keep_seats),
        Property::always(NO_CHARGE_WITHOUT_SEAT, no_charge_without_seat),
        Property::always(CLAIMS_BELONG_TO_PAYMENTS, claims_belong_to_payments),
        Property::always(REFUNDS_PAY_BACK_CHARGES, refunds_pay_back_charges),
        Property::always(PAID_OUT_NEVER_FAILED, paid_out_never_failed),
        Property::always(REFUNDED_KEEPS_NO_SEAT, refunded_keep_no_seat),
        Property::always(CHARGES_END_SOLD_OR_REFUNDED, |m: &Protocol, s: &State| {
            !m.is_terminal(s) || charges_sold_or_refunded(s)
        }),
        Property::always(CLAIMS_END, |m: &Protocol, s: &State| {
            !m.is_terminal(s) || s.claim.iter().all(Option::is_none)
        }),
        // A REFUND_FAILED refund offers the operator's retry, so no run
        // ends with one: each ends paid, the provider's declines being
        // finite (PROVIDER_DECLINES).
        Property::always(REFUNDS_END, |m: &Protocol, s: &State| {
            !m.is_terminal(s) || every_refund_paid(s)
        }),
        Property::always(ORDERS_END, |m: &Protocol, s: &State| {
            !m.is_terminal(s) || s.orders.iter().all(|o| !o.row.is_live())
        }),
        Property::sometimes("a booking is sold", |_, s: &State| {
            s.orders.iter().any(|o| o.row == Row::Confirmed)
        }),
        Property::sometimes(
            "a rival holds a seat Redis forgot for a claim",
            rival_holds_claimed_seat,
        ),
        Property::sometimes(
            "an approved payment left unsold is refunded",
            |_, s: &State| s.orders.iter().any(|o| o.row == Row::Failed && refunded(o)),
        ),
        Property::sometimes(
            "the sweep refunds a payment whose workflow died",
            |_, s: &State| {
                let swept = |o: &Order| !o.alive && o.row == Row::Failed && refunded(o);
                s.orders.iter().any(swept)
            },
        ),
        // Every decline used: a run failed (PROVIDER_DECLINES is one run's
        // attempts), and the refund was paid after.
        Property::sometimes(
            "a failed refund is paid after an operator's retry",
            |_, s: &State| {
                let retried =
                    |o: &Order| refunded(o) && o.refund.is_some_and(|r| r.declines_left == 0);
                s.orders.iter().any(retried)
            },
        ),
        Property::sometimes("a refunded booking's seat is sold again", resold),
    ]
}

fn refunded(o: &Order) -> bool {
    o.refund.is_some_and(|r| r.status == RefundStatus::Refunded)
}

fn no_charge_without_seat(_: &Protocol, s: &State) -> bool {
    s.orders.iter().all(|o| !o.lost_seats)
}

fn refunds_pay_back_charges(_: &Protocol, s: &State) -> bool {
    s.orders.iter().all(|o| o.refund.is_none() || o.charged)
}

fn paid_out_never_failed(_: &Protocol, s: &State) -> bool {
    let refunds = s.orders.iter().filter_map(|o| o.refund);
    refunds
        .into_iter()
        .all(|r| !(r.paid_out && r.status == RefundStatus::Failed))
}

fn orders() -> impl Iterator<Item = OrderIx> {
    0..ORDERS as OrderIx
}

/// Each confirmed order has every seat it bought sold to it in Postgres,
/// and each seat sold belongs to a confirmed order that bought it: two
/// orders never have one seat.
fn no_seat_sold_twice(_: &Protocol, s: &State) -> bool {
    let rows_agree = orders().all(|o| {
        s.orders[o as usize].row != Row::Confirmed
            || s.seats_of(o).all(|seat| s.sold[seat] == Some(o))
    });
    let seats_agree = (0..SEATS).all(|seat| {
        s.sold[seat].is_none_or(|o| {
            let order = &s.orders[o as usize];
            order.row == Row::Confirmed && order.wants_seat(seat)
        })
    });
    rows_agree && seats_agree
}

/// While an order is PAYMENT_PROCESSING, none of its seats is sold to
/// another order.
fn payments_keep_seats(_: &Protocol, s: &State) -> bool {
    orders().all(|o| {
        s.orders[o as usize].row != Row::PaymentProcessing
            || s.seats_of(o)
                .all(|seat| s.sold[seat].is_none_or(|buyer| buyer == o))
    })
}

fn claims_belong_to_payments(_: &Protocol, s: &State) -> bool {
    (0..SEATS).all(|seat| {
        s.claim[seat].is_none_or(|o| {
            let order = &s.orders[o as usize];
            order.row == Row::PaymentProcessing && order.wants_seat(seat)
        })
    })
}

fn refunded_keep_no_seat(_: &Protocol, s: &State) -> bool {
    orders().all(|o| {
        !refunded(&s.orders[o as usize])
            || (s.orders[o as usize].row != Row::Confirmed && !s.sold.contains(&Some(o)))
    })
}

fn charges_sold_or_refunded(s: &State) -> bool {
    s.orders
        .iter()
        .all(|o| !o.charged || o.row == Row::Confirmed || refunded(o))
}

fn every_refund_paid(s: &State) -> bool {
    let refunds = s.orders.iter().filter_map(|o| o.refund);
    refunds
        .into_iter()
        .all(|r| r.status == RefundStatus::Refunded)
}

/// An order holds in Redis (and SEATS_RESERVED) a seat another order has
/// claimed: Redis forgot the payer's hold, the claim still guards it.
fn rival_holds_claimed_seat(_: &Protocol, s: &State) -> bool {
    orders().any(|o| {
        s.orders[o as usize].row == Row::SeatsReserved
            && s.seats_of(o).any(|seat| {
                s.redis[seat] == Some(o) && s.claim[seat].is_some_and(|payer| payer != o)
            })
    })
}

/// A seat sold to one order, refunded, then sold to another.
fn resold(_: &Protocol, s: &State) -> bool {
    orders().any(|o| {
        s.orders[o as usize].row == Row::Refunded
            && s.seats_of(o)
                .any(|seat| s.sold[seat].is_some_and(|buyer| buyer != o))
    })
}
