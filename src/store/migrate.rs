//! Embedded refinery migrations from `migrations/`.

use deadpool_postgres::Pool;

use super::StoreError;

refinery::embed_migrations!("migrations");

/// Advisory lock key so that two `migrate up` runs never interleave.
const MIGRATION_LOCK: i64 = 0x666c_6967_6874;

/// One migration and whether it has been applied.
#[derive(Debug, PartialEq, Eq)]
pub struct MigrationState {
    pub version: i32,
    pub name: String,
    pub applied: bool,
}

/// Apply pending migrations; returns the versions applied by this call.
pub async fn up(pool: &Pool) -> Result<Vec<i32>, StoreError> {
    let mut conn = pool.get().await?;
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = migrations::runner().run_async(&mut **conn).await;
    conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = report?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.version())
        .collect())
}

/// Every embedded migration with its applied state.
pub async fn status(pool: &Pool) -> Result<Vec<MigrationState>, StoreError> {
    let mut conn = pool.get().await?;
    let runner = migrations::runner();
    let has_history: bool = conn
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL AS has_history",
            &[],
        )
        .await?
        .get("has_history");
    let applied = if has_history {
        runner.get_applied_migrations_async(&mut **conn).await?
    } else {
        Vec::new()
    };
    Ok(runner
        .get_migrations()
        .iter()
        .map(|m| MigrationState {
            version: m.version(),
            name: m.name().to_string(),
            applied: applied.iter().any(|a| a.version() == m.version()),
        })
        .collect())
}
