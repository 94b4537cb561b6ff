//! The state of each `Idempotency-Key`, in Postgres (table
//! `idempotency_keys`) so it outlives a restart of `serve` and is shared by
//! every `serve` process. The machine (`super`) decides each transition;
//! this applies it, conditioned on the state it moves from.
//!
//! A key is bound to a request fingerprint and an order id when first seen;
//! the final answer is stored once known. A key older than the retention is
//! Closed: treated as unused, and may be bound again.

use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::KeyState;
use crate::domain::OrderId;
use crate::store::StoreError;

/// An answer a key keeps and replays, as its row holds it: a status code
/// and a JSON body (the format of every row stored so far).
pub trait Kept: Clone + PartialEq {
    /// The `status_code` and `response` columns of this answer.
    fn to_row(&self) -> (u16, Value);
    /// The answer of a row's `status_code` and `response`.
    fn from_row(code: u16, body: Value) -> Self;
}

/// What a key is bound to.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<A> {
    pub fingerprint: String,
    pub state: KeyState<A>,
}

/// Where a key lives: its scope (`create`, `pay:<orderId>`) and the key.
#[derive(Clone, Copy)]
pub struct Names<'a> {
    pub scope: &'a str,
    pub key: &'a str,
}

/// A request to bind: the key, what the request is, and its order.
pub struct Binding<'a> {
    pub names: Names<'a>,
    pub fingerprint: &'a str,
    pub order_id: OrderId,
}

const COLUMNS: &str = "fingerprint, order_id, status_code, response, abandoned, attempt";

fn entry<A: Kept>(row: &Row) -> Entry<A> {
    let order_id: OrderId = row.get("order_id");
    let code: Option<i32> = row.get("status_code");
    let body: Option<Value> = row.get("response");
    let attempt = row.get::<_, i32>("attempt") as u32;
    let state = match (code, row.get::<_, bool>("abandoned")) {
        (Some(c), _) => KeyState::Answered(A::from_row(c as u16, body.unwrap_or(Value::Null))),
        (None, true) => KeyState::Abandoned { order_id, attempt },
        (None, false) => KeyState::Running { order_id, attempt },
    };
    Entry {
        fingerprint: row.get("fingerprint"),
        state,
    }
}

/// The live entry of a key, if any.
pub async fn find<A: Kept>(
    pool: &Pool,
    names: Names<'_>,
    retention: Duration,
) -> Result<Option<Entry<A>>, StoreError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM idempotency_keys
         WHERE scope = $1 AND key = $2 AND created_at > NOW() - make_interval(secs => $3)"
    );
    let row = conn
        .query_opt(&sql, &[&names.scope, &names.key, &retention.as_secs_f64()])
        .await?;
    Ok(row.as_ref().map(entry))
}

/// Bind a key to `state` (Running, or Answered for a request refused up
/// front) unless a live binding exists; returns the binding that holds,
/// ours or the one that was there first.
pub async fn bind<A: Kept>(
    pool: &Pool,
    binding: &Binding<'_>,
    state: &KeyState<A>,
    retention: Duration,
) -> Result<Entry<A>, StoreError> {
    let conn = pool.get().await?;
    let (code, body) = answer_columns(state);
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
    let (b, n) = (binding, binding.names);
    let params: [&(dyn ToSql + Sync); 7] = [
        &n.scope,
        &n.key,
        &b.fingerprint,
        &b.order_id,
        &code,
        &body,
        &retention.as_secs_f64(),
    ];
    if let Some(row) = conn.query_opt(&sql, &params).await? {
        return Ok(entry(&row));
    }
    read(&conn, n).await
}

fn answer_columns<A: Kept>(state: &KeyState<A>) -> (Option<i32>, Option<Value>) {
    match state {
        KeyState::Answered(answer) => {
            let (code, body) = answer.to_row();
            (Some(code as i32), Some(body))
        }
        _ => (None, None),
    }
}

async fn read<A: Kept>(
    conn: &tokio_postgres::Client,
    names: Names<'_>,
) -> Result<Entry<A>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM idempotency_keys WHERE scope = $1 AND key = $2");
    Ok(entry(
        &conn.query_one(&sql, &[&names.scope, &names.key]).await?,
    ))
}

/// Move the key from `from` (an attempt, running or abandoned) to `to`, as
/// the machine decided, if it still is where `from` says; returns the entry
/// that holds (another request may have moved it first). A state that is
/// not an attempt's is never moved from.
pub async fn apply<A: Kept>(
    pool: &Pool,
    names: Names<'_>,
    from: &KeyState<A>,
    to: &KeyState<A>,
) -> Result<Option<Entry<A>>, StoreError> {
    let (Some((attempt, abandoned)), Some(set)) = (attempt_of(from), Set::of(to)) else {
        return Ok(None);
    };
    let conn = pool.get().await?;
    let sql = format!(
        "UPDATE idempotency_keys SET order_id = COALESCE($5, order_id),
            attempt = COALESCE($6, attempt), abandoned = $7, status_code = $8, response = $9
         WHERE scope = $1 AND key = $2 AND attempt = $3 AND abandoned = $4
           AND status_code IS NULL
         RETURNING {COLUMNS}"
    );
    let params: [&(dyn ToSql + Sync); 9] = [
        &names.scope,
        &names.key,
        &attempt,
        &abandoned,
        &set.order_id,
        &set.attempt,
        &set.abandoned,
        &set.code,
        &set.body,
    ];
    match conn.query_opt(&sql, &params).await? {
        Some(row) => Ok(Some(entry(&row))),
        None => read(&conn, names).await.map(Some),
    }
}

/// The attempt a state is at, and whether it was abandoned.
fn attempt_of<A>(state: &KeyState<A>) -> Option<(i32, bool)> {
    match state {
        KeyState::Running { attempt, .. } => Some((*attempt as i32, false)),
        KeyState::Abandoned { attempt, .. } => Some((*attempt as i32, true)),
        KeyState::New | KeyState::Answered(_) => None,
    }
}

/// The columns a state writes (an answer leaves the order and attempt).
struct Set {
    order_id: Option<OrderId>,
    attempt: Option<i32>,
    abandoned: bool,
    code: Option<i32>,
    body: Option<Value>,
}

impl Set {
    fn of<A: Kept>(state: &KeyState<A>) -> Option<Self> {
        let attempt = |order_id: OrderId, attempt: u32, abandoned| Set {
            order_id: Some(order_id),
            attempt: Some(attempt as i32),
            abandoned,
            code: None,
            body: None,
        };
        Some(match state {
            KeyState::New => return None,
            KeyState::Running {
                order_id,
                attempt: n,
            } => attempt(*order_id, *n, false),
            KeyState::Abandoned {
                order_id,
                attempt: n,
            } => attempt(*order_id, *n, true),
            KeyState::Answered(_) => {
                let (code, body) = answer_columns(state);
                Set {
                    order_id: None,
                    attempt: None,
                    abandoned: false,
                    code,
                    body,
                }
            }
        })
    }
}

/// Delete keys past their retention; returns how many.
async fn purge(pool: &Pool, retention: Duration) -> Result<u64, StoreError> {
    let conn = pool.get().await?;
    Ok(conn
        .execute(
            "DELETE FROM idempotency_keys WHERE created_at <= NOW() - make_interval(secs => $1)",
            &[&retention.as_secs_f64()],
        )
        .await?)
}

/// Delete expired keys every hour, for as long as the server runs (the
/// first time an hour after start: nothing to do at start-up).
pub async fn purge_expired(pool: Pool, retention: Duration) {
    let every = Duration::from_secs(3600);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        match purge(&pool, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
    }
}
