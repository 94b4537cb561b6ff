//! The application layer: what a customer or an operator asks of an order
//! or a booking, decided in domain terms. Each flow takes parsed domain
//! types, talks to the store and the booking engine, and returns an
//! [`Outcome`]; `api` maps that to HTTP in one place. Nothing here knows
//! actix, status codes or JSON.

pub mod refund;

/// What a flow came to. Only `Done` changed anything; `Refused`, `Busy`
/// and `Unavailable` changed nothing and nothing will happen later;
/// `Unknown` says the change may or may not have been made, and the
/// order's status (or a retry with the same `Idempotency-Key`) tells.
#[derive(Debug)]
pub enum Outcome<T, R> {
    /// Done: the change is made, or the stored answer of one is replayed.
    Done(T),
    /// Refused for a reason of the domain (`R`), with nothing changed.
    Refused(R),
    /// Too much work in flight, or the engine refused it as late: nothing
    /// changed; try again shortly. The sentence says which.
    Busy(String),
    /// A dependency is down: nothing changed. The sentence says which.
    Unavailable(String),
    /// No answer in time for the order `order_id`: the outcome is not
    /// known yet.
    Unknown { order_id: crate::domain::OrderId },
}

impl<T, R> Outcome<T, R> {
    /// The same outcome, its `Done` value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U, R> {
        match self {
            Outcome::Done(done) => Outcome::Done(f(done)),
            Outcome::Refused(refusal) => Outcome::Refused(refusal),
            Outcome::Busy(why) => Outcome::Busy(why),
            Outcome::Unavailable(why) => Outcome::Unavailable(why),
            Outcome::Unknown { order_id } => Outcome::Unknown { order_id },
        }
    }
}

mod admission;
mod calls;
mod cancel;
mod change;
mod create;
pub mod idempotency;
mod passengers;
mod pay;
mod refusal;
mod room;
mod share;

use deadpool_postgres::Pool;

pub use admission::Admission;
pub use cancel::cancel;
pub use change::change;
pub use create::{Hold, SeatRequest, create};
pub use passengers::name_passengers;
pub use pay::pay;
pub use refusal::Refusal;
pub use room::{Admission as RoomAdmission, create_in_room};
pub use share::live_bound;

use crate::booking::service::Engine;
use crate::config::Settings;
use crate::store::fairshare::{ClientKey, FairShare};
use crate::store::{Holds, StoreError};

/// What a flow comes to: an [`Outcome`], or the store failing under it
/// (down, or a query that should not fail); a flow never decides on a
/// failed read.
pub type Flow<T> = Result<Outcome<T, Refusal>, StoreError>;

/// What the flows work with, for one request.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub pool: &'a Pool,
    /// The seat holds, bounded by the request's deadline: a Redis that
    /// cannot answer in time is unavailable, never waited on past it.
    pub holds: Holds,
    pub engine: &'a Engine,
    pub admission: &'a Admission,
    /// Who asks: its booking calls in flight and its live orders are
    /// counted in `share`, bounded by the request's deadline.
    pub client: ClientKey,
    pub share: FairShare,
    /// The request's id, carried on to the worker's logs.
    pub request_id: Option<String>,
    /// Names the order a request turned out to be about on its span (a
    /// create's order id is chosen here).
    pub name_order: fn(crate::domain::OrderId),
    /// The flights' waiting rooms.
    pub room: &'a crate::waiting::Room,
}

/// Count a seat selection (`create`, `change`) by its outcome: held, or
/// refused because a seat is taken; other outcomes are neither.
fn count<T>(selection: &str, flow: &Flow<T>) {
    let m = crate::metrics::api();
    match flow {
        Ok(Outcome::Done(_)) => m.holds_taken.with_label_values(&[selection]).inc(),
        Ok(Outcome::Refused(r)) if r.is_seat_taken() => {
            m.holds_refused.with_label_values(&[selection]).inc()
        }
        _ => {}
    }
}
