//! The PostgreSQL schema: plain SQL files embedded in the binary
//! (`crates/store/migrations/postgres/`), applied in order at open and
//! recorded in `herald_schema`.
//!
//! Not `sqlx::migrate!`: the workspace's sqlx has neither its `macros` nor
//! its `migrate` feature, and this is what the SQLite schema does too (a
//! list, each entry one version, never edited once released), so both
//! backends move their schemas the same way.

use sqlx::PgPool;

use crate::{Result, codec::ms};

/// Each entry moves the schema one version on; never edit a released one.
/// The list's order is the version order; the files' numbers mirror it.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_store.sql"),
    include_str!("../../migrations/postgres/0002_topics.sql"),
    include_str!("../../migrations/postgres/0003_task_epoch.sql"),
    include_str!("../../migrations/postgres/0004_instances.sql"),
    include_str!("../../migrations/postgres/0005_ledger.sql"),
    include_str!("../../migrations/postgres/0006_flags.sql"),
];

/// The advisory lock nodes starting together take: one migrates, the
/// others wait and find it done.
const MIGRATION_LOCK: i64 = 0x6865_7261_6c64_0001;

pub async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS herald_schema (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let current: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM herald_schema").fetch_one(&mut *tx).await?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.unwrap_or(0).max(0) as usize) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO herald_schema (version, applied_at) VALUES ($1, $2)")
            .bind(i as i32 + 1)
            .bind(ms(chrono::Utc::now()))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
