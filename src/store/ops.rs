//! What the operator console reads and writes in Postgres: operators and
//! their sessions, the audit trail, the orders' status history, the sales
//! overview of every flight, new flights, and the sweep's runs.

use crate::money::Cents;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::StoreError;
use super::flights::{self, Flight};
use super::orders::{self, Order};
use crate::domain::{FlightId, OrderId};

/// Add an operator, or give an existing one a new password hash. Returns
/// whether the operator is new.
pub async fn put_operator(pool: &Pool, name: &str, hash: &str) -> Result<bool, StoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "INSERT INTO operators (name, password_hash) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET password_hash = EXCLUDED.password_hash
             RETURNING (xmax = 0) AS new",
            &[&name, &hash],
        )
        .await?;
    let new: bool = row.get("new");
    if !new {
        // A new password ends the sessions signed in with the old one.
        conn.execute(
            "UPDATE ops_sessions SET revoked_at = NOW() WHERE operator = $1 AND revoked_at IS NULL",
            &[&name],
        )
        .await?;
    }
    Ok(new)
}

/// Remove an operator (their sessions end with them). Whether one was there.
pub async fn remove_operator(pool: &Pool, name: &str) -> Result<bool, StoreError> {
    let conn = pool.get().await?;
    Ok(conn
        .execute("DELETE FROM operators WHERE name = $1", &[&name])
        .await?
        > 0)
}

/// The operator's password hash, if there is such an operator.
pub async fn password_hash(pool: &Pool, name: &str) -> Result<Option<String>, StoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_opt(
            "SELECT password_hash FROM operators WHERE name = $1",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| r.get("password_hash")))
}

/// Open a session for `operator`, known by `digest`, for `ttl`; returns
/// when it expires.
pub async fn open_session(
    pool: &Pool,
    digest: &str,
    operator: &str,
    ttl: Duration,
) -> Result<DateTime<Utc>, StoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "INSERT INTO ops_sessions (id_hash, operator, expires_at)
             VALUES ($1, $2, NOW() + make_interval(secs => $3)) RETURNING expires_at",
            &[&digest, &operator, &ttl.as_secs_f64()],
        )
        .await?;
    Ok(row.get("expires_at"))
}

/// A live session: its operator and when it expires.
#[derive(Clone, Debug)]
pub struct Session {
    pub operator: String,
    pub expires_at: DateTime<Utc>,
}

/// The session known by `digest`, unless it expired or was revoked.
pub async fn session(pool: &Pool, digest: &str) -> Result<Option<Session>, StoreError> {
    let conn = pool.get().await?;
    let row = conn
        .query_opt(
            "SELECT operator, expires_at FROM ops_sessions
             WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > NOW()",
            &[&digest],
        )
        .await?;
    Ok(row.map(|r| Session {
        operator: r.get("operator"),
        expires_at: r.get("expires_at"),
    }))
}

/// End a session at once.
pub async fn revoke_session(pool: &Pool, digest: &str) -> Result<(), StoreError> {
    let conn = pool.get().await?;
    conn.execute(
        "UPDATE ops_sessions SET revoked_at = NOW() WHERE id_hash = $1 AND revoked_at IS NULL",
        &[&digest],
    )
    .await?;
    Ok(())
}

/// One line of the audit trail.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub operator: String,
    /// `cancel_order`, `refund_booking`, `retry_refund`, `close_sales`, `open_sales`,
    /// `add_flight`, `sign_in`, `sign_out`.
    pub action: String,
    /// What it acted on: an order id, a booking reference, a flight.
    pub target: String,
    /// `ok`, or the error code it was refused with.
    pub outcome: String,
    pub detail: Option<String>,
}

/// Record an operator action.
pub async fn audit(
    pool: &Pool,
    operator: &str,
    action: &str,
    target: &str,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let conn = pool.get().await?;
    conn.execute(
        "INSERT INTO ops_audit (operator, action, target, outcome, detail)
         VALUES ($1, $2, $3, $4, $5)",
        &[&operator, &action, &target, &outcome, &detail],
    )
    .await?;
    Ok(())
}

/// A page of results and how many there are in all.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub page: i64,
    pub page_size: i64,
    pub total: i64,
    pub items: Vec<T>,
}

/// Rows on one page of the console's lists.
pub const PAGE_SIZE: i64 = 25;

/// The audit trail, newest first.
pub async fn audit_page(pool: &Pool, page: i64) -> Result<Page<AuditEntry>, StoreError> {
    let conn = pool.get().await?;
    let offset = (page.max(1) - 1) * PAGE_SIZE;
    let rows = conn
        .query(
            "SELECT at, operator, action, target, outcome, detail, count(*) OVER () AS total
             FROM ops_audit ORDER BY id DESC LIMIT $1 OFFSET $2",
            &[&PAGE_SIZE, &offset],
        )
        .await?;
    let total = rows.first().map_or(0, |r| r.get("total"));
    Ok(Page {
        page: page.max(1),
        page_size: PAGE_SIZE,
        total,
        items: rows
            .iter()
            .map(|r| AuditEntry {
                at: r.get("at"),
                operator: r.get("operator"),
                action: r.get("action"),
                target: r.get("target"),
                outcome: r.get("outcome"),
                detail: r.get("detail"),
            })
            .collect(),
    })
}

/// One status an order had, and when the database recorded it.
#[derive(Clone, Debug)]
pub struct StatusChange {
    pub status: String,
    pub at: DateTime<Utc>,
}

/// Every status the order had, oldest first.
pub async fn history(pool: &Pool, order_id: OrderId) -> Result<Vec<StatusChange>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT status, at FROM order_status_history WHERE order_id = $1 ORDER BY id",
            &[&order_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StatusChange {
            status: r.get("status"),
            at: r.get("at"),
        })
        .collect())
}

/// One payment attempt of an order.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub attempt: i32,
    pub outcome: String,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// The order's payment attempts, in the order they were made.
pub async fn attempts(pool: &Pool, order_id: OrderId) -> Result<Vec<Attempt>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT attempt, outcome, error, created_at FROM payment_attempts
             WHERE order_id = $1 ORDER BY attempt",
            &[&order_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Attempt {
            attempt: r.get("attempt"),
            outcome: r.get("outcome"),
            error: r.get("error"),
            at: r.get("created_at"),
        })
        .collect())
}

/// What the orders list filters on.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub status: Option<String>,
    pub flight: Option<FlightId>,
    /// A booking reference, an order id, or a passenger's family name.
    pub q: Option<String>,
    pub page: i64,
}

/// Orders, newest first, with their flight's number.
pub async fn orders(
    pool: &Pool,
    filter: &OrderFilter,
) -> Result<Page<(Order, String)>, StoreError> {
    let conn = pool.get().await?;
    let offset = (filter.page.max(1) - 1) * PAGE_SIZE;
    let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let ids: Vec<(OrderId, String, i64)> = conn
        .query(
            "SELECT o.id, f.flight_number, count(*) OVER () AS total
             FROM orders o JOIN flights f ON f.id = o.flight_id
             WHERE ($1::text IS NULL OR o.status = $1)
               AND ($2::uuid IS NULL OR o.flight_id = $2)
               AND ($3::text IS NULL
                    OR o.reference = upper($3)
                    OR o.id::text = lower($3)
                    OR EXISTS (SELECT 1 FROM jsonb_array_elements(o.passengers) p
                               WHERE lower(p->>'familyName') = lower($3)))
             ORDER BY o.created_at DESC, o.id
             LIMIT $4 OFFSET $5",
            &[&filter.status, &filter.flight, &q, &PAGE_SIZE, &offset],
        )
        .await?
        .iter()
        .map(|r| (r.get("id"), r.get("flight_number"), r.get("total")))
        .collect();
    drop(conn);
    let total = ids.first().map_or(0, |r| r.2);
    let mut items = Vec::with_capacity(ids.len());
    for (id, number, _) in ids {
        items.push((orders::find(pool, id).await?, number));
    }
    Ok(Page {
        page: filter.page.max(1),
        page_size: PAGE_SIZE,
        total,
        items,
    })
}

/// A flight's sales, as the console shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct FlightSales {
    pub flight: Flight,
    /// Seats sold (booked in Postgres).
    pub sold: i64,
    /// Seats live orders reserve now: held in Redis or claimed by a payment.
    pub held: i64,
    /// Seats neither sold nor held.
    pub available: i64,
    /// What the sold bookings paid (refunded ones excluded).
    pub revenue_cents: Cents,
    /// Bookings confirmed per minute over the last 30 minutes, oldest first.
    pub bookings_per_minute: Vec<i64>,
}

/// Minutes the bookings sparkline covers.
pub const SPARK_MINUTES: usize = 30;

/// Every flight's sales but the reserved seats (`held` is 0; the caller
/// counts the holds in Redis and the claims).
pub async fn sales(pool: &Pool) -> Result<Vec<FlightSales>, StoreError> {
    let list = flights::list(pool).await?;
    let conn = pool.get().await?;
    let sold = conn
        .query(
            "SELECT f.id,
                    (SELECT count(*) FROM seats s
                     WHERE s.flight_id = f.id AND s.status = 'booked') AS booked,
                    (SELECT coalesce(sum(o.total_price_cents), 0)::bigint FROM orders o
                     WHERE o.flight_id = f.id
                       AND o.status IN ('CONFIRMED', 'REFUND_PENDING', 'REFUND_FAILED')) AS revenue
             FROM flights f",
            &[],
        )
        .await?;
    let spark = conn
        .query(
            "SELECT o.flight_id, floor(extract(epoch FROM NOW() - h.at) / 60)::int AS minutes_ago,
                    count(*) AS confirmed
             FROM order_status_history h JOIN orders o ON o.id = h.order_id
             WHERE h.status = 'CONFIRMED' AND h.at > NOW() - make_interval(mins => $1)
             GROUP BY 1, 2",
            &[&(SPARK_MINUTES as i32)],
        )
        .await?;
    Ok(list
        .into_iter()
        .map(|flight| {
            let row = sold
                .iter()
                .find(|r| r.get::<_, FlightId>("id") == flight.id);
            let (booked, revenue): (i64, Cents) =
                row.map_or((0, Cents::ZERO), |r| (r.get("booked"), r.get("revenue")));
            let mut per_minute = vec![0; SPARK_MINUTES];
            for r in spark
                .iter()
                .filter(|r| r.get::<_, FlightId>("flight_id") == flight.id)
            {
                let ago: i32 = r.get("minutes_ago");
                if (0..SPARK_MINUTES as i32).contains(&ago) {
                    per_minute[SPARK_MINUTES - 1 - ago as usize] = r.get("confirmed");
                }
            }
            FlightSales {
                available: i64::from(flight.total_seats) - booked,
                sold: booked,
                held: 0,
                revenue_cents: revenue,
                bookings_per_minute: per_minute,
                flight,
            }
        })
        .collect())
}

/// A change of a flight's scheduled sale and of its queue's cap: `None`
/// leaves one as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    pub opens_at: Option<Option<DateTime<Utc>>>,
    pub admit_per_minute: Option<Option<i32>>,
}

/// Open or close a flight's sales, and change its schedule; the flight
/// after, if there is one.
pub async fn set_sales(
    pool: &Pool,
    id: FlightId,
    open: bool,
    schedule: &Schedule,
) -> Result<Flight, StoreError> {
    let conn = pool.get().await?;
    let changed = conn
        .execute(
            "UPDATE flights SET sales_open = $2,
                 sales_open_at = CASE WHEN $3 THEN $4 ELSE sales_open_at END,
                 admit_per_minute = CASE WHEN $5 THEN $6 ELSE admit_per_minute END,
                 updated_at = NOW()
             WHERE id = $1",
            &[
                &id,
                &open,
                &schedule.opens_at.is_some(),
                &schedule.opens_at.flatten(),
                &schedule.admit_per_minute.is_some(),
                &schedule.admit_per_minute.flatten(),
            ],
        )
        .await?;
    drop(conn);
    if changed == 0 {
        return Err(StoreError::FlightNotFound(id));
    }
    flights::find(pool, id).await
}

/// A flight to add, checked.
#[derive(Clone, Debug)]
pub struct NewFlight {
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub departure_time: DateTime<Utc>,
    pub arrival_time: DateTime<Utc>,
    pub rows: i32,
    pub seat_letters: Vec<char>,
    pub price_cents: Cents,
    /// A scheduled sale's opening, if any.
    pub sales_open_at: Option<DateTime<Utc>>,
}

/// Why a flight was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddFlight {
    #[error("flight number {0} is taken")]
    NumberTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Add the flight and every one of its seats, in one transaction.
pub async fn add_flight(pool: &Pool, f: &NewFlight) -> Result<Flight, AddFlight> {
    let id = FlightId::random();
    let total = f.rows * f.seat_letters.len() as i32;
    let mut conn = pool.get().await.map_err(StoreError::from)?;
    let tx = conn.transaction().await.map_err(StoreError::from)?;
    let inserted = tx
        .execute(
            "INSERT INTO flights (id, flight_number, origin, destination, departure_time,
                    arrival_time, total_seats, available_seats, price_cents, sales_open_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
            &[
                &id,
                &f.flight_number,
                &f.origin,
                &f.destination,
                &f.departure_time,
                &f.arrival_time,
                &total,
                &f.price_cents,
                &f.sales_open_at,
            ],
        )
        .await;
    if let Err(e) = inserted {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            return Err(AddFlight::NumberTaken(f.flight_number.clone()));
        }
        return Err(StoreError::from(e).into());
    }
    let letters: Vec<String> = f.seat_letters.iter().map(char::to_string).collect();
    tx.execute(
        "INSERT INTO seats (id, flight_id, row_num, col)
         SELECT r || l, $1, r, l FROM generate_series(1, $2) AS r, unnest($3::text[]) AS l",
        &[&id, &f.rows, &letters],
    )
    .await
    .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(flights::find(pool, id).await?)
}

/// One run of the reconciliation sweep.
#[derive(Clone, Debug)]
pub struct SweepRun {
    pub at: DateTime<Utc>,
    /// What it fixed (the sweep's report).
    pub report: serde_json::Value,
}

/// Record what a run of the sweep fixed.
pub async fn record_sweep(pool: &Pool, report: &serde_json::Value) -> Result<(), StoreError> {
    let conn = pool.get().await?;
    conn.execute("INSERT INTO reconcile_runs (report) VALUES ($1)", &[report])
        .await?;
    // Keep the last thousand runs.
    conn.execute(
        "DELETE FROM reconcile_runs WHERE id <= (SELECT max(id) - 1000 FROM reconcile_runs)",
        &[],
    )
    .await?;
    Ok(())
}

/// The sweep's recent runs, newest first.
pub async fn sweep_runs(pool: &Pool, limit: i64) -> Result<Vec<SweepRun>, StoreError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT at, report FROM reconcile_runs ORDER BY id DESC LIMIT $1",
            &[&limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SweepRun {
            at: r.get("at"),
            report: r.get("report"),
        })
        .collect())
}
