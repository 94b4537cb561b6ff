//! A booking's refund, by its two ways in: the customer cancels a booking
//! found by its reference and a passenger's family name ([`cancel`]; the
//! look-up alone is [`look_up`]), or an operator refunds a booking by its
//! reference, whatever the departure cutoff, or retries a refund the
//! provider declined for good ([`refund`]).
//!
//! A customer's look-up that finds nothing counts against the client; one
//! that failed too often is refused for the rest of a window, before the
//! store is asked. A wrong reference and a wrong name are refused alike
//! (no oracle), after the same work: one query that reads the booking
//! with its passengers, flight and refund whatever the outcome, and the
//! name compared in constant time over a full order's passengers
//! ([`family_matches`]). Either way the request is recorded in Postgres first
//! (CONFIRMED → REFUND_PENDING, the cutoff checked in the same
//! transaction), then the refund workflow is started through the
//! [`Engine`]; should that start fail it is only logged, and the
//! reconciliation sweep starts it.

use std::time::Duration;

use deadpool_postgres::Pool;

use super::Outcome;
use crate::booking::refund::RefundInput;
use crate::booking::service::Engine;
use crate::domain::{OrderId, OrderStatus};
use crate::passengers::{family_matches, name_key, parse_reference};
use crate::store::StoreError;
use crate::store::lookups::Lookups;
use crate::store::refunds::{self, Booking, Request};

/// What the refund flows work with.
pub struct Refunds<'a> {
    pub pool: &'a Pool,
    /// Failed booking look-ups per client.
    pub lookups: &'a Lookups,
    pub engine: &'a Engine,
    /// No cancellation by the customer this close to departure.
    pub cutoff: Duration,
    /// Provider calls before a refund is left to an operator.
    pub max_attempts: u32,
}

/// A customer's look-up: the booking's reference, a passenger's family
/// name, and the client asking (its address: failures count against it).
pub struct LookUp<'a> {
    pub reference: &'a str,
    pub last_name: &'a str,
    pub client: &'a str,
}

/// Why a refund (or a look-up) was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client failed too many look-ups: it may ask again after this
    /// many seconds.
    TooManyLookUps { retry_after_secs: u64 },
    /// No sold booking with this reference (and family name).
    BookingNotFound,
    /// Departure is within the cutoff.
    WindowClosed { cutoff: Duration },
    /// The booking is in this status: refunded, or refunding already.
    NotCancellable(OrderStatus),
    /// The order (in this status) has no refund that failed.
    NothingToRetry(OrderStatus),
    /// A seat's fare is not refundable (fare rules fixed at hold time).
    FareNotRefundable,
    /// Its passengers have checked in: it can no longer be cancelled.
    CheckedIn,
}

/// A refund recorded and under way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refunding {
    pub order_id: OrderId,
    pub reference: String,
}

/// What a refund flow came to; a store failure is the error.
pub type Flow<T> = Result<Outcome<T, Refusal>, StoreError>;

/// The sold booking with this reference and family name, counting a
/// failure against the client.
pub async fn look_up(r: &Refunds<'_>, who: &LookUp<'_>) -> Flow<Booking> {
    Ok(decided(find(r, who).await?))
}

async fn find(r: &Refunds<'_>, who: &LookUp<'_>) -> Result<Result<Booking, Refusal>, StoreError> {
    if let Some(retry_after_secs) = r.lookups.refused(who.client).await? {
        return Ok(Err(Refusal::TooManyLookUps { retry_after_secs }));
    }
    // A reference or a name that cannot be one is refused without a
    // query: that tells the client only what it sent.
    let found = match parse_reference(who.reference) {
        Some(reference) if !name_key(who.last_name).is_empty() => {
            refunds::booking(r.pool, &reference).await?
        }
        _ => None,
    };
    let passengers = found.as_ref().map_or(&[][..], |b| &b.order.passengers[..]);
    let named = family_matches(passengers, who.last_name);
    match found {
        Some(b) if named && b.order.status.was_sold() => {
            r.lookups.passed(who.client).await?;
            Ok(Ok(b))
        }
        _ => {
            r.lookups.failed(who.client).await?;
            Ok(Err(Refusal::BookingNotFound))
        }
    }
}

/// A flow's decision as its outcome.
fn decided<T>(decision: Result<T, Refusal>) -> Outcome<T, Refusal> {
    match decision {
        Ok(done) => Outcome::Done(done),
        Err(refusal) => Outcome::Refused(refusal),
    }
}

/// The customer cancels their booking: found as [`look_up`] finds it, not
/// within the cutoff of departure. `key` (an `Idempotency-Key`) makes a
/// repeated cancellation answer as the first.
pub async fn cancel(r: &Refunds<'_>, who: &LookUp<'_>, key: Option<&str>) -> Flow<Refunding> {
    let booking = match find(r, who).await? {
        Ok(booking) => booking,
        Err(refusal) => return Ok(Outcome::Refused(refusal)),
    };
    let order_id = booking.order.id;
    match refunds::request(r.pool, order_id, r.cutoff, key).await? {
        Request::Accepted | Request::Repeated => {}
        Request::WindowClosed => {
            let cutoff = r.cutoff;
            return Ok(Outcome::Refused(Refusal::WindowClosed { cutoff }));
        }
        Request::NotCancellable(status) => {
            return Ok(Outcome::Refused(Refusal::NotCancellable(status)));
        }
        Request::NotRefundable => return Ok(Outcome::Refused(Refusal::FareNotRefundable)),
        Request::CheckedIn => return Ok(Outcome::Refused(Refusal::CheckedIn)),
    }
    start(r, order_id, FIRST_ROUND).await;
    let reference = booking.order.reference.unwrap_or_default();
    Ok(Outcome::Done(Refunding {
        order_id,
        reference,
    }))
}

/// An operator refunds a sold booking by its reference, whatever the
/// cutoff; or retries the refund of a booking left REFUND_FAILED (a new
/// round of its refund workflow, the same payout key).
pub async fn refund(r: &Refunds<'_>, reference: &str) -> Flow<Refunding> {
    let Some(reference) = parse_reference(reference) else {
        return Ok(Outcome::Refused(Refusal::BookingNotFound));
    };
    let booking = refunds::booking(r.pool, &reference).await?;
    let Some(booking) = booking.filter(|b| b.order.status.was_sold()) else {
        return Ok(Outcome::Refused(Refusal::BookingNotFound));
    };
    let order_id = booking.order.id;
    let round = match booking.order.status {
        OrderStatus::RefundFailed => match refunds::retry(r.pool, order_id).await? {
            refunds::Retry::Retried(round) => round,
            refunds::Retry::NotFailed => {
                let status = booking.order.status;
                return Ok(Outcome::Refused(Refusal::NotCancellable(status)));
            }
        },
        _ => match refunds::request(r.pool, order_id, Duration::ZERO, None).await? {
            Request::Accepted | Request::Repeated => FIRST_ROUND,
            Request::NotRefundable => return Ok(Outcome::Refused(Refusal::FareNotRefundable)),
            Request::CheckedIn => return Ok(Outcome::Refused(Refusal::CheckedIn)),
            Request::WindowClosed | Request::NotCancellable(_) => {
                let status = booking.order.status;
                return Ok(Outcome::Refused(Refusal::NotCancellable(status)));
            }
        },
    };
    start(r, order_id, round).await;
    Ok(Outcome::Done(Refunding {
        order_id,
        reference,
    }))
}

/// An operator retries the refund of an order the provider declined for
/// good: a booking's (REFUND_FAILED) or an unsold payment's (the order
/// FAILED, its refund FAILED). A new round of its workflow; the order's
/// status after it.
pub async fn retry(r: &Refunds<'_>, order_id: OrderId) -> Flow<OrderStatus> {
    let order = crate::store::orders::find(r.pool, order_id).await?;
    let refunds::Retry::Retried(round) = refunds::retry(r.pool, order_id).await? else {
        return Ok(Outcome::Refused(Refusal::NothingToRetry(order.status)));
    };
    start(r, order_id, round).await;
    let status = match order.status {
        OrderStatus::RefundFailed => OrderStatus::RefundPending,
        other => other,
    };
    Ok(Outcome::Done(status))
}

/// A refund's first round (`refund-<orderId>`).
const FIRST_ROUND: u32 = 1;

/// How long `serve` keeps starting a refund workflow Temporal did not take
/// at once (down, or restarting), and how often: the customer's 202 stands
/// on the recorded request, and its refund should not wait for the sweep.
const START_RETRY_FOR: Duration = Duration::from_secs(120);
const START_RETRY_EVERY: Duration = Duration::from_secs(2);

/// Start this round of the booking's refund workflow. The request is recorded already, so
/// a start that fails is retried in the background for a while, and after
/// that left to the reconciliation sweep (which starts any refund pending
/// for over a minute); starting twice is harmless (one workflow id).
async fn start(r: &Refunds<'_>, order_id: OrderId, round: u32) {
    let input = RefundInput {
        order_id,
        max_attempts: r.max_attempts,
        round,
    };
    if let Err(e) = r.engine.start_refund(input.clone()).await {
        tracing::warn!(order_id = %order_id, error = %e, "refund recorded but its workflow did not start; retrying");
        tokio::spawn(retry_start(r.engine.clone(), input));
    }
}

/// Start the refund workflow once Temporal takes it, for at most
/// [`START_RETRY_FOR`].
async fn retry_start(engine: Engine, input: RefundInput) {
    let order_id = input.order_id;
    let until = tokio::time::Instant::now() + START_RETRY_FOR;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(START_RETRY_EVERY).await;
        if engine.start_refund(input.clone()).await.is_ok() {
            tracing::info!(order_id = %order_id, "refund workflow started on a retry");
            return;
        }
    }
    tracing::warn!(order_id = %order_id, "refund workflow still not started; the reconciliation sweep starts it");
}
