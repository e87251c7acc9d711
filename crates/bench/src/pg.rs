//! Runs on PostgreSQL: a schema of the run's own, and what PostgreSQL did
//! during the measured run (its commits, its CPU).

use std::{collections::BTreeMap, str::FromStr};

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
        let url = herald_store::postgres::in_schema(database_url, &name);
        Ok(Schema { base, name, url, stats })
    }

    /// The database's commits so far, and the CPU time of every `postgres`
    /// process on this machine.
    pub async fn snapshot(&mut self) -> anyhow::Result<PgSnapshot> {
        let row = sqlx::query("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&mut self.stats)
            .await?;
        // This schema's tables are this run's alone.
        let tables: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT relname::TEXT, COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0), n_tup_ins, n_tup_upd, n_tup_del
             FROM pg_stat_user_tables WHERE schemaname = $1",
        )
        .bind(&self.name)
        .fetch_all(&mut self.stats)
        .await?;
        let tables = tables.into_iter().map(|(name, scans, ins, upd, del)| (name, [scans, ins, upd, del])).collect();
        Ok(PgSnapshot { commits: row.try_get::<i64, _>(0)?, cpu_s: postgres_cpu_s(), tables })
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

pub struct PgSnapshot {
    commits: i64,
    cpu_s: f64,
    /// Per table of the schema: scans, rows inserted, updated, deleted.
    tables: BTreeMap<String, [i64; 4]>,
}

/// What PostgreSQL did between two snapshots.
#[derive(Serialize, Clone, Default)]
pub struct PgUsage {
    /// `xact_commit` of the database: every transaction committed in it,
    /// including single statements outside one, by anyone.
    pub commits: i64,
    pub commits_per_op: f64,
    /// The `postgres` processes' CPU (user + system) seconds.
    pub cpu_s: f64,
    /// Per table, an operation's share of: scans (sequential and index,
    /// about one a statement that reads the table), rows inserted,
    /// updated, deleted.
    pub per_op: BTreeMap<String, TableUse>,
}

#[derive(Serialize, Clone, Copy, Default)]
pub struct TableUse {
    pub scans: f64,
    pub inserted: f64,
    pub updated: f64,
    pub deleted: f64,
}

impl PgSnapshot {
    pub fn since(&self, before: &PgSnapshot, ops: usize) -> PgUsage {
        let ops = ops.max(1) as f64;
        let commits = self.commits - before.commits;
        let per_op = self
            .tables
            .iter()
            .map(|(name, after)| {
                let was = before.tables.get(name).copied().unwrap_or_default();
                let d = |i: usize| (after[i] - was[i]) as f64 / ops;
                (name.clone(), TableUse { scans: d(0), inserted: d(1), updated: d(2), deleted: d(3) })
            })
            .filter(|(_, t)| t.scans + t.inserted + t.updated + t.deleted > 0.0)
            .collect();
        PgUsage { commits, commits_per_op: commits as f64 / ops, cpu_s: self.cpu_s - before.cpu_s, per_op }
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
