//! Storage: PostgreSQL (flights, seats, orders — the final authority on who
//! owns a seat) and Redis (seat holds with a TTL).

pub mod attempts;
pub mod checkin;
pub mod claims;
pub mod fairshare;
pub mod fares;
pub mod flights;
pub mod holds;
pub mod ledger;
pub mod lookups;
pub mod migrate;
pub mod ops;
pub mod orders;
pub mod queue;
pub mod reconcile;
pub mod redis;
pub mod refunds;
pub mod seed;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use fred::prelude::{
    Builder, ClientLike, Config as RedisConfig, ReconnectPolicy, Server, ServerConfig,
};
use fred::types::config::ClusterDiscoveryPolicy;

use crate::config::{DatabaseSettings, RedisSettings, RedisTarget, Settings};
use crate::domain::SeatId;

pub use holds::Holds;

/// Errors of the storage layer. Each keeps the driver's error as its
/// [`source`](std::error::Error::source); the message itself says only what
/// failed, never the driver's words, so it is safe wherever it is shown.
/// [`StoreError::report`] gives the whole chain, for logs and operators.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Postgres is unreachable or refuses work for now: retry later.
    #[error("postgres is unavailable")]
    Postgres(#[source] PostgresDown),
    /// Postgres answered with an error a retry will not cure (a bug, a
    /// schema that does not match the code).
    #[error("a postgres query failed")]
    Query(#[source] tokio_postgres::Error),
    /// Redis is unreachable or failed the command.
    #[error("redis is unavailable")]
    Redis(#[from] fred::error::Error),
    /// Applying or reading the schema migrations failed.
    #[error("the schema migrations failed")]
    Migration(#[from] refinery::Error),
    /// A value the store wrote came back unreadable (a seat id that does
    /// not parse): the data is corrupt, a retry will not cure it.
    #[error("a stored {what} is corrupt: {value:?}")]
    Corrupt { what: &'static str, value: String },
    #[error("flight {0} not found")]
    FlightNotFound(crate::domain::FlightId),
    #[error("order {0} not found")]
    OrderNotFound(crate::domain::OrderId),
}

/// Why Postgres could not do the work now: the connection or the server
/// failed, or the pool gave no connection in time.
#[derive(Debug, thiserror::Error)]
pub enum PostgresDown {
    /// The connection failed, or the server refused the work for now.
    #[error(transparent)]
    Server(#[from] tokio_postgres::Error),
    /// The pool timed out, or was closed, before a connection was had.
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl StoreError {
    /// The stored `what` read back as `value` does not parse.
    pub fn corrupt(what: &'static str, value: &str) -> Self {
        Self::Corrupt {
            what,
            value: value.to_string(),
        }
    }

    /// The error and every cause under it, `: `-separated, with the SQLSTATE
    /// of a server's error: what a log line or a readiness check shows
    /// (never a client's error answer).
    pub fn report(&self) -> String {
        let first = Some(self as &(dyn std::error::Error + 'static));
        let mut chain = std::iter::successors(first, |e| e.source()).map(|e| {
            match e.downcast_ref::<tokio_postgres::error::DbError>() {
                Some(db) => format!("{db} (SQLSTATE {})", db.code().code()),
                None => e.to_string(),
            }
        });
        let mut out = chain.next().unwrap_or_default();
        for cause in chain {
            out.push_str(": ");
            out.push_str(&cause);
        }
        out
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error().map(|db| db.code().code()) {
            Some(code) if !transient(code) => Self::Query(e),
            _ => Self::Postgres(e.into()),
        }
    }
}

/// The seat ids in `column` of `row`, parsed: a value the store wrote
/// that does not parse is [`StoreError::Corrupt`].
fn seat_ids(row: &tokio_postgres::Row, column: &str) -> Result<Vec<SeatId>, StoreError> {
    let texts: Vec<&str> = row.try_get(column)?;
    texts.into_iter().map(seat_id).collect()
}

/// A seat id read back from Postgres or Redis.
fn seat_id(text: &str) -> Result<SeatId, StoreError> {
    SeatId::parse(text).map_err(|_| StoreError::corrupt("seat id", text))
}

/// SQLSTATE classes of a database that is down, starting, overloaded or
/// failing over: connection exceptions (08), insufficient resources (53),
/// operator intervention (57), serialization and deadlock (40).
fn transient(sqlstate: &str) -> bool {
    ["08", "53", "57", "40"]
        .iter()
        .any(|class| sqlstate.starts_with(class))
}

/// Failing to get a connection is an outage, whatever the server said.
/// The pool's own message repeats its cause's, so a connection that failed
/// is kept as the server's error alone.
impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Postgres(match e {
            deadpool_postgres::PoolError::Backend(e) => PostgresDown::Server(e),
            other => PostgresDown::Pool(other),
        })
    }
}

/// Build the Postgres pool. Connections are made lazily; `check_postgres`
/// proves the database is reachable.
pub fn pg_pool(settings: &DatabaseSettings) -> anyhow::Result<Pool> {
    let cfg = settings.pg_config()?;
    let manager = Manager::from_config(
        cfg,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()?)
}

/// The Postgres pool, proven reachable.
pub async fn connect_postgres(settings: &DatabaseSettings) -> anyhow::Result<Pool> {
    let pool = pg_pool(settings)?;
    check_postgres(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("postgres is unreachable: {}", e.report()))?;
    Ok(pool)
}

/// Everything a serving or booking process stores with: the Postgres pool
/// and the Redis seat holds, built once per process.
pub async fn connect(settings: &Settings) -> anyhow::Result<(Pool, Holds)> {
    let pool = connect_postgres(&settings.database).await?;
    let redis = redis_client(&settings.redis).await?;
    Ok((pool, Holds::new(redis, settings.redis.key_prefix.clone())))
}

/// Round-trip to Postgres.
pub async fn check_postgres(pool: &Pool) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

/// Build and connect the Redis client: one server, or a Redis Cluster
/// (`REDIS_URL=redis-cluster://…`). It reconnects by itself after an
/// outage; commands sent while it is down fail after [`COMMAND_TIMEOUT`],
/// and a request's are refused while it reconnects (see [`redis`]; the API
/// answers 503). On a cluster it follows `MOVED`/`ASK` redirections and
/// re-reads the slot map when a node fails, from the configured nodes and
/// the last map it knew, so a promoted replica is found even when the node
/// named in `REDIS_URL` is the one that died.
pub async fn redis_client(settings: &RedisSettings) -> anyhow::Result<fred::prelude::Client> {
    let target = &settings.target;
    let (server, database) = match target {
        RedisTarget::Single { host, port, db } => {
            (ServerConfig::new_centralized(host, *port), Some(*db))
        }
        RedisTarget::Cluster { nodes } => (
            ServerConfig::Clustered {
                hosts: nodes.iter().map(|(h, p)| Server::new(h, *p)).collect(),
                policy: ClusterDiscoveryPolicy::UseCache,
            },
            // A cluster has database 0 only, and refuses SELECT.
            None,
        ),
    };
    let config = RedisConfig {
        server,
        password: Some(settings.password.expose().to_string()).filter(|p| !p.is_empty()),
        database,
        ..RedisConfig::default()
    };
    let client = Builder::from_config(config)
        .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(3);
            c.internal_command_timeout = Duration::from_secs(3);
            c.max_command_attempts = 2;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()?;
    tokio::time::timeout(Duration::from_secs(5), client.init())
        .await
        .map_err(|_| anyhow::anyhow!("redis at {target} did not answer within 5s"))?
        .map_err(|e| anyhow::anyhow!("redis at {target}: {e}"))?;
    Ok(client)
}

/// The longest one Redis command may take (a caller's deadline may cut it
/// shorter, see [`redis::Redis`]).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Round-trip to Redis, bounded as the holds' calls are (`Holds::until`
/// gives a readiness check its deadline).
pub async fn check_redis(holds: &Holds) -> Result<(), StoreError> {
    let _: String = holds.redis().call().await?.ping(None).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_keeps_its_cause_out_of_its_message() {
        let timeout = deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait);
        let e = StoreError::from(timeout);
        assert!(matches!(e, StoreError::Postgres(PostgresDown::Pool(_))));
        assert_eq!(e.to_string(), "postgres is unavailable");
        assert_eq!(
            e.report(),
            "postgres is unavailable: Timeout occurred while waiting for a slot to become available"
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
