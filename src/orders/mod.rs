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
    Unknown { order_id: uuid::Uuid },
}
