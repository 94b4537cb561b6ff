//! A waiting-room ticket's states and the transitions between them. The
//! queue's Lua scripts (`store::queue`) make the transitions atomically in
//! Redis; this is their contract, pure and unit-tested.
//!
//! ```text
//!             opening (shuffled)          admitted (paced)
//!  PREQUEUE ───────────────────▶ WAITING ─────────────────▶ ADMITTED
//!     │                          │   ▲                          │
//!     │ grace lapsed             │   │ seats came back          │ ttl lapsed
//!     ▼                          ▼   │                          ▼
//!  EXPIRED ◀──── grace lapsed ── SOLD_OUT ◀─ every seat sold  EXPIRED
//!                                   or claimed (told at once to all)
//! ```
//!
//! A join after the opening starts in `WAITING` at the back of the line.
//! `ADMITTED` stays `ADMITTED` once its admission made an order (it cannot
//! be used again); a create refused with nothing changed gives it back.

use crate::store::queue::{Raw, Stored};

/// A ticket's state, as the API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketState {
    /// Joined before the sale opens: no place yet.
    Prequeue,
    /// In the line, at a place ≥ 1.
    Waiting,
    /// Admitted: may create one order with its admission until it lapses.
    Admitted,
    /// Every seat is sold or claimed; waiting resumes if seats come back.
    SoldOut,
    /// The place or the admission lapsed.
    Expired,
}

/// What happens to a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The sale opened: the pre-queue is shuffled into the line.
    Opened,
    /// The pacing admitted it.
    Admit,
    /// Every seat is sold or claimed.
    SoldOut,
    /// Seats came back on sale.
    Resumed,
    /// No poll or stream for `QUEUE_GRACE`, or an admission unused for
    /// `ADMISSION_TTL`.
    Lapsed,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The state after `event`, or `None` where the event cannot happen
    /// to a ticket in this state.
    pub fn on(self, event: Event) -> Option<Self> {
        use Event as E;
        use TicketState as S;
        match (self, event) {
            (S::Prequeue, E::Opened) => Some(S::Waiting),
            (S::Prequeue, E::SoldOut) | (S::Waiting, E::SoldOut) => Some(S::SoldOut),
            (S::Waiting, E::Admit) => Some(S::Admitted),
            (S::SoldOut, E::Resumed) => Some(S::Waiting),
            (S::Prequeue | S::Waiting | S::SoldOut | S::Admitted, E::Lapsed) => Some(S::Expired),
            _ => None,
        }
    }

    /// Whether the ticket still stands in the line (its holder keeps it by
    /// polling or streaming).
    pub fn is_queued(self) -> bool {
        matches!(self, Self::Prequeue | Self::Waiting | Self::SoldOut)
    }

    /// The state a ticket read from the queue is in.
    pub fn of(raw: &Raw) -> Self {
        match raw.stored {
            Stored::Expired => Self::Expired,
            Stored::Admitted { .. } => Self::Admitted,
            Stored::Prequeue | Stored::Waiting if raw.sold_out => Self::SoldOut,
            Stored::Prequeue => Self::Prequeue,
            Stored::Waiting => Self::Waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transitions_are_those_of_the_diagram() {
        use Event as E;
        use TicketState as S;
        assert_eq!(S::Prequeue.on(E::Opened), Some(S::Waiting));
        assert_eq!(S::Waiting.on(E::Admit), Some(S::Admitted));
        assert_eq!(S::Waiting.on(E::SoldOut), Some(S::SoldOut));
        assert_eq!(S::SoldOut.on(E::Resumed), Some(S::Waiting));
        assert_eq!(S::Admitted.on(E::Lapsed), Some(S::Expired));
        assert_eq!(
            S::Prequeue.on(E::Admit),
            None,
            "no admission before the opening"
        );
        assert_eq!(S::Expired.on(E::Resumed), None, "a lapsed place is gone");
        assert_eq!(S::Admitted.on(E::SoldOut), None, "an admission stands");
        assert_eq!(S::SoldOut.as_str(), "SOLD_OUT");
    }
}
