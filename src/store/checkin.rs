//! E-tickets and online check-in in Postgres.
//!
//! A ticket number is given to each passenger of an order in the
//! transaction that sells its seats ([`issue`], called by
//! `orders::confirm`): the airline's prefix and a 10-digit serial from the
//! `ticket_serial` sequence, which never hands a value out twice; the
//! `tickets` table's unique constraint says so too.
//!
//! A check-in ([`check_in`]) is one transaction on the order's locked row:
//! a booking checked in already gets its passes back as they were; else it
//! must be CONFIRMED and within its flight's check-in window, and each
//! ticketed passenger gets a boarding pass with the flight's next
//! sequence number (one atomic upsert of `checkin_sequences`, so check-ins
//! at once never share one) and the compartment of the seat's cabin. A
//! cancellation locks the same row ([`super::refunds::request`]) and
//! refuses a checked-in booking, so the two never both happen.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::{StoreError, seat_id};
use crate::domain::{FlightId, OrderId, OrderStatus, SeatId};
use crate::fares::Cabin;
use crate::tickets::TicketPrefix;

/// Give a ticket number to every passenger of the order who has none yet
/// (their seats in the order's `passengers`), within `tx`.
pub(super) async fn issue(
    tx: &Transaction<'_>,
    order_id: OrderId,
    prefix: &TicketPrefix,
) -> Result<u64, StoreError> {
    Ok(tx
        .execute(
            "INSERT INTO tickets (order_id, seat, ticket_number)
             SELECT o.id, p.seat, $2 || lpad(nextval('ticket_serial')::text, 10, '0')
             FROM orders o,
                  LATERAL (SELECT DISTINCT e->>'seat' AS seat
                           FROM jsonb_array_elements(o.passengers) e) p
             WHERE o.id = $1 AND p.seat IS NOT NULL
             ORDER BY p.seat
             ON CONFLICT (order_id, seat) DO NOTHING",
            &[&order_id, &prefix.as_str()],
        )
        .await?)
}

/// A passenger's ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub seat: SeatId,
    /// 13 digits.
    pub number: String,
}

/// The tickets of an order, by seat.
pub async fn tickets(pool: &Pool, order_id: OrderId) -> Result<Vec<Ticket>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT seat, ticket_number FROM tickets WHERE order_id = $1",
            &[&order_id],
        )
        .await?;
    let mut tickets = rows
        .iter()
        .map(|r| {
            Ok(Ticket {
                seat: seat_id(r.get("seat"))?,
                number: r.get("ticket_number"),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    tickets.sort_by(|a, b| a.seat.cmp(&b.seat));
    Ok(tickets)
}

/// A passenger checked in: what their boarding pass says besides the
/// booking's and the flight's own facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boarding {
    pub seat: SeatId,
    pub ticket_number: String,
    /// Per flight, from 1.
    pub sequence: u32,
    /// The cabin's compartment code (F, C, E, M) at check-in.
    pub compartment: char,
    pub checked_in_at: DateTime<Utc>,
}

/// The check-in window, before departure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Check-in opens this long before departure.
    pub opens: Duration,
    /// And closes this long before it.
    pub closes: Duration,
}

/// What a check-in came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckIn {
    /// Checked in (now, or before: the same passes), by seat.
    Done(Vec<Boarding>),
    /// The booking is not CONFIRMED (refunding, refunded): nothing changed.
    NotConfirmed(OrderStatus),
    /// Too early: check-in opens at this time.
    NotOpen { opens_at: DateTime<Utc> },
    /// Too late: check-in closed at this time.
    Closed { closed_at: DateTime<Utc> },
}

/// The boarding passes of an order (none: not checked in), by seat.
pub async fn passes(pool: &Pool, order_id: OrderId) -> Result<Vec<Boarding>, StoreError> {
    let conn = pool.get().await?;
    read_passes(&conn, order_id).await
}

const PASSES: &str = "SELECT b.seat, t.ticket_number, b.sequence, b.compartment, b.checked_in_at
     FROM boarding_passes b JOIN tickets t ON t.order_id = b.order_id AND t.seat = b.seat
     WHERE b.order_id = $1";

async fn read_passes<C: deadpool_postgres::GenericClient + Sync>(
    conn: &C,
    order_id: OrderId,
) -> Result<Vec<Boarding>, StoreError> {
    let rows = conn.query(PASSES, &[&order_id]).await?;
    let mut passes = rows
        .iter()
        .map(|r| {
            let compartment: String = r.get("compartment");
            Ok(Boarding {
                seat: seat_id(r.get("seat"))?,
                ticket_number: r.get("ticket_number"),
                sequence: r.get::<_, i32>("sequence") as u32,
                compartment: compartment.chars().next().unwrap_or('M'),
                checked_in_at: r.get("checked_in_at"),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    passes.sort_by(|a, b| a.seat.cmp(&b.seat));
    Ok(passes)
}

/// Check in every ticketed passenger of the order, within `window` of its
/// flight's departure. A booking checked in already gets the same passes
/// back, whatever the time. Passengers without a ticket (a booking sold
/// before tickets existed) are given one with `prefix` first.
pub async fn check_in(
    pool: &Pool,
    order_id: OrderId,
    window: Window,
    prefix: &TicketPrefix,
) -> Result<CheckIn, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT o.status, o.flight_id,
                    f.departure_time - make_interval(secs => $2) AS opens_at,
                    f.departure_time - make_interval(secs => $3) AS closes_at,
                    NOW() AS now
             FROM orders o JOIN flights f ON f.id = o.flight_id
             WHERE o.id = $1 FOR UPDATE OF o",
            &[
                &order_id,
                &window.opens.as_secs_f64(),
                &window.closes.as_secs_f64(),
            ],
        )
        .await?
        .ok_or(StoreError::OrderNotFound(order_id))?;
    let before = read_passes(&tx, order_id).await?;
    if !before.is_empty() {
        return Ok(CheckIn::Done(before));
    }
    let status = OrderStatus::parse(row.get("status")).unwrap_or(OrderStatus::Failed);
    if status != OrderStatus::Confirmed {
        return Ok(CheckIn::NotConfirmed(status));
    }
    let (opens_at, closed_at, now): (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) =
        (row.get("opens_at"), row.get("closes_at"), row.get("now"));
    if now < opens_at {
        return Ok(CheckIn::NotOpen { opens_at });
    }
    if now >= closed_at {
        return Ok(CheckIn::Closed { closed_at });
    }
    let flight_id: FlightId = row.get("flight_id");
    issue(&tx, order_id, prefix).await?;
    let mut seats: Vec<SeatId> = tx
        .query("SELECT seat FROM tickets WHERE order_id = $1", &[&order_id])
        .await?
        .iter()
        .map(|r| seat_id(r.get("seat")))
        .collect::<Result<_, _>>()?;
    seats.sort();
    if seats.is_empty() {
        tx.commit().await?;
        return Ok(CheckIn::Done(Vec::new()));
    }
    let count = seats.len() as i32;
    let last: i32 = tx
        .query_one(
            "INSERT INTO checkin_sequences (flight_id, last_sequence) VALUES ($1, $2)
             ON CONFLICT (flight_id) DO UPDATE
                SET last_sequence = checkin_sequences.last_sequence + EXCLUDED.last_sequence
             RETURNING last_sequence",
            &[&flight_id, &count],
        )
        .await?
        .get("last_sequence");
    let cabins = compartments(&tx, flight_id).await?;
    for (i, seat) in seats.iter().enumerate() {
        let sequence = last - count + 1 + i as i32;
        let compartment = compartment_of(&cabins, seat).to_string();
        let params: [&(dyn ToSql + Sync); 5] =
            [&order_id, &seat, &flight_id, &sequence, &compartment];
        tx.execute(
            "INSERT INTO boarding_passes (order_id, seat, flight_id, sequence, compartment)
             VALUES ($1, $2, $3, $4, $5)",
            &params,
        )
        .await?;
    }
    let passes = read_passes(&tx, order_id).await?;
    tx.commit().await?;
    Ok(CheckIn::Done(passes))
}

/// Whether the order has been checked in.
pub(super) async fn checked_in(
    tx: &Transaction<'_>,
    order_id: OrderId,
) -> Result<bool, StoreError> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM boarding_passes WHERE order_id = $1) AS checked_in",
            &[&order_id],
        )
        .await?;
    Ok(row.get("checked_in"))
}

/// The flight's cabins as row ranges and compartment codes.
async fn compartments(
    tx: &Transaction<'_>,
    flight_id: FlightId,
) -> Result<Vec<(i32, i32, char)>, StoreError> {
    let rows = tx
        .query(
            "SELECT first_row, last_row, code FROM cabins WHERE flight_id = $1",
            &[&flight_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let cabin = Cabin::parse(r.get("code")).unwrap_or(Cabin::Economy);
            (
                r.get("first_row"),
                r.get("last_row"),
                cabin.compartment_code(),
            )
        })
        .collect())
}

/// The compartment of the cabin whose rows hold the seat; economy (M) when
/// no cabin does (a flight inserted by hand: priced as economy too).
fn compartment_of(cabins: &[(i32, i32, char)], seat: &SeatId) -> char {
    let row = i32::from(seat.row());
    cabins
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&row))
        .map_or('M', |c| c.2)
}
