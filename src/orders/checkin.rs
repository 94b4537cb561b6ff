//! Online check-in: a confirmed booking, found as a look-up finds it (its
//! reference and a passenger's family name, the same limiter and the same
//! 404 for a wrong reference or name: [`refund::look_up`]), checked in
//! from `CHECKIN_OPENS` to `CHECKIN_CLOSES` before departure
//! (`store::checkin`), each passenger given a boarding pass with an IATA
//! BCBP M1 barcode ([`crate::bcbp`]). Checking in again answers the same
//! passes.

use chrono::{DateTime, Utc};

use super::Outcome;
use super::refund::{self, LookUp, Refunds};
use crate::bcbp::{self, Leg};
use crate::domain::{OrderStatus, SeatId};
use crate::store::StoreError;
use crate::store::checkin::{self, Boarding, CheckIn, Window};
use crate::store::flights::Flight;
use crate::store::refunds::Booking;
use crate::tickets::TicketPrefix;

/// Why a check-in was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The look-up was refused (too many failures, or no such booking).
    LookUp(refund::Refusal),
    /// The booking is not CONFIRMED (refunding or refunded).
    NotConfirmed(OrderStatus),
    /// Check-in opens at this time.
    NotOpen { opens_at: DateTime<Utc> },
    /// Check-in closed at this time.
    Closed { closed_at: DateTime<Utc> },
    /// The flight's facts cannot be written as a boarding pass (a flight
    /// number an operator gave that is not a carrier and 1 to 4 digits).
    Unprintable(String),
}

/// One passenger's boarding pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardingPass {
    pub seat: SeatId,
    /// Given and family name, as booked (accents kept).
    pub passenger: String,
    pub sequence: u32,
    pub ticket_number: String,
    /// The IATA BCBP M1 string (60 characters).
    pub bcbp: String,
}

/// A checked-in booking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedIn {
    pub reference: String,
    pub passes: Vec<BoardingPass>,
}

/// What the check-in flow came to; a store failure is the error.
pub type Flow = Result<Outcome<CheckedIn, Refusal>, StoreError>;

/// Check in the booking `who` names, within `window` of departure.
pub async fn check_in(
    r: &Refunds<'_>,
    who: &LookUp<'_>,
    window: Window,
    prefix: &TicketPrefix,
) -> Flow {
    let booking = match refund::look_up(r, who).await? {
        Outcome::Done(booking) => booking,
        Outcome::Refused(refusal) => return Ok(Outcome::Refused(Refusal::LookUp(refusal))),
        Outcome::Busy(why) => return Ok(Outcome::Busy(why)),
        Outcome::Unavailable(why) => return Ok(Outcome::Unavailable(why)),
        Outcome::Unknown { order_id } => return Ok(Outcome::Unknown { order_id }),
    };
    let reference = booking.order.reference.clone().unwrap_or_default();
    // The flight's facts must fit a pass before anything is recorded.
    if let Err(e) = printable(&booking.flight, &reference) {
        return Ok(Outcome::Refused(Refusal::Unprintable(e.to_string())));
    }
    let passes = match checkin::check_in(r.pool, booking.order.id, window, prefix).await? {
        CheckIn::Done(passes) => passes,
        CheckIn::NotConfirmed(status) => {
            return Ok(Outcome::Refused(Refusal::NotConfirmed(status)));
        }
        CheckIn::NotOpen { opens_at } => {
            return Ok(Outcome::Refused(Refusal::NotOpen { opens_at }));
        }
        CheckIn::Closed { closed_at } => {
            return Ok(Outcome::Refused(Refusal::Closed { closed_at }));
        }
    };
    match boarding_passes(&booking, &passes) {
        Ok(passes) => Ok(Outcome::Done(CheckedIn { reference, passes })),
        Err(e) => Ok(Outcome::Refused(Refusal::Unprintable(e.to_string()))),
    }
}

/// Whether a pass of this flight and reference can be written.
fn printable(flight: &Flight, reference: &str) -> Result<(), bcbp::EncodeError> {
    let seat = SeatId::parse("1A").expect("a seat id");
    bcbp::encode(&Leg {
        family_name: "X",
        given_name: "X",
        reference,
        origin: &flight.origin,
        destination: &flight.destination,
        flight_number: &flight.flight_number,
        date: flight.departure_time.date_naive(),
        compartment: 'M',
        seat: &seat,
        sequence: 1,
    })
    .map(|_| ())
}

/// The passes of a checked-in booking, each passenger's by their seat.
pub fn boarding_passes(
    booking: &Booking,
    passes: &[Boarding],
) -> Result<Vec<BoardingPass>, bcbp::EncodeError> {
    let reference = booking.order.reference.as_deref().unwrap_or_default();
    let flight = &booking.flight;
    let mut out = Vec::with_capacity(passes.len());
    for pass in passes {
        let Some(p) = booking
            .order
            .passengers
            .iter()
            .find(|p| p.seat == pass.seat)
        else {
            continue;
        };
        let bcbp = bcbp::encode(&Leg {
            family_name: &p.family_name,
            given_name: &p.given_name,
            reference,
            origin: &flight.origin,
            destination: &flight.destination,
            flight_number: &flight.flight_number,
            date: flight.departure_time.date_naive(),
            compartment: pass.compartment,
            seat: &pass.seat,
            sequence: pass.sequence,
        })?;
        out.push(BoardingPass {
            seat: pass.seat.clone(),
            passenger: format!("{} {}", p.given_name, p.family_name),
            sequence: pass.sequence,
            ticket_number: pass.ticket_number.clone(),
            bcbp,
        });
    }
    Ok(out)
}
