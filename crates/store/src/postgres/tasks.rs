//! Tasks and their leases, shared by every node on the database. A task is
//! free, or held by one node (`owner`) until `lease_until`. A node claims
//! free due tasks and tasks whose lease ran out, skipping rows another
//! node is claiming at that moment (`FOR UPDATE SKIP LOCKED`), so claims
//! never wait on each other and never hand a task to two nodes at once.
//!
//! Fencing: every claim moves the task's `epoch` on, and every change to
//! a held task (finish, retry, dead-letter, consume in a transition) names
//! its owner and the epoch of its claim ([`TaskId`]). A node whose lease
//! ran out and was taken over, by another node or by itself (a process
//! paused past its lease that claimed the task again on waking, while the
//! older attempt was still in flight), finds the task no longer its own
//! and changes nothing.

use herald_core::{OperationId, TaskKind, Time};
use sqlx::{PgConnection, PgPool};

use crate::{
    Node, Result, Task, TaskId,
    codec::{self, json, ms, readable, time},
    tx::Lease,
};

pub async fn insert(
    c: &mut PgConnection,
    op: &OperationId,
    kind: &TaskKind,
    due: Time,
    lease: Option<Lease<'_>>,
) -> Result<TaskId> {
    let (row, epoch) = sqlx::query_as(
        "INSERT INTO tasks (op_id, kind, due_at, owner, lease_until) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, epoch",
    )
    .bind(&*op.text())
    .bind(json(kind)?)
    .bind(ms(due))
    .bind(lease.map(|l| l.owner))
    .bind(lease.map(|l| ms(l.until)))
    .fetch_one(c)
    .await?;
    Ok(TaskId { row, epoch })
}

/// Leases up to `limit` free due tasks, and as many whose lease ran out,
/// to `node`.
pub async fn claim(pool: &PgPool, node: &Node, limit: usize) -> Result<Vec<Task>> {
    let now = chrono::Utc::now();
    let rows: Vec<(i64, i64, String, String, i64)> = sqlx::query_as(
        "WITH free AS (
             SELECT id FROM tasks WHERE owner IS NULL AND due_at <= $3 ORDER BY due_at LIMIT $4
             FOR UPDATE SKIP LOCKED
         ), expired AS (
             SELECT id FROM tasks WHERE owner IS NOT NULL AND lease_until < $3 ORDER BY lease_until LIMIT $4
             FOR UPDATE SKIP LOCKED
         )
         UPDATE tasks SET owner = $1, lease_until = $2, epoch = epoch + 1
         WHERE id IN (SELECT id FROM free UNION ALL SELECT id FROM expired)
         RETURNING id, epoch, op_id, kind, due_at",
    )
    .bind(&node.id)
    .bind(ms(now + node.lease))
    .bind(ms(now))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    // One unreadable task must not stop every other: it is reported, and
    // left to its lease.
    readable(
        rows.iter().map(|(row, epoch, op, kind, due)| {
            codec::claimed_task(TaskId { row: *row, epoch: *epoch }, op, kind, *due)
        }),
    )
}

/// Gives back every task `owner` holds.
pub async fn release(pool: &PgPool, owner: &str) -> Result<()> {
    sqlx::query("UPDATE tasks SET owner = NULL, lease_until = NULL WHERE owner = $1").bind(owner).execute(pool).await?;
    Ok(())
}

/// Deletes the task if `owner` holds it under this claim.
pub async fn delete(c: &mut PgConnection, id: TaskId, owner: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM tasks WHERE id = $1 AND epoch = $2 AND owner = $3")
        .bind(id.row)
        .bind(id.epoch)
        .bind(owner)
        .execute(c)
        .await?;
    Ok(n.rows_affected() == 1)
}

/// Rewrites a task `owner` holds under this claim and gives it back, to run
/// at `due`.
pub async fn retry(pool: &PgPool, id: TaskId, owner: &str, kind: &TaskKind, due: Time) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE tasks SET kind = $4, due_at = $5, owner = NULL, lease_until = NULL
         WHERE id = $1 AND epoch = $2 AND owner = $3",
    )
    .bind(id.row)
    .bind(id.epoch)
    .bind(owner)
    .bind(json(kind)?)
    .bind(ms(due))
    .execute(pool)
    .await?;
    Ok(n.rows_affected() == 1)
}

/// The earliest due time of a task nobody holds.
pub async fn next_due(pool: &PgPool) -> Result<Option<Time>> {
    let due: Option<i64> =
        sqlx::query_scalar("SELECT MIN(due_at) FROM tasks WHERE owner IS NULL").fetch_one(pool).await?;
    due.map(time).transpose()
}
