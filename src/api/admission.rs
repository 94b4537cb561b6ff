//! Admission control: a bound on the booking calls (create, change, pay,
//! cancel) one `serve` keeps in flight towards Temporal. Beyond it a request
//! is answered `503 SERVICE_BUSY` with `Retry-After` at once instead of
//! queueing behind work the engine cannot finish in time. The `Retry-After`
//! of those answers is spread over a few seconds, so a crowd turned away
//! together does not come back together.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;

/// The longest `Retry-After` (seconds) a turned-away call is given.
const MAX_RETRY_AFTER: u32 = 5;

/// What a booking call is: a new create, or the checkout of a live order
/// (change, pay, cancel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Create,
    Checkout,
}

pub struct Admission {
    slots: Arc<Semaphore>,
    limit: usize,
}

/// A booking call in flight; the slot frees when it drops.
pub struct Ticket {
    _slot: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(limit: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// A slot for one booking call, or `SERVICE_BUSY` when all are taken.
    pub fn enter(&self, _call: Call) -> Result<Ticket, ApiError> {
        self.slots
            .clone()
            .try_acquire_owned()
            .map(|slot| Ticket { _slot: slot })
            .map_err(|_| {
                crate::metrics::api().admission_rejections.inc();
                let mut busy = ApiError::busy(format!(
                    "{} bookings are already in progress on this server; try again shortly",
                    self.limit
                ));
                busy.retry_after = Some(rand::random_range(1..=MAX_RETRY_AFTER));
                busy
            })
    }
}
