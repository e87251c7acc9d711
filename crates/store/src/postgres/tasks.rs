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

use std::{
    collections::VecDeque,
    sync::{Mutex, PoisonError},
};

use herald_core::{Operation, OperationId, TaskKind, Time};
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::{
    Error, Node, Result, Task, TaskId,
    codec::{self, json, ms, readable, time},
};

/// Task ids taken from the table's sequence ahead of their rows, a block
/// at a time, so a new task's id is known before its row is written (and
/// its row can go in one statement with the rest of its transaction). Ids
/// taken and never written leave gaps, as rolled-back inserts always did.
#[derive(Default)]
pub struct TaskIds(Mutex<VecDeque<i64>>);

/// How many ids one trip to the sequence takes.
const ID_BLOCK: i64 = 64;

impl TaskIds {
    /// The next id, on `c` when the block ran out.
    pub async fn next<'e>(&self, c: impl PgExecutor<'e>) -> Result<i64> {
        if let Some(id) = self.lock().pop_front() {
            return Ok(id);
        }
        let mut block: VecDeque<i64> =
            sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('tasks', 'id')) FROM generate_series(1, $1)")
                .bind(ID_BLOCK)
                .fetch_all(c)
                .await?
                .into();
        let first = block.pop_front().ok_or_else(|| Error::Internal("the task id sequence gave nothing".into()))?;
        self.lock().append(&mut block);
        Ok(first)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<i64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The operation as stored, locked as [`super::rows::load`] locks it, and,
/// only if it is there, the task deleted if `owner` holds it under this
/// claim ([`delete`]): one round trip for both. The operation's lock is
/// taken before the task's row is touched, as when they ran one after the
/// other.
pub async fn load_consuming(
    c: &mut PgConnection,
    id: &OperationId,
    task: TaskId,
    owner: &str,
) -> Result<Option<(Operation, bool)>> {
    let (state, held): (Option<String>, bool) = sqlx::query_as(
        "WITH op AS (SELECT state FROM operations WHERE id = $1 FOR UPDATE),
              gone AS (DELETE FROM tasks WHERE id = $2 AND epoch = $3 AND owner = $4 AND EXISTS (SELECT FROM op)
                       RETURNING id)
         SELECT (SELECT state FROM op), EXISTS (SELECT FROM gone)",
    )
    .bind(&*id.text())
    .bind(task.row)
    .bind(task.epoch)
    .bind(owner)
    .fetch_one(c)
    .await?;
    state.map(|s| Ok((codec::operation(id, &s)?, held))).transpose()
}

/// One operation of a batch as [`load_batch`] read it, and the task its
/// job consumes.
pub struct Loaded {
    pub id: OperationId,
    /// `Err` for a row that cannot be read: its job loads it again, alone,
    /// and fails as a load of it fails.
    op: std::result::Result<Option<Operation>, ()>,
    /// The task, and whether its job's node holds it under that claim.
    task: Option<(TaskId, bool)>,
}

impl Loaded {
    /// What [`load_consuming`] would answer for `consume`, short of
    /// deleting the task (the caller holds that write back); `None` if
    /// this is not the task that was read.
    pub fn answer(self, consume: Option<TaskId>) -> Option<Option<(Operation, bool)>> {
        let held = match (consume, self.task) {
            (None, _) => true,
            (Some(want), Some((task, held))) if want == task => held,
            _ => return None,
        };
        Some(self.op.ok()?.map(|op| (op, held)))
    }
}

/// Several operations at once, each locked as [`super::rows::load`] locks
/// one (in id order, so two batches never wait on each other in a
/// circle), and whether `owner` holds each task to consume under its
/// claim, its row locked too (an operation's before its task's, as
/// [`load_consuming`] does). One round trip for a whole batch.
pub async fn load_batch(
    c: &mut PgConnection,
    wanted: &[(OperationId, Option<TaskId>)],
    owner: &str,
) -> Result<Vec<Loaded>> {
    let (mut ids, mut rows, mut epochs) = (Vec::new(), Vec::new(), Vec::new());
    for (id, task) in wanted {
        ids.push(id.text().to_string());
        rows.push(task.map(|t| t.row));
        epochs.push(task.map(|t| t.epoch));
    }
    let found: Vec<(String, String, bool)> = sqlx::query_as(
        "WITH want AS (SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[]) AS w (op_id, task, epoch)),
              op AS (SELECT id, state FROM operations WHERE id IN (SELECT op_id FROM want) ORDER BY id FOR UPDATE),
              held AS (SELECT w.op_id FROM tasks t JOIN want w ON t.id = w.task AND t.epoch = w.epoch
                       WHERE t.owner = $4 AND w.op_id IN (SELECT id FROM op) FOR UPDATE OF t)
         SELECT id, state, id IN (SELECT op_id FROM held) FROM op",
    )
    .bind(ids)
    .bind(rows)
    .bind(epochs)
    .bind(owner)
    .fetch_all(c)
    .await?;
    let mut found: std::collections::HashMap<String, (String, bool)> =
        found.into_iter().map(|(id, state, held)| (id, (state, held))).collect();
    Ok(wanted
        .iter()
        .map(|(id, task)| {
            let row = found.remove(&*id.text());
            let op = row.as_ref().map(|(state, _)| codec::operation(id, state)).transpose().map_err(drop);
            let held = row.is_some_and(|(_, held)| held);
            Loaded { id: id.clone(), op, task: task.map(|t| (t, held)) }
        })
        .collect())
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
