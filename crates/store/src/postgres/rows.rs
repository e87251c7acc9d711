//! The rows behind each write: operations, idempotency keys, the timeline,
//! the inbox and dead letters, on the transaction's connection. Nothing
//! here decides; [`crate::policy`] does, over these through [`super::tx`].
//! (Tasks and their leases are in [`super::tasks`].)

use herald_core::{Operation, OperationId, Time, concurrency::Active, notify::Notification};
use sqlx::{PgConnection, Row};

use crate::{
    DeadLetter, DeadLetterKind, Error, IdempotencyKey, Result,
    codec::{json, ms},
};

/// The operation as stored, locked for the rest of the transaction: a
/// read-modify-write of it on another node waits for this one's commit.
pub async fn load(c: &mut PgConnection, id: &OperationId) -> Result<Option<Operation>> {
    super::read::operation(c, id, true).await
}

/// The advisory locks' first keys: what the second (a hash) is of.
const IDEMPOTENCY_LOCK: i32 = 1;
const CONCURRENCY_LOCK: i32 = 2;
/// A published event's topic, and its source and id.
pub(super) const EVENT_ID_LOCK: i32 = 3;
/// A subscription, and an ordering key of its deliveries.
pub(super) const DELIVERY_KEY_LOCK: i32 = 4;

/// Takes, until this transaction ends, the advisory lock of a workflow's
/// (or topic's, or subscription's) key of one kind. Two keys whose hashes
/// collide only wait for each other.
pub(super) async fn lock_key(c: &mut PgConnection, kind: i32, workflow: &str, key: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2 || chr(31) || $3))")
        .bind(kind)
        .bind(workflow)
        .bind(key)
        .execute(c)
        .await?;
    Ok(())
}

/// The operations holding a concurrency key, read under the key's lock:
/// the policy reads them and then writes (accepts one more, lets the next
/// start), and no other node's accept or release under the same key may
/// run between the two. A unique index cannot say this (queue and
/// supersede keep several active), so the lock does.
pub async fn active_with_key(c: &mut PgConnection, workflow: &str, key: &str) -> Result<Vec<Active>> {
    lock_key(c, CONCURRENCY_LOCK, workflow, key).await?;
    let rows = sqlx::query(
        "SELECT id, queued FROM operations
         WHERE workflow = $1 AND concurrency_key = $2 AND status IN ('accepted', 'awaiting_decision', 'running', 'compensating')
         ORDER BY id",
    )
    .bind(workflow)
    .bind(key)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| Ok(Active { id: r.try_get::<&str, _>(0)?.parse().map_err(Error::Corrupt)?, queued: r.try_get(1)? }))
        .collect()
}

/// The key's first use, read under the key's lock: a second accept under
/// it waits for the first to end and then finds what it made, before its
/// concurrency policy could answer for a request that is a replay. The
/// key's primary key stays the guarantee ([`insert_idempotency`]).
pub async fn idempotency(c: &mut PgConnection, workflow: &str, key: &str) -> Result<Option<(OperationId, String)>> {
    lock_key(c, IDEMPOTENCY_LOCK, workflow, key).await?;
    let seen: Option<(String, String)> =
        sqlx::query_as("SELECT op_id, request_hash FROM idempotency WHERE workflow = $1 AND key = $2")
            .bind(workflow)
            .bind(key)
            .fetch_optional(c)
            .await?;
    seen.map(|(id, hash)| Ok((id.parse().map_err(Error::Corrupt)?, hash))).transpose()
}

/// The key's row. Another node that wrote it first makes this
/// [`Error::Raced`]: run again, the accept finds it and answers as a replay.
pub async fn insert_idempotency(
    c: &mut PgConnection,
    workflow: &str,
    key: &IdempotencyKey,
    op: &OperationId,
    at: Time,
) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency (workflow, key, request_hash, op_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(workflow)
    .bind(&key.key)
    .bind(&key.request_hash)
    .bind(&*op.text())
    .bind(ms(at))
    .execute(c)
    .await;
    match inserted {
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("idempotency_key") => {
            Err(Error::Raced(format!("idempotency key `{}` of {workflow} was taken by another node", key.key)))
        }
        other => other.map(drop).map_err(Into::into),
    }
}

/// The subject's next change number. The counter's row lock keeps two
/// nodes' changes to one inbox in line.
pub async fn next_version(c: &mut PgConnection, subject: &str) -> Result<u64> {
    let v: i64 = sqlx::query_scalar(
        "INSERT INTO counters (name, value) VALUES ($1, 1)
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
    )
    .bind(format!("inbox/{subject}"))
    .fetch_one(c)
    .await?;
    Ok(v as u64)
}

pub async fn upsert_notification(c: &mut PgConnection, subject: &str, n: &Notification) -> Result<()> {
    sqlx::query(
        "INSERT INTO notifications (id, subject, op_id, version, read, created_at, updated_at, notice)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, read = excluded.read,
             updated_at = excluded.updated_at, notice = excluded.notice",
    )
    .bind(&n.id)
    .bind(subject)
    .bind(&*n.operation_id.text())
    .bind(n.version as i64)
    .bind(n.read)
    .bind(ms(n.created_at))
    .bind(ms(n.updated_at))
    .bind(json(&n.notice)?)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn unread_ids(c: &mut PgConnection, subject: &str, only: Option<&str>) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM notifications WHERE subject = $1 AND NOT read AND ($2::TEXT IS NULL OR id = $2)
         ORDER BY version",
    )
    .bind(subject)
    .bind(only)
    .fetch_all(c)
    .await?)
}

pub async fn mark_read(c: &mut PgConnection, id: &str, version: u64) -> Result<Option<Notification>> {
    sqlx::query("UPDATE notifications SET read = TRUE, version = $2 WHERE id = $1")
        .bind(id)
        .bind(version as i64)
        .execute(&mut *c)
        .await?;
    super::read::notification(c, None, id).await
}

pub async fn insert_dead_letter(c: &mut PgConnection, d: &DeadLetter) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO dead_letters (kind, subscription, topic, workflow, op_id, step, attempts, error, errors,
                                   payload, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(d.kind.as_str())
    .bind(&d.subscription)
    .bind(&d.topic)
    .bind(&d.workflow)
    .bind(d.operation_id.as_ref().map(|o| o.to_string()))
    .bind(&d.step)
    .bind(i64::from(d.attempts))
    .bind(&d.error)
    .bind(json(&d.errors)?)
    .bind(json(&d.payload)?)
    .bind(ms(d.created_at))
    .fetch_one(c)
    .await?)
}

pub async fn delete_dead_letter(c: &mut PgConnection, id: i64) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM dead_letters WHERE id = $1").bind(id).execute(c).await?.rows_affected() == 1)
}

/// A step's (or its compensation's) letters of one operation.
pub async fn delete_step_dead_letters(
    c: &mut PgConnection,
    op: &OperationId,
    step: &str,
    kind: DeadLetterKind,
) -> Result<()> {
    sqlx::query("DELETE FROM dead_letters WHERE op_id = $1 AND step = $2 AND kind = $3")
        .bind(&*op.text())
        .bind(step)
        .bind(kind.as_str())
        .execute(c)
        .await?;
    Ok(())
}
