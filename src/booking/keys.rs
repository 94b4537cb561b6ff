//! `Idempotency-Key` as one explicit state machine. A key is
//!
//! ```text
//!   New ──bind──▶ Running ──final answer──▶ Answered   (replayed for 24 h)
//!                  │  ▲ └──answer unknown──┘ (a retry sends the same work)
//!   nothing happened│  │renew (a fresh order for a create, the same order
//!                  ▼  │       for a payment; the next attempt's update id)
//!                Abandoned
//! ```
//!
//! and Closed once its retention has passed (the store then reads it as
//! New). Running is the only state that sends work: the same order and the
//! same workflow update id on every retry of one attempt, so Temporal answers
//! that attempt once. An attempt the workflow refused without doing
//! anything (it came after the caller stopped waiting, or met a store
//! outage), or a create whose run ended without an order, is Abandoned, so
//! a retry starts a new attempt instead of replaying a stale refusal or a
//! stale success.

use uuid::Uuid;

/// Where a key stands. `A` is the stored answer.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyState<A> {
    New,
    /// Work was sent for `order_id` as attempt `attempt`; no final answer.
    Running {
        order_id: Uuid,
        attempt: u32,
    },
    /// The final answer, replayed to every retry.
    Answered(A),
    /// Attempt `attempt` changed nothing; the next retry starts another.
    Abandoned {
        order_id: Uuid,
        attempt: u32,
    },
}

/// What a request carrying the key does.
#[derive(Clone, Debug, PartialEq)]
pub enum Next<A> {
    /// Bind the key to a new order (first use).
    Bind,
    /// Send the work of `attempt` for `order_id` (again, for a retry).
    Send { order_id: Uuid, attempt: u32 },
    /// Start attempt `attempt + 1` (a create gets a fresh order).
    Renew { order_id: Uuid, attempt: u32 },
    /// Answer with the stored answer.
    Replay(A),
}

/// What one try came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<A> {
    /// A final answer (any 2xx or 4xx).
    Final(A),
    /// Nothing was done, and this attempt will never do anything.
    NothingHappened,
    /// No answer in time: the attempt may have done its work.
    Unknown,
}

impl<A: Clone> KeyState<A> {
    /// What a request arriving with this key does.
    pub fn next(&self) -> Next<A> {
        match self {
            KeyState::New => Next::Bind,
            KeyState::Running { order_id, attempt } => Next::Send {
                order_id: *order_id,
                attempt: *attempt,
            },
            KeyState::Answered(answer) => Next::Replay(answer.clone()),
            KeyState::Abandoned { order_id, attempt } => Next::Renew {
                order_id: *order_id,
                attempt: *attempt,
            },
        }
    }

    /// The key bound to `order_id`: its first attempt runs.
    pub fn bind(order_id: Uuid) -> Self {
        KeyState::Running {
            order_id,
            attempt: 0,
        }
    }

    /// An abandoned attempt gives way to the next, for `order_id`.
    pub fn renew(self, order_id: Uuid) -> Self {
        match self {
            KeyState::Abandoned { attempt, .. } => KeyState::Running {
                order_id,
                attempt: attempt + 1,
            },
            other => other,
        }
    }

    /// The state after a try of the running attempt came to `outcome`.
    pub fn settle(self, outcome: Outcome<A>) -> Self {
        match (self, outcome) {
            (KeyState::Running { .. }, Outcome::Final(answer)) => KeyState::Answered(answer),
            (KeyState::Running { order_id, attempt }, Outcome::NothingHappened) => {
                KeyState::Abandoned { order_id, attempt }
            }
            (state, _) => state,
        }
    }
}

/// The workflow update id of attempt `attempt` of a key (`base` is derived
/// from the key): every retry of one attempt sends the same update.
pub fn update_id(base: &str, attempt: u32) -> String {
    match attempt {
        0 => base.to_string(),
        n => format!("{base}-{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type S = KeyState<&'static str>;

    fn order() -> Uuid {
        Uuid::from_u128(7)
    }

    #[test]
    fn a_new_key_binds_and_runs_its_first_attempt() {
        assert_eq!(S::New.next(), Next::Bind);
        let running = S::bind(order());
        assert_eq!(
            running.next(),
            Next::Send {
                order_id: order(),
                attempt: 0
            }
        );
    }

    #[test]
    fn a_final_answer_is_replayed_for_ever() {
        let answered = S::bind(order()).settle(Outcome::Final("201"));
        assert_eq!(answered.next(), Next::Replay("201"));
        let again = answered.clone().settle(Outcome::NothingHappened);
        assert_eq!(again, answered);
        assert_eq!(answered.clone().renew(Uuid::from_u128(8)), answered);
    }

    #[test]
    fn an_unknown_outcome_keeps_the_attempt_running() {
        let running = S::bind(order());
        assert_eq!(running.clone().settle(Outcome::Unknown), running);
    }

    #[test]
    fn an_attempt_that_did_nothing_is_abandoned_and_renewed_with_the_next_id() {
        let abandoned = S::bind(order()).settle(Outcome::NothingHappened);
        assert_eq!(
            abandoned.next(),
            Next::Renew {
                order_id: order(),
                attempt: 0
            }
        );
        let fresh = Uuid::from_u128(8);
        let renewed = abandoned.renew(fresh);
        assert_eq!(
            renewed.next(),
            Next::Send {
                order_id: fresh,
                attempt: 1
            }
        );
        assert_eq!(update_id("create-x", 0), "create-x");
        assert_eq!(update_id("create-x", 1), "create-x-1");
    }

    #[test]
    fn only_a_running_attempt_settles() {
        assert_eq!(S::New.settle(Outcome::Final("x")), S::New);
        let abandoned = S::Abandoned {
            order_id: order(),
            attempt: 2,
        };
        assert_eq!(abandoned.clone().settle(Outcome::Final("x")), abandoned);
    }
}
