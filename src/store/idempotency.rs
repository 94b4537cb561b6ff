//! The state of each `Idempotency-Key` (`booking::keys`), in Postgres so it
//! outlives a restart of `serve` and is shared by every `serve` process.
//!
//! A key is bound to a request fingerprint and an order id when first seen;
//! the final answer is stored once known. A key older than the retention is
//! Closed: treated as unused, and may be bound again.

use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::StoreError;
use crate::booking::keys::KeyState;

/// A stored final answer: status code and body.
pub type Stored = (u16, Value);

/// What a key is bound to.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub fingerprint: String,
    pub state: KeyState<Stored>,
}

/// A request to bind: the key, its scope and what the request is.
pub struct Binding<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub order_id: Uuid,
}

const COLUMNS: &str = "fingerprint, order_id, status_code, response, abandoned, attempt";

fn entry(row: &Row) -> Entry {
    let order_id: Uuid = row.get(1);
    let code: Option<i32> = row.get(2);
    let body: Option<Value> = row.get(3);
    let attempt = row.get::<_, i32>(5) as u32;
    let state = match (code, row.get::<_, bool>(4)) {
        (Some(c), _) => KeyState::Answered((c as u16, body.unwrap_or(Value::Null))),
        (None, true) => KeyState::Abandoned { order_id, attempt },
        (None, false) => KeyState::Running { order_id, attempt },
    };
    Entry {
        fingerprint: row.get(0),
        state,
    }
}

/// The live entry of a key, if any.
pub async fn find(
    pool: &Pool,
    scope: &str,
    key: &str,
    retention: Duration,
) -> Result<Option<Entry>, StoreError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM idempotency_keys
         WHERE scope = $1 AND key = $2 AND created_at > NOW() - make_interval(secs => $3)"
    );
    let row = conn
        .query_opt(&sql, &[&scope, &key, &retention.as_secs_f64()])
        .await?;
    Ok(row.as_ref().map(entry))
}

/// Bind a key unless a live binding exists; returns the binding that holds,
/// ours or the one that was there first. `answer` stores a final answer at
/// once (a request refused before any work started).
pub async fn bind(
    pool: &Pool,
    binding: &Binding<'_>,
    answer: Option<(u16, &Value)>,
    retention: Duration,
) -> Result<Entry, StoreError> {
    let conn = pool.get().await?;
    let (code, body) = (answer.map(|a| a.0 as i32), answer.map(|a| a.1));
    let sql = format!(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, order_id, status_code, response)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (scope, key) DO UPDATE SET
            fingerprint = EXCLUDED.fingerprint, order_id = EXCLUDED.order_id,
            status_code = EXCLUDED.status_code, response = EXCLUDED.response,
            abandoned = FALSE, attempt = 0, created_at = NOW()
         WHERE idempotency_keys.created_at <= NOW() - make_interval(secs => $7)
         RETURNING {COLUMNS}"
    );
    let b = binding;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &b.scope,
        &b.key,
        &b.fingerprint,
        &b.order_id,
        &code,
        &body,
        &retention.as_secs_f64(),
    ];
    if let Some(row) = conn.query_opt(&sql, &params).await? {
        return Ok(entry(&row));
    }
    read(&conn, b.scope, b.key).await
}

async fn read(conn: &tokio_postgres::Client, scope: &str, key: &str) -> Result<Entry, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM idempotency_keys WHERE scope = $1 AND key = $2");
    Ok(entry(&conn.query_one(&sql, &[&scope, &key]).await?))
}

/// Store the final answer of the key's running attempt `attempt`.
pub async fn answer(
    pool: &Pool,
    (scope, key): (&str, &str),
    attempt: u32,
    (code, body): (u16, &Value),
) -> Result<(), StoreError> {
    let conn = pool.get().await?;
    conn.execute(
        "UPDATE idempotency_keys SET status_code = $4, response = $5
         WHERE scope = $1 AND key = $2 AND attempt = $3
           AND status_code IS NULL AND NOT abandoned",
        &[&scope, &key, &(attempt as i32), &(code as i32), body],
    )
    .await?;
    Ok(())
}

/// The key's running attempt `attempt` changed nothing and never will.
pub async fn abandon(
    pool: &Pool,
    (scope, key): (&str, &str),
    attempt: u32,
) -> Result<(), StoreError> {
    let conn = pool.get().await?;
    conn.execute(
        "UPDATE idempotency_keys SET abandoned = TRUE
         WHERE scope = $1 AND key = $2 AND attempt = $3 AND status_code IS NULL",
        &[&scope, &key, &(attempt as i32)],
    )
    .await?;
    Ok(())
}

/// Start the attempt after the abandoned `attempt`, for `order_id`; returns
/// the entry that holds (another request may have renewed it first).
pub async fn renew(
    pool: &Pool,
    (scope, key): (&str, &str),
    attempt: u32,
    order_id: Uuid,
) -> Result<Entry, StoreError> {
    let conn = pool.get().await?;
    let sql = format!(
        "UPDATE idempotency_keys SET order_id = $4, attempt = attempt + 1, abandoned = FALSE
         WHERE scope = $1 AND key = $2 AND attempt = $3 AND abandoned
         RETURNING {COLUMNS}"
    );
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&scope, &key, &(attempt as i32), &order_id];
    if let Some(row) = conn.query_opt(&sql, &params).await? {
        return Ok(entry(&row));
    }
    read(&conn, scope, key).await
}

/// Delete keys past their retention; returns how many.
pub async fn purge(pool: &Pool, retention: Duration) -> Result<u64, StoreError> {
    let conn = pool.get().await?;
    Ok(conn
        .execute(
            "DELETE FROM idempotency_keys WHERE created_at <= NOW() - make_interval(secs => $1)",
            &[&retention.as_secs_f64()],
        )
        .await?)
}
