//! Orders in Postgres. The booking workflow is the only writer; every write
//! is idempotent so Temporal may retry it.

use crate::money::Cents;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

use super::{StoreError, claims, seat_id, seat_ids};
pub use crate::domain::AttemptOutcome;
use crate::domain::{FlightId, OrderId, OrderStatus, SeatId};
use crate::fares::SeatPrice;
use crate::passengers::Passenger;
use crate::tickets::TicketPrefix;

/// An order as the workflow last saved it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub flight_id: FlightId,
    pub workflow_id: String,
    pub status: OrderStatus,
    pub seats: Vec<SeatId>,
    pub total_price_cents: Cents,
    pub expires_at: Option<DateTime<Utc>>,
    /// While seats are held: the latest the hold may end however the seats
    /// change (the order's creation + `HOLD_MAX_LIFETIME`).
    #[serde(default)]
    pub max_expires_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    pub payment_attempts: i32,
    pub last_payment_error: Option<String>,
    /// The workflow's history length when it saved this state: a save with
    /// a smaller one is older and changes nothing (0 in inputs recorded
    /// before there was one).
    #[serde(default)]
    pub saved_at_event: i64,
    /// One per seat that has one (personal data: see `passengers.rs`).
    #[serde(default)]
    pub passengers: Vec<Passenger>,
    /// Each seat's price and fare rules, fixed when the seat was taken
    /// (`total_price_cents` is their sum).
    #[serde(default)]
    pub seat_prices: Vec<SeatPrice>,
    /// Given by the sale; read only.
    #[serde(default)]
    pub reference: Option<String>,
    /// When the row was first and last written; read only.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Raised by one on every change of the row (by a trigger); read only.
    #[serde(skip)]
    pub version: i64,
}

const COLUMNS: &str = "id, flight_id, workflow_id, status, seats, total_price_cents, expires_at,
    max_expires_at, confirmed_at, failure_reason, payment_attempts, last_payment_error, version, saved_at_event,
    passengers, reference, created_at, updated_at, seat_prices";

/// [`COLUMNS`] of the `orders` table named `alias` in a join, each keeping
/// its name (for [`Order::from_row`]).
pub(super) fn columns_of(alias: &str) -> String {
    let columns = COLUMNS.split(',').map(str::trim);
    let named: Vec<String> = columns.map(|c| format!("{alias}.{c}")).collect();
    named.join(", ")
}

impl Order {
    /// A row selected with [`COLUMNS`] (or [`columns_of`]).
    pub(super) fn from_row(row: &Row) -> Result<Self, StoreError> {
        let status: &str = row.get("status");
        Ok(Self {
            id: row.get("id"),
            flight_id: row.get("flight_id"),
            workflow_id: row.get("workflow_id"),
            status: OrderStatus::parse(status).unwrap_or(OrderStatus::Failed),
            seats: seat_ids(row, "seats")?,
            total_price_cents: row.get("total_price_cents"),
            expires_at: row.get("expires_at"),
            max_expires_at: row.get("max_expires_at"),
            confirmed_at: row.get("confirmed_at"),
            failure_reason: row.get("failure_reason"),
            payment_attempts: row.get("payment_attempts"),
            last_payment_error: row.get("last_payment_error"),
            version: row.get("version"),
            saved_at_event: row.get("saved_at_event"),
            passengers: serde_json::from_value(row.get("passengers")).unwrap_or_default(),
            seat_prices: serde_json::from_value(row.get("seat_prices")).unwrap_or_default(),
            reference: row.get("reference"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        })
    }
}

/// What a save did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The row holds this save (or a later one): false when the deadline
    /// passed first, or when seats could not be claimed.
    pub committed: bool,
    /// The ending (expired, cancelled, failed) this save changed the row's
    /// status to; a retried save finds it there already, so an ending is
    /// reported once.
    pub ended: Option<OrderStatus>,
    /// A payment's save: the seats it could not claim, sold or claimed by
    /// another order's payment; nothing was saved. Empty otherwise.
    pub unavailable: Vec<SeatId>,
}

/// The upsert of a save; `$12` is the deadline. The deadline is checked by
/// the statement itself, after any row lock it waited for: a save stalled
/// past the deadline never commits.
const UPSERT: &str = "WITH before AS (SELECT status FROM orders WHERE id = $1)
    INSERT INTO orders (id, flight_id, workflow_id, status, seats, total_price_cents,
           expires_at, failure_reason, payment_attempts, last_payment_error, saved_at_event,
           passengers, max_expires_at, seat_prices)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13, $14, $15
    WHERE $12::timestamptz IS NULL OR clock_timestamp() <= $12::timestamptz
    ON CONFLICT (id) DO UPDATE SET
       status = EXCLUDED.status, seats = EXCLUDED.seats,
       total_price_cents = EXCLUDED.total_price_cents, expires_at = EXCLUDED.expires_at,
       max_expires_at = EXCLUDED.max_expires_at, failure_reason = EXCLUDED.failure_reason,
       payment_attempts = EXCLUDED.payment_attempts,
       last_payment_error = EXCLUDED.last_payment_error,
       saved_at_event = EXCLUDED.saved_at_event, passengers = EXCLUDED.passengers,
       seat_prices = EXCLUDED.seat_prices, updated_at = NOW()
    WHERE orders.confirmed_at IS NULL
      AND orders.saved_at_event <= EXCLUDED.saved_at_event
      AND ($12::timestamptz IS NULL OR clock_timestamp() <= $12::timestamptz)
    RETURNING (SELECT status FROM before) AS before";

/// Insert or update the order row, unless `deadline` has passed by the time
/// the database commits it: the row is then as before and `false` comes
/// back (a save already committed by an earlier try of the same step counts
/// as committed). A confirmed order is never overwritten (only `confirm`
/// sells seats), nor a state saved later in the workflow than this one (a
/// late retry, a worker that lost its task).
///
/// The seats' claims change with the row, in its transaction: a save
/// `PAYMENT_PROCESSING` claims every seat of the order or saves nothing
/// ([`Saved::unavailable`]); a save that ends the order releases its
/// claims. Other saves (a selection, passengers) come before any claim and
/// touch none. The claims go first and the row last, so the row's deadline
/// check still follows every lock the save waited for.
pub async fn save(
    pool: &Pool,
    o: &Order,
    deadline: Option<DateTime<Utc>>,
) -> Result<Saved, StoreError> {
    let mut conn = pool.get().await?;
    let passengers = serde_json::to_value(&o.passengers).unwrap_or_default();
    let seat_prices = serde_json::to_value(&o.seat_prices).unwrap_or_default();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 15] = [
        &o.id,
        &o.flight_id,
        &o.workflow_id,
        &o.status.as_str(),
        &o.seats,
        &o.total_price_cents,
        &o.expires_at,
        &o.failure_reason,
        &o.payment_attempts,
        &o.last_payment_error,
        &o.saved_at_event,
        &deadline,
        &passengers,
        &o.max_expires_at,
        &seat_prices,
    ];
    let paying = o.status == OrderStatus::PaymentProcessing;
    let written = if paying || o.status.is_terminal() {
        let tx = conn.transaction().await?;
        let unavailable = if paying {
            claims::claim(&tx, o.id, o.flight_id, &o.seats).await?
        } else {
            claims::release(&tx, o.id).await?;
            Vec::new()
        };
        if !unavailable.is_empty() {
            tx.rollback().await?;
            return Ok(Saved {
                committed: false,
                ended: None,
                unavailable,
            });
        }
        let written = tx.query_opt(UPSERT, &params).await?;
        match written {
            Some(_) => tx.commit().await?,
            None => tx.rollback().await?,
        }
        written
    } else {
        conn.query_opt(UPSERT, &params).await?
    };
    let Some(row) = written else {
        return not_written(&conn, o, deadline).await;
    };
    let before: Option<String> = row.get("before");
    let ended = o.status.is_terminal() && before.as_deref() != Some(o.status.as_str());
    Ok(Saved {
        committed: true,
        ended: ended.then_some(o.status),
        unavailable: Vec::new(),
    })
}

/// A save not written: a newer save (or a sale) is there, an earlier try
/// of this very save committed it, or the deadline passed.
async fn not_written(
    conn: &deadpool_postgres::Object,
    o: &Order,
    deadline: Option<DateTime<Utc>>,
) -> Result<Saved, StoreError> {
    let current = conn
        .query_opt(
            "SELECT saved_at_event, status FROM orders WHERE id = $1",
            &[&o.id],
        )
        .await?;
    let committed = current.is_some_and(|r| {
        let (at, status): (i64, &str) = (r.get("saved_at_event"), r.get("status"));
        at == o.saved_at_event && status == o.status.as_str()
    });
    Ok(Saved {
        committed: committed || deadline.is_none(),
        ended: None,
        unavailable: Vec::new(),
    })
}

/// The save number the order's row holds, if it has a row.
pub async fn saved_at(pool: &Pool, id: OrderId) -> Result<Option<i64>, StoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_opt("SELECT saved_at_event FROM orders WHERE id = $1", &[&id])
        .await?;
    Ok(row.map(|r| r.get("saved_at_event")))
}

/// The order with this id, or [`StoreError::OrderNotFound`].
pub async fn find(pool: &Pool, id: OrderId) -> Result<Order, StoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM orders WHERE id = $1");
    let row = conn.query_opt(&sql, &[&id]).await?;
    Order::from_row(&row.ok_or(StoreError::OrderNotFound(id))?)
}

/// Of `ids`, the orders that have a row, each with whether it is live
/// (`CREATED`, `SEATS_RESERVED`, `PAYMENT_PENDING`, `PAYMENT_PROCESSING`).
pub async fn liveness(
    pool: &Pool,
    ids: &[OrderId],
) -> Result<std::collections::HashMap<OrderId, bool>, StoreError> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.uuid()).collect();
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT id, status IN ('CREATED', 'SEATS_RESERVED', 'PAYMENT_PENDING',
                                   'PAYMENT_PROCESSING') AS live
             FROM orders WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let id: uuid::Uuid = row.try_get("id")?;
            Ok((OrderId::from(id), row.try_get("live")?))
        })
        .collect()
}

/// Delete the row of an order that never became one, if it is live: a row
/// saved by an attempt its workflow never recorded (lost with its worker).
/// An ended row is kept. Returns whether a row was deleted.
pub async fn forget_unsold(pool: &Pool, id: OrderId) -> Result<bool, StoreError> {
    let conn = pool.get().await?;
    let deleted = conn
        .execute(
            "DELETE FROM orders WHERE id = $1 AND status IN
                ('CREATED', 'SEATS_RESERVED', 'PAYMENT_PENDING', 'PAYMENT_PROCESSING')",
            &[&id],
        )
        .await?;
    Ok(deleted > 0)
}

/// An attempt's outcome as the `payment_attempts` table stores it.
fn outcome_text(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Succeeded => "SUCCEEDED",
        AttemptOutcome::Declined => "DECLINED",
        AttemptOutcome::TimedOut => "TIMED_OUT",
        AttemptOutcome::Error => "ERROR",
    }
}

/// Record one payment attempt (never the code) and mirror it on the order;
/// returns whether it was recorded now (a retry finds it there).
pub async fn record_attempt(
    pool: &Pool,
    order_id: OrderId,
    attempt: i32,
    outcome: AttemptOutcome,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let recorded = tx
        .execute(
            "INSERT INTO payment_attempts (order_id, attempt, outcome, error)
         VALUES ($1, $2, $3, $4) ON CONFLICT (order_id, attempt) DO NOTHING",
            &[&order_id, &attempt, &outcome_text(outcome), &error],
        )
        .await
        .map_err(|e| match e.code() {
            // The attempt's order row is gone.
            Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {
                StoreError::OrderNotFound(order_id)
            }
            _ => e.into(),
        })?;
    tx.execute(
        "UPDATE orders SET payment_attempts = GREATEST(payment_attempts, $2),
                last_payment_error = $3, updated_at = NOW()
         WHERE id = $1 AND confirmed_at IS NULL",
        &[&order_id, &attempt, &error],
    )
    .await?;
    tx.commit().await?;
    Ok(recorded == 1)
}

/// The outcome of the confirming transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Confirm {
    /// Every seat was sold to this order now.
    Sold,
    /// The order was confirmed already (a retry): nothing changed.
    Confirmed,
    /// These seats were sold meanwhile (or are claimed by another order's
    /// payment); nothing was booked.
    SeatsTaken(Vec<SeatId>),
    /// The order is no longer live (the sweep ended it); nothing was booked.
    NotLive(OrderStatus),
}

/// Sell every seat of the order in one transaction, only if all are unsold,
/// none is claimed by another order, and the order is live (holding seats
/// or paying for them). The order's own claims become the sale.
/// Idempotent: confirming a confirmed order changes nothing.
///
/// An order that is not live (ended meanwhile, e.g. FAILED by the
/// reconciliation sweep, or not yet holding seats) sells nothing:
/// [`Confirm::NotLive`], and the workflow ends the order without a sale.
///
/// Tickets are issued with the default airline prefix; the worker uses
/// [`confirm_ticketing`] with the configured one.
pub async fn confirm(
    pool: &Pool,
    order_id: OrderId,
    flight_id: FlightId,
    seats: &[SeatId],
) -> Result<Confirm, StoreError> {
    confirm_ticketing(pool, order_id, flight_id, seats, &TicketPrefix::default()).await
}

/// [`confirm`], each passenger given a ticket number with this airline
/// `prefix` in the same transaction (`store::checkin::issue`).
pub async fn confirm_ticketing(
    pool: &Pool,
    order_id: OrderId,
    flight_id: FlightId,
    seats: &[SeatId],
    prefix: &TicketPrefix,
) -> Result<Confirm, StoreError> {
    let mut conn = pool.get().await?;
    let mut tx = conn.transaction().await?;
    match locked_status(&tx, order_id).await? {
        None => return Err(StoreError::OrderNotFound(order_id)),
        Some(status) if status.was_sold() => return Ok(Confirm::Confirmed),
        Some(status) if status.holds_seats() => {}
        Some(status) => return Ok(Confirm::NotLive(status)),
    }
    let sold = tx
        .query(
            "UPDATE seats SET status = 'booked', order_id = $1, claimed_by = NULL,
                    updated_at = NOW()
             WHERE flight_id = $2 AND id = ANY($3) AND status = 'available'
               AND (claimed_by IS NULL OR claimed_by = $1)
             RETURNING id",
            &[&order_id, &flight_id, &seats],
        )
        .await?
        .iter()
        .map(|r| seat_id(r.get("id")))
        .collect::<Result<Vec<_>, _>>()?;
    if sold.len() != seats.len() {
        tx.rollback().await?;
        let taken = seats
            .iter()
            .filter(|s| !sold.contains(s))
            .cloned()
            .collect();
        return Ok(Confirm::SeatsTaken(taken));
    }
    let count = seats.len() as i32;
    tx.execute(
        "UPDATE flights SET available_seats = available_seats - $2, updated_at = NOW()
         WHERE id = $1",
        &[&flight_id, &count],
    )
    .await?;
    give_reference(&mut tx, order_id, seats).await?;
    super::checkin::issue(&tx, order_id, prefix).await?;
    tx.commit().await?;
    Ok(Confirm::Sold)
}

/// Confirm the order with a new booking reference, drawing again should
/// one be taken (the unique constraint decides).
async fn give_reference(
    tx: &mut tokio_postgres::Transaction<'_>,
    order_id: OrderId,
    seats: &[SeatId],
) -> Result<(), StoreError> {
    const DRAWS: usize = 8;
    for draw in 1..=DRAWS {
        let reference = crate::passengers::new_reference();
        let sp = tx.savepoint("reference").await?;
        let done = sp
            .execute(
                "UPDATE orders SET status = 'CONFIRMED', seats = $2, confirmed_at = NOW(),
                        failure_reason = NULL, reference = $3, updated_at = NOW()
                 WHERE id = $1",
                &[&order_id, &seats, &reference],
            )
            .await;
        match done {
            Ok(_) => return Ok(sp.commit().await?),
            Err(e)
                if draw < DRAWS
                    && e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                sp.rollback().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last draw returns")
}

/// The order's status, its row locked until the transaction ends; `None`
/// without a row.
async fn locked_status(
    tx: &tokio_postgres::Transaction<'_>,
    order_id: OrderId,
) -> Result<Option<OrderStatus>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT status FROM orders WHERE id = $1 FOR UPDATE",
            &[&order_id],
        )
        .await?;
    Ok(row.and_then(|r| OrderStatus::parse(r.get("status"))))
}
