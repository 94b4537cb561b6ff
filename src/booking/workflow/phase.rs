//! The booking workflow's state machine, without Temporal: one enum of
//! phases whose variants carry exactly the data valid in them, and the
//! transitions the workflow shell (`mod.rs`) applies for every update,
//! timer and activity result.
//!
//! ```text
//!  AwaitingCreation ──select──▶ Committing(None) ──held──▶ Holding ◀─┐
//!        │ timer                    │ refused                 │      │ refused
//!        ▼                          ▼                         │ select/pay/cancel
//!      Ending(NeverCreated) ◀───────┘                         ▼      │
//!        │                                         Committing(Some(hold))
//!        ▼                                          │held  │paid   │cancelled
//!      Done ◀── Ending(Expired|Failed) ◀─ timer ── Holding  Paying  Done
//!                   ▲                                         │ sold ─▶ Done
//!                   └──────────── payment failed / seats taken┘
//! ```

use serde::{Deserialize, Serialize};

use crate::booking::messages::Refusal;
use crate::domain::{OrderStatus, PaymentCode};

/// A live hold: the seats, until when, and which selection it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub seats: Vec<String>,
    pub expires_at_ms: u64,
    /// Raised by every selection taken: it restarts the timer.
    pub version: u64,
}

/// How an order ends without a sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ending {
    /// Expired, cancelled or failed; `reason` says why it failed.
    Unsold {
        status: OrderStatus,
        reason: Option<String>,
    },
    /// The creating selection was refused or never came: no order exists.
    NeverCreated,
}

/// Where the order is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Started; the creating selection has not been taken.
    AwaitingCreation,
    /// The seats are held until the hold's end.
    Holding(Hold),
    /// A message is committing a change (a selection, a payment, a
    /// cancellation); other messages wait. The order keeps `Some(hold)`
    /// meanwhile; `None` while it is being created.
    Committing(Option<Hold>),
    /// A payment was accepted: the seats are held for the payment window.
    Paying {
        seats: Vec<String>,
        code: PaymentCode,
    },
    /// Ending without a sale: the holds go back, the last row is saved.
    Ending { ending: Ending, seats: Vec<String> },
    /// Nothing more happens.
    Done {
        status: OrderStatus,
        seats: Vec<String>,
    },
}

impl Phase {
    /// The status the order shows.
    pub fn status(&self) -> OrderStatus {
        match self {
            Phase::AwaitingCreation | Phase::Committing(None) => OrderStatus::Created,
            Phase::Holding(_) | Phase::Committing(Some(_)) => OrderStatus::SeatsReserved,
            Phase::Paying { .. } => OrderStatus::PaymentProcessing,
            Phase::Ending {
                ending: Ending::Unsold { status, .. },
                ..
            } => *status,
            Phase::Ending { .. } => OrderStatus::Created,
            Phase::Done { status, .. } => *status,
        }
    }

    /// The seats the order has (held, being paid for, or last held).
    pub fn seats(&self) -> &[String] {
        match self {
            Phase::AwaitingCreation | Phase::Committing(None) => &[],
            Phase::Holding(h) | Phase::Committing(Some(h)) => &h.seats,
            Phase::Paying { seats, .. }
            | Phase::Ending { seats, .. }
            | Phase::Done { seats, .. } => seats,
        }
    }

    /// The end of the hold, while there is one to show.
    pub fn expires_at_ms(&self) -> Option<u64> {
        match self {
            Phase::Holding(h) | Phase::Committing(Some(h)) => Some(h.expires_at_ms),
            _ => None,
        }
    }

    pub fn is_committing(&self) -> bool {
        matches!(self, Phase::Committing(_))
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Phase::Done { .. })
    }

    /// A selection may be taken at `now_ms`: the creating one, or a change
    /// of a live hold.
    pub fn may_select(&self, now_ms: u64) -> Result<(), Refusal> {
        match self {
            Phase::AwaitingCreation => Ok(()),
            other => other.live_hold(now_ms).map(|_| ()),
        }
    }

    /// The live hold a payment or a cancellation acts on at `now_ms`.
    pub fn live_hold(&self, now_ms: u64) -> Result<&Hold, Refusal> {
        match self {
            Phase::Holding(h) if now_ms < h.expires_at_ms => Ok(h),
            Phase::Holding(_) => Err(Refusal::Expired),
            Phase::Ending {
                ending:
                    Ending::Unsold {
                        status: OrderStatus::Expired,
                        ..
                    },
                ..
            } => Err(Refusal::Expired),
            Phase::Done {
                status: OrderStatus::Expired,
                ..
            } => Err(Refusal::Expired),
            other => Err(Refusal::NotModifiable(other.status())),
        }
    }

    /// A message starts committing: others wait until it settles.
    pub fn begin(&mut self) -> Option<Hold> {
        let held = match self {
            Phase::Holding(h) => Some(h.clone()),
            _ => None,
        };
        *self = Phase::Committing(held.clone());
        held
    }

    /// A committing message changed nothing: the order is as before (a
    /// refused creation ends the run without an order).
    pub fn restore(&mut self, before: Option<Hold>) {
        *self = match before {
            Some(hold) => Phase::Holding(hold),
            None => Phase::Ending {
                ending: Ending::NeverCreated,
                seats: Vec::new(),
            },
        };
    }

    /// A selection was taken: the hold restarts in full.
    pub fn hold(&mut self, seats: Vec<String>, expires_at_ms: u64) -> Hold {
        let version = match self {
            Phase::Committing(Some(h)) => h.version + 1,
            _ => 1,
        };
        let hold = Hold {
            seats,
            expires_at_ms,
            version,
        };
        *self = Phase::Holding(hold.clone());
        hold
    }

    /// A payment was accepted: from here the order cannot expire.
    pub fn pay(&mut self, code: PaymentCode) {
        let seats = self.seats().to_vec();
        *self = Phase::Paying { seats, code };
    }

    /// The order starts ending without a sale (a timer, a failed payment,
    /// a cancellation of the workflow). An order already ending or done
    /// keeps its ending.
    pub fn end(&mut self, ending: Ending) {
        if matches!(self, Phase::Ending { .. } | Phase::Done { .. }) {
            return;
        }
        let ending = match (self.status(), ending) {
            (OrderStatus::Created, _) => Ending::NeverCreated,
            (_, ending) => ending,
        };
        let seats = self.seats().to_vec();
        *self = Phase::Ending { ending, seats };
    }

    /// The ending is saved and the holds released (or the seats sold).
    pub fn finish(&mut self, status: OrderStatus) {
        let seats = self.seats().to_vec();
        *self = Phase::Done { status, seats };
    }

    /// The hold of `version` ran out: the order expires, unless a selection
    /// or a payment came first.
    pub fn expire(&mut self, version: u64) {
        if let Phase::Holding(h) = self
            && h.version == version
        {
            self.end(Ending::Unsold {
                status: OrderStatus::Expired,
                reason: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn holding() -> Phase {
        let mut p = Phase::AwaitingCreation;
        p.begin();
        p.hold(seats(&["1A"]), 1_000);
        p
    }

    #[test]
    fn a_creation_takes_seats_and_starts_the_first_hold() {
        let p = holding();
        assert_eq!(p.status(), OrderStatus::SeatsReserved);
        assert_eq!(p.expires_at_ms(), Some(1_000));
        assert!(matches!(p, Phase::Holding(Hold { version: 1, .. })));
    }

    #[test]
    fn a_refused_creation_ends_without_an_order() {
        let mut p = Phase::AwaitingCreation;
        let before = p.begin();
        assert_eq!(p.status(), OrderStatus::Created);
        p.restore(before);
        assert!(matches!(
            p,
            Phase::Ending {
                ending: Ending::NeverCreated,
                ..
            }
        ));
        assert_eq!(
            p.may_select(0),
            Err(Refusal::NotModifiable(OrderStatus::Created))
        );
    }

    #[test]
    fn a_change_restarts_the_hold_and_a_refused_one_keeps_it() {
        let mut p = holding();
        let before = p.begin();
        assert_eq!(p.status(), OrderStatus::SeatsReserved);
        p.restore(before.clone());
        assert_eq!(Some(&p), before.map(Phase::Holding).as_ref());
        p.begin();
        let hold = p.hold(seats(&["2B"]), 2_000);
        assert_eq!(hold.version, 2);
        assert_eq!(p.seats(), ["2B"]);
    }

    #[test]
    fn a_hold_past_its_end_refuses_as_expired() {
        let p = holding();
        assert!(p.live_hold(999).is_ok());
        assert_eq!(p.live_hold(1_000), Err(Refusal::Expired));
        assert_eq!(p.may_select(1_000), Err(Refusal::Expired));
    }

    #[test]
    fn only_the_current_hold_expires() {
        let mut p = holding();
        p.begin();
        p.hold(seats(&["2B"]), 2_000);
        p.expire(1);
        assert_eq!(p.status(), OrderStatus::SeatsReserved);
        p.expire(2);
        assert_eq!(p.status(), OrderStatus::Expired);
        assert_eq!(p.live_hold(0), Err(Refusal::Expired));
        p.finish(OrderStatus::Expired);
        assert_eq!(p.seats(), ["2B"]);
        assert!(p.is_done());
    }

    #[test]
    fn a_paid_order_cannot_expire_or_change() {
        let mut p = holding();
        p.begin();
        p.pay(PaymentCode::parse("00000").unwrap());
        assert_eq!(p.status(), OrderStatus::PaymentProcessing);
        p.expire(1);
        assert_eq!(p.status(), OrderStatus::PaymentProcessing);
        assert_eq!(
            p.may_select(0),
            Err(Refusal::NotModifiable(OrderStatus::PaymentProcessing))
        );
        p.finish(OrderStatus::Confirmed);
        assert_eq!(p.seats(), ["1A"]);
    }

    #[test]
    fn an_ending_is_kept_once_chosen() {
        let mut p = holding();
        let failed = Ending::Unsold {
            status: OrderStatus::Failed,
            reason: Some("x".into()),
        };
        p.end(failed.clone());
        p.end(Ending::Unsold {
            status: OrderStatus::Cancelled,
            reason: None,
        });
        assert_eq!(p.status(), OrderStatus::Failed);
    }

    #[test]
    fn a_workflow_cancelled_before_creation_ends_without_an_order() {
        let mut p = Phase::AwaitingCreation;
        p.end(Ending::Unsold {
            status: OrderStatus::Cancelled,
            reason: None,
        });
        assert!(matches!(
            p,
            Phase::Ending {
                ending: Ending::NeverCreated,
                ..
            }
        ));
    }
}
