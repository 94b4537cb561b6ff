//! The booking workflow's state machine, without Temporal: one enum of
//! phases whose variants carry exactly the data valid in them (the hold,
//! the payment and its attempts, how the order ends), and the transitions
//! the workflow shell (`mod.rs`, `steps.rs`) applies for every update, timer
//! and activity result. Nothing the order shows is kept beside the phase.
//!
//! ```text
//!  AwaitingCreation ──begin──▶ Committing(None) ──hold──▶ Holding ◀───────────────┐
//!    │ end: the creation        │ restore: refused,         │ begin: select,      │ hold: taken (restarts,
//!    │ timer ran out            │ late                      │ passengers, pay,    │ never past the cap)
//!    ▼                          ▼                           ▼ cancel              │ keep: passengers saved
//!  Ending(NeverCreated) ◀───────┘                  Committing(Some(hold)) ────────┘ restore: refused, late
//!    │                                               │ pay        │ cancelled  │ end: cancel saved,
//!    │                                               ▼            ▼            │ release unknown
//!    │                        attempt, attempted ⟲ Paying      Done(CANCELLED) │
//!    │                                               │ sold                    │
//!    │                                               ▼                         │
//!    │                                          Done(CONFIRMED)                │
//!    │                                                                         ▼
//!    │                     Ending(Expired | Failed | Cancelled) ◀──────────────┘
//!    │                        ▲  expire: the hold timer ran out (from Holding)
//!    │                        ▲  end: payment failed, seats taken (from Paying)
//!    │                        ▲  end: workflow cancelled or failed midway (from
//!    │                        │  any phase not Ending or Done)
//!    │ finish: end_order      │ finish: end_order, the last row saved and
//!    ▼ (no row)               ▼ every hold released
//!  Done(CREATED)           Done(EXPIRED | FAILED | CANCELLED)
//! ```
//!
//! An order still `Created` (never held seats) that is told to end always
//! ends [`Ending::NeverCreated`]; an ending once chosen is kept.
//!
//! Holds end: the creating selection fixes the order's cap, its creation
//! plus the maximum lifetime ([`HoldRules`]); every later selection
//! restarts the hold in full but never past the cap
//! ([`Phase::restarted_end`]), and a passenger update keeps the hold as it
//! is ([`Phase::keep`]). So an order that keeps changing its seats still
//! expires at its cap.

use serde::{Deserialize, Serialize};

use crate::booking::messages::Refusal;
use crate::domain::{OrderStatus, PaymentCode, SeatId};

/// A live hold: the seats, until when, and which selection it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub seats: Vec<SeatId>,
    pub expires_at_ms: u64,
    /// The latest any hold of the order may end: its creation plus the
    /// hold's maximum lifetime. Set by the creating selection; no change
    /// moves it.
    pub max_expires_at_ms: u64,
    /// Raised by every selection taken: it restarts the timer.
    pub version: u64,
}

impl Hold {
    /// When this hold ends, and the latest any hold of the order may.
    pub fn end(&self) -> HoldEnd {
        HoldEnd {
            expires_at_ms: self.expires_at_ms,
            max_expires_at_ms: self.max_expires_at_ms,
        }
    }
}

/// How long a hold lasts, and how long an order may hold seats at all
/// (the workflow's input: fixed at its start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldRules {
    pub hold_ms: u64,
    pub max_lifetime_ms: u64,
}

/// When a hold ends (Unix ms), and the cap no hold of the order passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldEnd {
    pub expires_at_ms: u64,
    pub max_expires_at_ms: u64,
}

/// The payment's attempts: how many were made (the one under way
/// included) and why the last one failed. None before payment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    pub made: u32,
    pub last_error: Option<String>,
}

/// No payment was attempted.
static NO_ATTEMPTS: Attempts = Attempts {
    made: 0,
    last_error: None,
};

/// A payment accepted: the seats held for the payment window, the code to
/// validate, the attempts so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub seats: Vec<SeatId>,
    pub code: PaymentCode,
    pub attempts: Attempts,
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

impl Ending {
    /// A cancellation: the customer's, an operator's, or the workflow's.
    pub fn cancelled(reason: Option<String>) -> Self {
        Ending::Unsold {
            status: OrderStatus::Cancelled,
            reason,
        }
    }

    /// The status the ended order shows.
    pub fn status(&self) -> OrderStatus {
        match self {
            Ending::Unsold { status, .. } => *status,
            Ending::NeverCreated => OrderStatus::Created,
        }
    }

    /// Why the order failed (or was cancelled with the workflow).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Ending::Unsold { reason, .. } => reason.as_deref(),
            Ending::NeverCreated => None,
        }
    }
}

/// How an order ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fate {
    /// Paid and sold: CONFIRMED.
    Sold,
    /// Ended without a sale.
    Unsold(Ending),
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
    Paying(Payment),
    /// Ending without a sale: the holds go back, the last row is saved.
    Ending {
        ending: Ending,
        seats: Vec<SeatId>,
        attempts: Attempts,
    },
    /// Nothing more happens.
    Done {
        fate: Fate,
        seats: Vec<SeatId>,
        attempts: Attempts,
    },
}

impl Phase {
    /// The status the order shows.
    pub fn status(&self) -> OrderStatus {
        match self {
            Phase::AwaitingCreation | Phase::Committing(None) => OrderStatus::Created,
            Phase::Holding(_) | Phase::Committing(Some(_)) => OrderStatus::SeatsReserved,
            Phase::Paying(_) => OrderStatus::PaymentProcessing,
            Phase::Ending { ending, .. } => ending.status(),
            Phase::Done {
                fate: Fate::Sold, ..
            } => OrderStatus::Confirmed,
            Phase::Done {
                fate: Fate::Unsold(ending),
                ..
            } => ending.status(),
        }
    }

    /// The seats the order has (held, being paid for, or last held).
    pub fn seats(&self) -> &[SeatId] {
        match self {
            Phase::AwaitingCreation | Phase::Committing(None) => &[],
            Phase::Holding(h) | Phase::Committing(Some(h)) => &h.seats,
            Phase::Paying(p) => &p.seats,
            Phase::Ending { seats, .. } | Phase::Done { seats, .. } => seats,
        }
    }

    /// The end of the hold, while there is one to show.
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.held().map(|h| h.expires_at_ms)
    }

    /// The latest the hold may end however the seats change, while there
    /// is a hold to show.
    pub fn max_expires_at_ms(&self) -> Option<u64> {
        self.held().map(|h| h.max_expires_at_ms)
    }

    fn held(&self) -> Option<&Hold> {
        match self {
            Phase::Holding(h) | Phase::Committing(Some(h)) => Some(h),
            _ => None,
        }
    }

    /// When a hold restarted at `now_ms` by a selection committing now
    /// ends: in full, but never past the order's cap. The creating
    /// selection sets the cap (`now_ms` plus the maximum lifetime); a
    /// change keeps the one it has.
    pub fn restarted_end(&self, now_ms: u64, rules: HoldRules) -> HoldEnd {
        let max_expires_at_ms = match self.held() {
            Some(h) => h.max_expires_at_ms,
            None => now_ms.saturating_add(rules.max_lifetime_ms),
        };
        HoldEnd {
            expires_at_ms: now_ms.saturating_add(rules.hold_ms).min(max_expires_at_ms),
            max_expires_at_ms,
        }
    }

    /// The payment's attempts, from the first one on.
    pub fn attempts(&self) -> &Attempts {
        match self {
            Phase::Paying(p) => &p.attempts,
            Phase::Ending { attempts, .. } | Phase::Done { attempts, .. } => attempts,
            _ => &NO_ATTEMPTS,
        }
    }

    /// Why the order failed, once it is ending or ended with a reason.
    pub fn failure_reason(&self) -> Option<&str> {
        match self {
            Phase::Ending { ending, .. }
            | Phase::Done {
                fate: Fate::Unsold(ending),
                ..
            } => ending.reason(),
            _ => None,
        }
    }

    /// A message is committing: others wait until it settles.
    pub fn is_committing(&self) -> bool {
        matches!(self, Phase::Committing(_))
    }

    /// The order ended: nothing more happens.
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
            other if other.status() == OrderStatus::Expired => Err(Refusal::Expired),
            other => Err(Refusal::NotModifiable(other.status())),
        }
    }

    /// A message starts committing: others wait until it settles. Returns
    /// the hold the order keeps meanwhile.
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
    pub fn restore(&mut self) {
        let Phase::Committing(before) = self else {
            return;
        };
        *self = match before.take() {
            Some(hold) => Phase::Holding(hold),
            None => Phase::Ending {
                ending: Ending::NeverCreated,
                seats: Vec::new(),
                attempts: Attempts::default(),
            },
        };
    }

    /// A selection was taken: the hold restarts, to `end` (see
    /// [`Phase::restarted_end`]).
    pub fn hold(&mut self, seats: Vec<SeatId>, end: HoldEnd) -> Hold {
        let version = match self {
            Phase::Committing(Some(h)) => h.version + 1,
            _ => 1,
        };
        let hold = Hold {
            seats,
            expires_at_ms: end.expires_at_ms,
            max_expires_at_ms: end.max_expires_at_ms,
            version,
        };
        *self = Phase::Holding(hold.clone());
        hold
    }

    /// A committing message that changes no hold (a passenger update) was
    /// saved: the hold goes on as it was, its end and its timer untouched.
    pub fn keep(&mut self) {
        if let Phase::Committing(Some(h)) = self {
            *self = Phase::Holding(h.clone());
        }
    }

    /// A payment was accepted: from here the order cannot expire.
    pub fn pay(&mut self, code: PaymentCode) {
        let seats = self.seats().to_vec();
        *self = Phase::Paying(Payment {
            seats,
            code,
            attempts: Attempts::default(),
        });
    }

    /// Payment attempt `number` starts.
    pub fn attempt(&mut self, number: u32) {
        if let Phase::Paying(p) = self {
            p.attempts.made = number;
        }
    }

    /// The attempt under way ended: `error` says why it failed (none: it
    /// succeeded).
    pub fn attempted(&mut self, error: Option<String>) {
        if let Phase::Paying(p) = self {
            p.attempts.last_error = error;
        }
    }

    /// The payment went through and the seats are sold.
    pub fn sold(&mut self) {
        if let Phase::Paying(p) = self {
            *self = Phase::Done {
                fate: Fate::Sold,
                seats: std::mem::take(&mut p.seats),
                attempts: std::mem::take(&mut p.attempts),
            };
        }
    }

    /// A live order was cancelled: its row saved CANCELLED and every hold
    /// released, in one step.
    pub fn cancelled(&mut self) {
        if let Phase::Committing(Some(h)) = self {
            *self = Phase::Done {
                fate: Fate::Unsold(Ending::cancelled(None)),
                seats: std::mem::take(&mut h.seats),
                attempts: Attempts::default(),
            };
        }
    }

    /// The order starts ending without a sale (a timer, a failed payment,
    /// a cancellation of the workflow). An order already ending or done
    /// keeps its ending.
    pub fn end(&mut self, ending: Ending) {
        if matches!(self, Phase::Ending { .. } | Phase::Done { .. }) {
            return;
        }
        let ending = match self.status() {
            OrderStatus::Created => Ending::NeverCreated,
            _ => ending,
        };
        *self = Phase::Ending {
            ending,
            seats: self.seats().to_vec(),
            attempts: self.attempts().clone(),
        };
    }

    /// The ending is saved and the holds released.
    pub fn finish(&mut self) {
        if let Phase::Ending {
            ending,
            seats,
            attempts,
        } = self
        {
            *self = Phase::Done {
                fate: Fate::Unsold(ending.clone()),
                seats: std::mem::take(seats),
                attempts: std::mem::take(attempts),
            };
        }
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

    fn seats(s: &[&str]) -> Vec<SeatId> {
        s.iter().map(|s| SeatId::parse(s).unwrap()).collect()
    }

    /// Holds of 1 s, at most 3 s from the creation.
    const RULES: HoldRules = HoldRules {
        hold_ms: 1_000,
        max_lifetime_ms: 3_000,
    };

    fn end(expires_at_ms: u64) -> HoldEnd {
        HoldEnd {
            expires_at_ms,
            max_expires_at_ms: 3_000,
        }
    }

    /// Created at 0: held until 1 s, never past 3 s.
    fn holding() -> Phase {
        let mut p = Phase::AwaitingCreation;
        p.begin();
        let end = p.restarted_end(0, RULES);
        p.hold(seats(&["1A"]), end);
        p
    }

    fn paying() -> Phase {
        let mut p = holding();
        p.begin();
        p.pay(PaymentCode::parse("00000").unwrap());
        p
    }

    fn failed(reason: &str) -> Ending {
        Ending::Unsold {
            status: OrderStatus::Failed,
            reason: Some(reason.into()),
        }
    }

    #[test]
    fn a_creation_takes_seats_and_starts_the_first_hold() {
        let p = holding();
        assert_eq!(p.status(), OrderStatus::SeatsReserved);
        assert_eq!(p.expires_at_ms(), Some(1_000));
        assert_eq!(p.attempts(), &Attempts::default());
        assert!(matches!(p, Phase::Holding(Hold { version: 1, .. })));
    }

    #[test]
    fn a_refused_creation_ends_without_an_order() {
        let mut p = Phase::AwaitingCreation;
        assert_eq!(p.begin(), None);
        assert_eq!(p.status(), OrderStatus::Created);
        p.restore();
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
        p.restore();
        assert_eq!(Some(&p), before.map(Phase::Holding).as_ref());
        p.begin();
        let hold = p.hold(seats(&["2B"]), end(2_000));
        assert_eq!(hold.version, 2);
        assert_eq!(p.seats(), seats(&["2B"]));
    }

    #[test]
    fn the_creation_sets_the_cap_and_changes_restart_the_hold_up_to_it() {
        let mut p = holding();
        assert_eq!(p.max_expires_at_ms(), Some(3_000));
        // A change at 1.5 s: a full hold, to 2.5 s.
        p.begin();
        assert_eq!(p.restarted_end(1_500, RULES), end(2_500));
        p.hold(seats(&["2B"]), end(2_500));
        // A change at 2.5 s: cut to the cap, 3 s; one at 2.9 s too.
        for now in [2_500, 2_900] {
            p.begin();
            let capped = p.restarted_end(now, RULES);
            assert_eq!(capped, end(3_000));
            p.hold(seats(&["1A"]), capped);
            assert_eq!(p.expires_at_ms(), Some(3_000));
            assert_eq!(p.max_expires_at_ms(), Some(3_000));
        }
        // At the cap the hold is over: no change extends it.
        assert_eq!(p.may_select(3_000), Err(Refusal::Expired));
        p.expire(4);
        assert_eq!(p.status(), OrderStatus::Expired);
        assert_eq!(p.max_expires_at_ms(), None);
    }

    #[test]
    fn a_cap_shorter_than_a_hold_ends_the_first_hold_at_the_cap() {
        let rules = HoldRules {
            hold_ms: 5_000,
            max_lifetime_ms: 3_000,
        };
        let mut p = Phase::AwaitingCreation;
        p.begin();
        let capped = HoldEnd {
            expires_at_ms: 3_100,
            max_expires_at_ms: 3_100,
        };
        assert_eq!(p.restarted_end(100, rules), capped);
    }

    #[test]
    fn a_passenger_update_keeps_the_hold_and_its_timer() {
        let mut p = holding();
        let before = p.clone();
        p.begin();
        p.keep();
        assert_eq!(p, before, "same end, same version: the timer goes on");
        p.expire(1);
        assert_eq!(p.status(), OrderStatus::Expired);
    }

    #[test]
    fn keep_changes_only_a_committing_order() {
        let mut p = Phase::AwaitingCreation;
        p.keep();
        assert_eq!(p, Phase::AwaitingCreation);
        let mut p = paying();
        let before = p.clone();
        p.keep();
        assert_eq!(p, before);
    }

    #[test]
    fn restore_changes_only_a_committing_order() {
        let mut p = holding();
        let before = p.clone();
        p.restore();
        assert_eq!(p, before);
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
        p.hold(seats(&["2B"]), end(2_000));
        p.expire(1);
        assert_eq!(p.status(), OrderStatus::SeatsReserved);
        p.expire(2);
        assert_eq!(p.status(), OrderStatus::Expired);
        assert_eq!(p.live_hold(0), Err(Refusal::Expired));
        p.finish();
        assert_eq!(p.status(), OrderStatus::Expired);
        assert_eq!(p.seats(), seats(&["2B"]));
        assert_eq!(p.live_hold(0), Err(Refusal::Expired));
        assert!(p.is_done());
    }

    #[test]
    fn a_paid_order_cannot_expire_or_change() {
        let mut p = paying();
        assert_eq!(p.status(), OrderStatus::PaymentProcessing);
        p.expire(1);
        assert_eq!(p.status(), OrderStatus::PaymentProcessing);
        assert_eq!(
            p.may_select(0),
            Err(Refusal::NotModifiable(OrderStatus::PaymentProcessing))
        );
    }

    #[test]
    fn each_attempt_is_counted_with_its_error() {
        let mut p = paying();
        p.attempt(1);
        assert_eq!(p.attempts().made, 1);
        assert_eq!(p.attempts().last_error, None);
        p.attempted(Some("declined".into()));
        p.attempt(2);
        let want = Attempts {
            made: 2,
            last_error: Some("declined".into()),
        };
        assert_eq!(p.attempts(), &want);
        p.attempted(None);
        assert_eq!(p.attempts().last_error, None);
    }

    #[test]
    fn attempts_count_only_while_paying() {
        let mut p = holding();
        p.attempt(1);
        p.attempted(Some("x".into()));
        assert_eq!(p.attempts(), &Attempts::default());
    }

    #[test]
    fn a_sale_ends_confirmed_with_its_attempts() {
        let mut p = paying();
        p.attempt(2);
        p.sold();
        assert_eq!(p.status(), OrderStatus::Confirmed);
        assert_eq!(p.seats(), seats(&["1A"]));
        assert_eq!(p.attempts().made, 2);
        assert_eq!(p.failure_reason(), None);
        assert!(p.is_done());
    }

    #[test]
    fn a_failed_payment_keeps_its_attempts_and_reason_to_the_end() {
        let mut p = paying();
        p.attempt(3);
        p.attempted(Some("declined".into()));
        p.end(failed("payment failed after 3 attempts: declined"));
        assert_eq!(p.status(), OrderStatus::Failed);
        let reason = Some("payment failed after 3 attempts: declined");
        assert_eq!(p.failure_reason(), reason);
        assert_eq!(p.attempts().made, 3);
        p.finish();
        assert!(p.is_done());
        assert_eq!(p.status(), OrderStatus::Failed);
        assert_eq!(p.failure_reason(), reason);
        assert_eq!(p.attempts().last_error.as_deref(), Some("declined"));
        assert_eq!(p.seats(), seats(&["1A"]));
    }

    #[test]
    fn a_cancellation_ends_the_order_in_one_step() {
        let mut p = holding();
        p.begin();
        p.cancelled();
        assert!(p.is_done());
        assert_eq!(p.status(), OrderStatus::Cancelled);
        assert_eq!(p.seats(), seats(&["1A"]));
        assert_eq!(p.failure_reason(), None);
        assert_eq!(
            p.live_hold(0),
            Err(Refusal::NotModifiable(OrderStatus::Cancelled))
        );
    }

    #[test]
    fn a_cancellation_whose_release_is_unknown_ends_through_the_run_loop() {
        let mut p = holding();
        p.begin();
        p.end(Ending::cancelled(None));
        assert_eq!(
            p,
            Phase::Ending {
                ending: Ending::cancelled(None),
                seats: seats(&["1A"]),
                attempts: Attempts::default(),
            }
        );
    }

    #[test]
    fn an_ending_is_kept_once_chosen() {
        let mut p = holding();
        p.end(failed("x"));
        p.end(Ending::cancelled(None));
        assert_eq!(p.status(), OrderStatus::Failed);
        p.finish();
        p.end(Ending::cancelled(None));
        assert_eq!(p.status(), OrderStatus::Failed);
    }

    #[test]
    fn a_workflow_cancelled_before_creation_ends_without_an_order() {
        let mut p = Phase::AwaitingCreation;
        p.end(Ending::cancelled(Some("cancelled".into())));
        assert!(matches!(
            p,
            Phase::Ending {
                ending: Ending::NeverCreated,
                ..
            }
        ));
        assert_eq!(p.failure_reason(), None);
        p.finish();
        assert_eq!(p.status(), OrderStatus::Created);
        assert!(p.is_done());
    }
}
