//! A create in front of a flight's waiting room: before a scheduled sale
//! opens nothing is held (`SALES_NOT_OPEN`); while the room is active (a
//! scheduled sale, or a live queue) a create needs an admission out of it
//! (`QUEUE_REQUIRED` without, `ADMISSION_INVALID` for a forged, lapsed,
//! used or other flight's one). An admission is good for one order: it is
//! used when the create is let through, and given back when the create
//! changed nothing (any refusal, busy or unavailable), so a buyer whose
//! seats were taken picks others with the same admission. A retry of the
//! same create with its `Idempotency-Key` passes with the admission it
//! used. Creates the engine answered are counted per flight: the room's
//! pace follows them. Pay, change, cancel and naming passengers never meet
//! the room: they keep their own slots (`admission.rs`).

use sha2::{Digest, Sha256};

use super::create::{Hold, SeatRequest, create};
use super::idempotency::{Kept, Key, Reply};
use super::{Context, Flow, Outcome, Refusal};
use crate::store::StoreError;
use crate::store::flights;
use crate::waiting::Refused;

/// What a create shows the room.
pub struct Admission<'a> {
    /// The `Admission` header.
    pub token: Option<String>,
    /// The `Idempotency-Key`, if any: a retry of the create that used an
    /// admission passes with it.
    pub key: Option<&'a str>,
}

/// [`create`], behind the flight's waiting room.
pub async fn create_in_room<A: Kept>(
    ctx: &Context<'_>,
    new: &SeatRequest,
    key: Option<Key<'_, Hold, A>>,
    admission: Admission<'_>,
) -> Flow<Reply<A, Hold>> {
    let flight = match flights::find(ctx.pool, new.flight_id).await {
        Ok(flight) => flight,
        Err(StoreError::FlightNotFound(id)) => {
            return Ok(Outcome::Refused(Refusal::NoSuchFlight(id)));
        }
        Err(e) => return Err(e),
    };
    if let Some(opens_at) = flight.sales_open_at
        && chrono::Utc::now() < opens_at
    {
        return Ok(Outcome::Refused(Refusal::SalesNotOpen { opens_at }));
    }
    if !ctx.room.active(ctx.pool, &flight).await? {
        return create(ctx, new, key).await;
    }
    let Some(token) = admission.token else {
        let flight = flight.id;
        return Ok(Outcome::Refused(Refusal::QueueRequired { flight }));
    };
    let fingerprint = admission
        .key
        .map(|k| {
            let digest = Sha256::digest(k.as_bytes());
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
        .unwrap_or_default();
    let ticket = match ctx
        .room
        .use_admission(ctx.pool, &flight, &token, &fingerprint)
        .await
    {
        Ok(ticket) => ticket,
        Err(Refused::Invalid(why)) => return Ok(Outcome::Refused(Refusal::AdmissionInvalid(why))),
        Err(Refused::Store(e)) => return Err(e),
    };
    let made = create(ctx, new, key).await;
    let answered = match &made {
        Ok(Outcome::Done(_)) => true,
        Ok(Outcome::Refused(refusal)) => refusal.is_seat_taken(),
        _ => false,
    };
    if answered {
        ctx.room.completed(&flight).await;
    }
    match &made {
        Ok(Outcome::Done(_)) => ctx.room.finished(&flight, &ticket).await,
        // Not known yet: it counts as unfinished until its admission lapses.
        Ok(Outcome::Unknown { .. }) => {}
        _ => ctx.room.give_back(ctx.pool, &flight, &ticket).await,
    }
    made
}
