//! Admission control: a bound on the booking calls (create, change, pay,
//! cancel) one `serve` keeps in flight towards Temporal. Beyond it a flow
//! comes to [`Outcome::Busy`](super::Outcome::Busy) at once (the API answers
//! `503 SERVICE_BUSY`, its `Retry-After` spread over a few seconds) instead
//! of queueing behind work the engine cannot finish in time.
//!
//! Checkout calls (change, pay, cancel of an order that holds seats) come
//! first: new creates may take only part of the slots, so however hard a
//! crowd of new buyers pushes, a buyer who already holds seats finds room
//! to pay for them.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The share of the slots kept from creates: one in this many.
const CHECKOUT_SHARE: usize = 4;

/// What a booking call does, for admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// A new order: may use the slots checkout calls do not have reserved.
    Create,
    /// A change, payment or cancellation of an existing order: may use
    /// every slot.
    Checkout,
}

/// The in-flight bound of one `serve`.
pub struct Admission {
    /// Every call takes one of these.
    slots: Arc<Semaphore>,
    /// A create also takes one of these: fewer than `slots`.
    creates: Arc<Semaphore>,
    limit: usize,
    create_limit: usize,
}

/// A booking call in flight; its slots free when it drops.
pub struct Ticket {
    _slot: OwnedSemaphorePermit,
    _create: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// At most `limit` calls in flight, creates in all but a quarter of
    /// them: one slot at least is kept for checkout calls, none when the
    /// limit is 1 (creates could not run at all).
    pub fn new(limit: usize) -> Self {
        let reserved = (limit / CHECKOUT_SHARE).max(1).min(limit.saturating_sub(1));
        let create_limit = limit - reserved;
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            creates: Arc::new(Semaphore::new(create_limit)),
            limit,
            create_limit,
        }
    }

    /// A slot for one booking call, or why none is left for its kind (a
    /// sentence for the caller).
    pub fn enter(&self, call: Call) -> Result<Ticket, String> {
        let create = match call {
            Call::Create => match self.creates.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Err(busy(self.create_limit, "new bookings")),
            },
            Call::Checkout => None,
        };
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => Ok(Ticket {
                _slot: slot,
                _create: create,
            }),
            Err(_) => Err(busy(self.limit, "bookings")),
        }
    }
}

/// Turned away: `limit` calls like this one are in flight.
fn busy(limit: usize, what: &str) -> String {
    crate::metrics::api().admission_rejections.inc();
    format!("{limit} {what} are already in progress on this server; try again shortly")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enter_all(admission: &Admission, call: Call, n: usize) -> Vec<Ticket> {
        (0..n)
            .map(|i| match admission.enter(call) {
                Ok(ticket) => ticket,
                Err(_) => panic!("{call:?} {i} of {n} was turned away"),
            })
            .collect()
    }

    #[test]
    fn creates_leave_a_quarter_of_the_slots_to_checkout_calls() {
        let admission = Admission::new(16);
        let _creates = enter_all(&admission, Call::Create, 12);
        let busy = admission
            .enter(Call::Create)
            .err()
            .expect("a 13th create is busy");
        assert!(busy.starts_with("12 new bookings"), "{busy}");
        let _checkouts = enter_all(&admission, Call::Checkout, 4);
        assert!(
            admission.enter(Call::Checkout).is_err(),
            "every slot is taken"
        );
    }

    #[test]
    fn checkout_calls_may_take_every_slot_and_then_creates_wait() {
        let admission = Admission::new(16);
        let checkouts = enter_all(&admission, Call::Checkout, 16);
        assert!(admission.enter(Call::Checkout).is_err());
        assert!(admission.enter(Call::Create).is_err());
        drop(checkouts);
        let _creates = enter_all(&admission, Call::Create, 12);
    }

    #[test]
    fn a_slot_is_free_again_when_its_ticket_drops() {
        let admission = Admission::new(4);
        let creates = enter_all(&admission, Call::Create, 3);
        assert!(admission.enter(Call::Create).is_err());
        drop(creates);
        let _again = enter_all(&admission, Call::Create, 3);
        let _checkout = enter_all(&admission, Call::Checkout, 1);
    }

    #[test]
    fn a_limit_of_one_serves_creates_too() {
        let admission = Admission::new(1);
        let create = admission.enter(Call::Create).expect("the one slot");
        assert!(admission.enter(Call::Checkout).is_err());
        drop(create);
        assert!(admission.enter(Call::Checkout).is_ok());
    }
}
