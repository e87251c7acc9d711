//! The rows behind each write: operations, idempotency keys, the timeline,
//! tasks and the inbox. Nothing here decides; [`crate::policy`] does, over
//! these through [`super::tx`]. Ids are bound as stack text
//! ([`OperationId::text`]): these run on every commit.

use herald_core::{Event, Operation, OperationId, TaskKind, Time, concurrency::Active, notify::Notification};
use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{count, flags, json, ms};
use crate::{Error, IdempotencyKey, Result, TaskId, tx::Lease};

pub fn insert_op(conn: &Connection, op: &Operation) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO operations (id, workflow, subject, status, concurrency_key, queued, updated_at, state, flags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        &*op.id.text(),
        op.workflow,
        op.subject,
        op.status.as_str(),
        op.concurrency_key,
        op.is_queued(),
        ms(op.updated_at),
        json(op)?,
        flags(op)
    ])?;
    Ok(())
}

pub fn update_op(conn: &Connection, op: &Operation) -> Result<()> {
    conn.prepare_cached(
        "UPDATE operations SET status = ?2, updated_at = ?3, state = ?4, queued = ?5, flags = ?6 WHERE id = ?1",
    )?
    .execute(params![
        &*op.id.text(),
        op.status.as_str(),
        ms(op.updated_at),
        json(op)?,
        op.is_queued(),
        flags(op)
    ])?;
    Ok(())
}

/// Not final: what the concurrency policy counts as holding a key.
const ACTIVE: &str = "status IN ('accepted', 'awaiting_decision', 'running', 'compensating')";

pub fn active_with_key(conn: &Connection, workflow: &str, key: &str) -> Result<Vec<Active>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, queued FROM operations WHERE workflow = ?1 AND concurrency_key = ?2 AND {ACTIVE} ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![workflow, key], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
    rows.map(|row| {
        let (id, queued) = row?;
        Ok(Active { id: id.parse().map_err(Error::Corrupt)?, queued })
    })
    .collect()
}

pub fn idempotency(conn: &Connection, workflow: &str, key: &str) -> Result<Option<(OperationId, String)>> {
    let seen: Option<(String, String)> = conn
        .prepare_cached("SELECT op_id, request_hash FROM idempotency WHERE workflow = ?1 AND key = ?2")?
        .query_row(params![workflow, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    seen.map(|(id, hash)| Ok((id.parse().map_err(Error::Corrupt)?, hash))).transpose()
}

pub fn insert_idempotency(
    conn: &Connection,
    workflow: &str,
    key: &IdempotencyKey,
    op: &OperationId,
    at: Time,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO idempotency (workflow, key, request_hash, op_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![workflow, key.key, key.request_hash, &*op.text(), ms(at)])?;
    Ok(())
}

pub fn insert_events(conn: &Connection, op: &OperationId, events: &[Event]) -> Result<()> {
    let mut stmt = conn.prepare_cached("INSERT INTO events (op_id, seq, body) VALUES (?1, ?2, ?3)")?;
    let id = op.text();
    for e in events {
        stmt.execute(params![&*id, e.seq as i64, json(e)?])?;
    }
    Ok(())
}

pub fn insert_task(
    conn: &Connection,
    op: &OperationId,
    kind: &TaskKind,
    due: Time,
    lease: Option<Lease<'_>>,
) -> Result<TaskId> {
    let id = conn
        .prepare_cached(
            "INSERT INTO tasks (op_id, kind, due_at, owner, lease_until) VALUES (?1, ?2, ?3, ?4, ?5)
             RETURNING id, epoch",
        )?
        .query_row(
            params![&*op.text(), json(kind)?, ms(due), lease.map(|l| l.owner), lease.map(|l| ms(l.until))],
            |r| Ok(TaskId { row: r.get(0)?, epoch: r.get(1)? }),
        )?;
    Ok(id)
}

/// Deletes a task `owner` holds under this claim.
pub fn delete_task(conn: &Connection, id: TaskId, owner: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM tasks WHERE id = ?1 AND epoch = ?2 AND owner = ?3")?
        .execute(params![id.row, id.epoch, owner])?;
    Ok(n == 1)
}

/// Rewrites a task `owner` holds under this claim and gives it back, to run
/// at `due`.
pub fn retry_task(conn: &Connection, id: TaskId, owner: &str, kind: &TaskKind, due: Time) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE tasks SET kind = ?4, due_at = ?5, owner = NULL, lease_until = NULL
             WHERE id = ?1 AND epoch = ?2 AND owner = ?3",
        )?
        .execute(params![id.row, id.epoch, owner, json(kind)?, ms(due)])?;
    Ok(n == 1)
}

pub fn next_version(conn: &Connection, subject: &str) -> Result<u64> {
    let v: i64 = conn
        .prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, 1)
             ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
        )?
        .query_row([format!("inbox/{subject}")], |r| r.get(0))?;
    Ok(v as u64)
}

pub fn upsert_notification(conn: &Connection, subject: &str, n: &Notification) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO notifications (id, subject, op_id, version, read, created_at, updated_at, notice)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, read = excluded.read,
             updated_at = excluded.updated_at, notice = excluded.notice",
    )?
    .execute(params![
        n.id,
        subject,
        &*n.operation_id.text(),
        n.version as i64,
        n.read,
        ms(n.created_at),
        ms(n.updated_at),
        json(&n.notice)?
    ])?;
    Ok(())
}

pub fn unread(conn: &Connection, subject: &str) -> Result<u64> {
    count(conn, "SELECT COUNT(*) FROM notifications WHERE subject = ?1 AND read = 0", subject)
}

pub fn unread_ids(conn: &Connection, subject: &str, only: Option<&str>) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM notifications WHERE subject = ?1 AND read = 0 AND (?2 IS NULL OR id = ?2) ORDER BY version",
    )?;
    let ids = stmt.query_map(params![subject, only], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

pub fn mark_read(conn: &Connection, id: &str, version: u64) -> Result<Option<Notification>> {
    conn.prepare_cached("UPDATE notifications SET read = 1, version = ?2 WHERE id = ?1")?
        .execute(params![id, version as i64])?;
    super::read::notification(conn, None, id)
}
