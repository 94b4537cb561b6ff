//! Answers to requests sent with an `Idempotency-Key`, in Postgres so they
//! outlive a restart of `serve` and are shared by every `serve` process.
//!
//! A key is bound to a request fingerprint and an order id when first seen;
//! the final answer is stored once known. A key older than the retention is
//! treated as unused and may be bound again.

use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::StoreError;

/// What a key is bound to.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub fingerprint: String,
    pub order_id: Uuid,
    /// Status code and body of the final answer, once there is one.
    pub answer: Option<(u16, Value)>,
    /// The API gave up on the order's workflow and asked it to stand down.
    pub abandoned: bool,
}

/// A request to bind: the key, its scope and what the request is.
pub struct Binding<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub order_id: Uuid,
}

const COLUMNS: &str = "fingerprint, order_id, status_code, response, abandoned";

fn entry(row: &Row) -> Entry {
    let code: Option<i32> = row.get(2);
    let body: Option<Value> = row.get(3);
    Entry {
        fingerprint: row.get(0),
        order_id: row.get(1),
        answer: code.map(|c| (c as u16, body.unwrap_or(Value::Null))),
        abandoned: row.get(4),
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
            abandoned = FALSE, created_at = NOW()
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
    let sql = format!("SELECT {COLUMNS} FROM idempotency_keys WHERE scope = $1 AND key = $2");
    Ok(entry(&conn.query_one(&sql, &[&b.scope, &b.key]).await?))
}

/// Store the final answer of a bound key.
pub async fn answer(
    pool: &Pool,
    scope: &str,
    key: &str,
    code: u16,
    body: &Value,
) -> Result<(), StoreError> {
    let conn = pool.get().await?;
    conn.execute(
        "UPDATE idempotency_keys SET status_code = $3, response = $4, abandoned = FALSE
         WHERE scope = $1 AND key = $2 AND status_code IS NULL",
        &[&scope, &key, &(code as i32), body],
    )
    .await?;
    Ok(())
}

/// Mark that the API gave up on the key's workflow run (a final answer
/// clears it).
pub async fn abandon(pool: &Pool, scope: &str, key: &str) -> Result<(), StoreError> {
    let conn = pool.get().await?;
    conn.execute(
        "UPDATE idempotency_keys SET abandoned = TRUE WHERE scope = $1 AND key = $2",
        &[&scope, &key],
    )
    .await?;
    Ok(())
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
