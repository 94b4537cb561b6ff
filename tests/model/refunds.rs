//! The refund's steps: its workflow, the provider, an operator. A refund
//! touches its own row, and at its end the booking's seats.

use super::protocol::{OrderIx, REFUND_ATTEMPTS, Refund, RefundStatus, Row, State};

/// The customer cancels a confirmed booking: a refund is asked (the seats
/// stay sold until it is paid).
pub fn cancel_booking(s: &mut State, o: OrderIx) -> bool {
    let order = s.order(o);
    if order.row != Row::Confirmed || order.refund.is_some() {
        return false;
    }
    order.refund = Some(Refund::new());
    true
}

/// The refund's workflow, the refund under way.
fn working_refund(s: &mut State, o: OrderIx) -> Option<&mut Refund> {
    s.order(o).refund.as_mut().filter(|r| r.works())
}

/// The provider declines a payout (never one it made: the payout looks up
/// its idempotency key before anything else). The run's last decline
/// leaves the refund REFUND_FAILED.
pub fn provider_declines(s: &mut State, o: OrderIx) -> bool {
    let Some(r) = working_refund(s, o) else {
        return false;
    };
    let RefundStatus::Pending { declines } = r.status else {
        return false;
    };
    if r.paid_out || r.declines_left == 0 {
        return false;
    }
    r.declines_left -= 1;
    r.status = if declines + 1 == REFUND_ATTEMPTS {
        RefundStatus::Failed
    } else {
        RefundStatus::Pending {
            declines: declines + 1,
        }
    };
    true
}

/// The provider pays out (recorded under the refund's key).
pub fn provider_pays(s: &mut State, o: OrderIx) -> bool {
    match working_refund(s, o) {
        Some(r) if !r.paid_out => {
            r.paid_out = true;
            true
        }
        _ => false,
    }
}

/// Postgres, one transaction: the refund ends REFUNDED; a refunded
/// booking's seats go back on sale.
pub fn finish_refund(s: &mut State, o: OrderIx) -> bool {
    match working_refund(s, o) {
        Some(r) if r.paid_out => r.status = RefundStatus::Refunded,
        _ => return false,
    }
    if s.orders[o as usize].row == Row::Confirmed {
        s.order(o).row = Row::Refunded;
        for owner in &mut s.sold {
            if *owner == Some(o) {
                *owner = None;
            }
        }
    }
    true
}

/// The refund's workflow run is lost (once): the sweep resumes it.
pub fn refund_crash(s: &mut State, o: OrderIx) -> bool {
    match working_refund(s, o) {
        Some(r) if !r.crashed => {
            r.running = false;
            r.crashed = true;
            true
        }
        _ => false,
    }
}

/// An operator retries a REFUND_FAILED refund: pending again, run anew.
pub fn operator_retry(s: &mut State, o: OrderIx) -> bool {
    match &mut s.order(o).refund {
        Some(r) if r.status == RefundStatus::Failed => {
            r.status = RefundStatus::Pending { declines: 0 };
            r.running = true;
            true
        }
        _ => false,
    }
}
