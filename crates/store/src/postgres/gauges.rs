//! What waits, for `/metrics` ([`crate::Gauges`]).

use herald_core::Time;
use sqlx::PgPool;

use crate::{
    Gauges, Result,
    codec::{DEAD_BY_KIND, FLAGGED, ms, time},
};

pub async fn read(pool: &PgPool, now: Time) -> Result<Gauges> {
    let (delayed, needing_attention): (i64, i64) = sqlx::query_as(FLAGGED).fetch_one(pool).await?;
    let (due_tasks, oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(due) FROM (
             SELECT due_at AS due FROM tasks WHERE owner IS NULL AND due_at <= $1
             UNION ALL
             SELECT lease_until FROM tasks WHERE owner IS NOT NULL AND lease_until < $1) t",
    )
    .bind(ms(now))
    .fetch_one(pool)
    .await?;
    let dead: Vec<(String, i64)> = sqlx::query_as(DEAD_BY_KIND).fetch_all(pool).await?;
    Ok(Gauges {
        delayed: delayed as u64,
        needing_attention: needing_attention as u64,
        due_tasks: due_tasks as u64,
        oldest_due: oldest.map(time).transpose()?,
        dead_letters: dead.into_iter().map(|(kind, n)| (kind, n as u64)).collect(),
    })
}
