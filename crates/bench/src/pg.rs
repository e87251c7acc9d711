//! Runs on PostgreSQL: a schema of the run's own, and what PostgreSQL did
//! during the measured run (its commits, its CPU).

use std::str::FromStr;

use anyhow::Context;
use serde::Serialize;
use sqlx::{
    AssertSqlSafe, ConnectOptions, Connection, Row,
    postgres::{PgConnectOptions, PgConnection},
};

/// Whether a store URL names PostgreSQL.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` with its connections' `search_path` set to `schema`, the form a
/// herald store URL takes to keep its tables in one schema.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// A fresh schema `herald_bench_<random>` for one run, dropped with it, so
/// runs never see each other's rows.
pub struct Schema {
    base: PgConnectOptions,
    name: String,
    /// The store URL herald is given: the database, this schema's tables.
    pub url: String,
    /// Reads the database's counters.
    stats: PgConnection,
}

impl Schema {
    pub async fn create(database_url: &str) -> anyhow::Result<Self> {
        // Never the URL in a message: it may hold a password.
        let base = PgConnectOptions::from_str(database_url).context("--store is not a PostgreSQL URL")?;
        let mut stats = base.connect().await.context("cannot reach the PostgreSQL of --store")?;
        let name = format!("herald_bench_{:016x}", rand::random::<u64>());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut stats).await?;
        let url = with_search_path(database_url, &name);
        Ok(Schema { base, name, url, stats })
    }

    /// The database's commits so far, and the CPU time of every `postgres`
    /// process on this machine.
    pub async fn snapshot(&mut self) -> anyhow::Result<PgSnapshot> {
        let row = sqlx::query("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&mut self.stats)
            .await?;
        Ok(PgSnapshot { commits: row.try_get::<i64, _>(0)?, cpu_s: postgres_cpu_s() })
    }

    /// Drops the schema and its tables.
    pub async fn drop(self) -> anyhow::Result<()> {
        let mut admin = self.base.connect().await?;
        sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name))).execute(&mut admin).await?;
        admin.close().await?;
        self.stats.close().await?;
        Ok(())
    }
}

#[derive(Clone, Copy)]
pub struct PgSnapshot {
    commits: i64,
    cpu_s: f64,
}

/// What PostgreSQL did between two snapshots.
#[derive(Serialize, Clone, Copy, Default)]
pub struct PgUsage {
    /// `xact_commit` of the database: every transaction committed in it,
    /// including single statements outside one, by anyone.
    pub commits: i64,
    pub commits_per_op: f64,
    /// The `postgres` processes' CPU (user + system) seconds.
    pub cpu_s: f64,
}

impl PgSnapshot {
    pub fn since(&self, before: &PgSnapshot, ops: usize) -> PgUsage {
        let commits = self.commits - before.commits;
        PgUsage { commits, commits_per_op: commits as f64 / ops.max(1) as f64, cpu_s: self.cpu_s - before.cpu_s }
    }
}

/// The CPU seconds of every process named `postgres`, with what their
/// exited children had (the postmaster waits for the backends that end, so
/// connections that closed during the run still count).
fn postgres_cpu_s() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    let ticks: u64 = dir
        .flatten()
        .filter_map(|e| crate::procs::cpu_ticks(e.file_name().to_str()?))
        .filter(|(name, _)| name == "postgres")
        .map(|(_, t)| t.iter().sum::<u64>())
        .sum();
    ticks as f64 / 100.0
}
