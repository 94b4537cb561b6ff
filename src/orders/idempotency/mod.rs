//! `Idempotency-Key` as one explicit state machine. A key is
//!
//! ```text
//!   New ──bind──▶ Running ──final answer──▶ Answered   (replayed for 24 h)
//!    │             │  ▲ └──answer unknown──┘ (a retry sends the same work)
//!    │ refused     │  │renew (a fresh order for a create, the same order
//!    │ up front    ▼  │       for a payment; the next attempt's update id)
//!    └──▶ Answered Abandoned
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
//!
//! This module decides every transition; `store` applies what it decided
//! (each write conditioned on the state it moves from, so of two requests
//! racing, one moves the key and the other reads where it went), and
//! `driver` walks a keyed request through it.

mod driver;
mod store;

pub(crate) use driver::{Attempt, Request, walk};
pub use driver::{Keep, Key, Reply};
pub use store::{Kept, purge_expired};

use hmac::{KeyInit, Mac};

use super::{Flow, Outcome};
use crate::domain::OrderId;

/// Where a key stands. `A` is the stored answer.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyState<A> {
    New,
    /// Work was sent for `order_id` as attempt `attempt`; no final answer.
    Running {
        order_id: OrderId,
        attempt: u32,
    },
    /// The final answer, replayed to every retry.
    Answered(A),
    /// Attempt `attempt` changed nothing; the next retry starts another.
    Abandoned {
        order_id: OrderId,
        attempt: u32,
    },
}

/// What a request carrying the key does.
#[derive(Clone, Debug, PartialEq)]
pub enum Next<A> {
    /// Bind the key to a new order (first use).
    Bind,
    /// Send the work of `attempt` for `order_id` (again, for a retry).
    Send { order_id: OrderId, attempt: u32 },
    /// Start attempt `attempt + 1` (a create gets a fresh order).
    Renew { order_id: OrderId, attempt: u32 },
    /// Answer with the stored answer.
    Replay(A),
}

/// What one try of the running attempt came to, for the key.
#[derive(Clone, Debug, PartialEq)]
pub enum Settled<A> {
    /// A final answer (any 2xx or 4xx).
    Final(A),
    /// Nothing was done, and this attempt will never do anything.
    NothingHappened,
    /// No answer in time: the attempt may have done its work.
    Unknown,
}

impl<A> Settled<A> {
    /// What a try of the running attempt means for the key, decided by
    /// its outcome: done or refused for good is the final answer (`keep`
    /// makes it the one kept); a stale refusal ([`Refusal::is_stale`](crate::orders::Refusal::is_stale)) gives
    /// the attempt up; busy, unavailable, unknown or a store failure leave
    /// it running, so a retry sends the same work.
    pub fn of<T>(tried: &Flow<T>, keep: Keep<'_, T, A>) -> Self {
        match tried {
            Ok(Outcome::Done(done)) => Settled::Final(keep(Ok(done))),
            Ok(Outcome::Refused(refusal)) if refusal.is_stale() => Settled::NothingHappened,
            Ok(Outcome::Refused(refusal)) => Settled::Final(keep(Err(refusal))),
            Ok(Outcome::Busy(_) | Outcome::Unavailable(_) | Outcome::Unknown { .. }) | Err(_) => {
                Settled::Unknown
            }
        }
    }
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

    /// The key bound to `order_id`: its first attempt runs, unless the
    /// request was refused before any work (`refused`, its final answer).
    pub fn bind(order_id: OrderId, refused: Option<A>) -> Self {
        match refused {
            Some(answer) => KeyState::Answered(answer),
            None => KeyState::Running {
                order_id,
                attempt: 0,
            },
        }
    }

    /// An abandoned attempt gives way to the next, for `order_id`.
    pub fn renew(self, order_id: OrderId) -> Self {
        match self {
            KeyState::Abandoned { attempt, .. } => KeyState::Running {
                order_id,
                attempt: attempt + 1,
            },
            other => other,
        }
    }

    /// The state after a try of the running attempt came to `outcome`.
    pub fn settle(self, outcome: Settled<A>) -> Self {
        match (self, outcome) {
            (KeyState::Running { .. }, Settled::Final(answer)) => KeyState::Answered(answer),
            (KeyState::Running { order_id, attempt }, Settled::NothingHappened) => {
                KeyState::Abandoned { order_id, attempt }
            }
            (state, _) => state,
        }
    }
}

/// A keyed HMAC-SHA256 of the scope and the parts, hex: equal requests in
/// one scope give equal fingerprints, and a payment code cannot be read back
/// or guessed from it. The scope is always hashed in, so the same code paid
/// on two orders (`pay:<orderId>`) gives two unrelated fingerprints, and one
/// recovered fingerprint says nothing about another order's.
pub fn fingerprint(secret: &str, scope: &str, parts: &[&str]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    // Each part is length-prefixed, so no two lists of parts run together.
    for part in std::iter::once(scope).chain(parts.iter().copied()) {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
    use uuid::Uuid;

    type S = KeyState<&'static str>;

    fn order() -> OrderId {
        OrderId::from(Uuid::from_u128(7))
    }

    #[test]
    fn a_new_key_binds_and_runs_its_first_attempt() {
        assert_eq!(S::New.next(), Next::Bind);
        let running = S::bind(order(), None);
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
        let answered = S::bind(order(), None).settle(Settled::Final("201"));
        assert_eq!(answered.next(), Next::Replay("201"));
        let again = answered.clone().settle(Settled::NothingHappened);
        assert_eq!(again, answered);
        assert_eq!(
            answered.clone().renew(OrderId::from(Uuid::from_u128(8))),
            answered
        );
    }

    #[test]
    fn an_unknown_outcome_keeps_the_attempt_running() {
        let running = S::bind(order(), None);
        assert_eq!(running.clone().settle(Settled::Unknown), running);
    }

    #[test]
    fn an_attempt_that_did_nothing_is_abandoned_and_renewed_with_the_next_id() {
        let abandoned = S::bind(order(), None).settle(Settled::NothingHappened);
        assert_eq!(
            abandoned.next(),
            Next::Renew {
                order_id: order(),
                attempt: 0
            }
        );
        let fresh = OrderId::from(Uuid::from_u128(8));
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
    fn a_key_refused_up_front_is_answered_at_once() {
        assert_eq!(S::bind(order(), Some("409")), S::Answered("409"));
    }

    const SECRET: &str = "a-test-secret";

    #[test]
    fn equal_codes_on_two_orders_give_different_fingerprints() {
        let (a, b) = (OrderId::random(), OrderId::random());
        let pay = |order: OrderId| fingerprint(SECRET, &format!("pay:{order}"), &["12345"]);
        assert_ne!(pay(a), pay(b));
        assert_eq!(pay(a), pay(a), "a retry on the same order matches");
        let other = fingerprint("another-secret", &format!("pay:{a}"), &["12345"]);
        assert_ne!(pay(a), other, "the secret keys it");
    }

    /// Update ids hash the scope and the key as before the scope became a
    /// parameter: a retry across the upgrade lands on the same update.
    #[test]
    fn update_ids_keep_their_value() {
        let id = fingerprint(SECRET, "create", &["key-1"]);
        assert_eq!(
            id,
            "ebcddeec808d5f3adce72c210900745e23ee1cbdf6b816e753764019f4ca94a4"
        );
    }

    #[test]
    fn the_scope_and_the_parts_never_run_together() {
        assert_ne!(
            fingerprint(SECRET, "pay:1", &["2345"]),
            fingerprint(SECRET, "pay:12", &["345"])
        );
    }

    #[test]
    fn only_a_running_attempt_settles() {
        assert_eq!(S::New.settle(Settled::Final("x")), S::New);
        let abandoned = S::Abandoned {
            order_id: order(),
            attempt: 2,
        };
        assert_eq!(abandoned.clone().settle(Settled::Final("x")), abandoned);
    }
}
