//! The write side: each function runs inside the writer's transaction.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use herald_core::{
    Event, OpStatus, Operation, OperationId, TaskKind, Time, Transition, machine,
    notify::{Channel, InboxChange, Notice, Notification},
    workflow::OnConflict,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Accepted, Applied, Error, NewOperation, Node, Result, Task, TaskId, TransitionFn, TransitionResult};

pub fn ms(t: Time) -> i64 {
    t.timestamp_millis()
}

/// A stored time; one out of range is unreadable data, not 1970.
pub fn time(ms: i64) -> Result<Time> {
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| Error::Corrupt(format!("{ms} is not a time")))
}

pub fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("cannot write as JSON: {e}")))
}

pub fn load(conn: &Connection, id: &str) -> Result<Option<Operation>> {
    let state: Option<String> =
        conn.prepare_cached("SELECT state FROM operations WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
    state.map(|s| serde_json::from_str(&s).map_err(|e| Error::Corrupt(format!("operation {id}: {e}")))).transpose()
}

const ACTIVE: &str = "status IN ('accepted', 'running', 'compensating')";

pub fn accept(conn: &Connection, node: &Node, new: NewOperation) -> Result<Accepted> {
    let NewOperation { mut op, transition: mut first, idempotency, on_conflict, supersede } = new;
    if let Some(k) = &idempotency {
        let seen: Option<(String, String)> = conn
            .prepare_cached("SELECT op_id, request_hash FROM idempotency WHERE workflow = ?1 AND key = ?2")?
            .query_row(params![op.workflow, k.key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((existing, hash)) = seen {
            let existing_op = load(conn, &existing)?
                .ok_or_else(|| Error::Corrupt(format!("idempotency row for missing {existing}")))?;
            return Ok(if hash == k.request_hash {
                Accepted::Existing(Box::new(existing_op))
            } else {
                Accepted::KeyReused(existing_op.id)
            });
        }
    }
    let mut others = Vec::new();
    if let (Some(key), Some(policy)) = (&op.concurrency_key, on_conflict) {
        let active = active_with_key(conn, &op.workflow, key)?;
        let now = op.updated_at;
        if let Some((head, _)) = active.iter().find(|(_, queued)| !queued).or(active.first()) {
            let head: OperationId = head.parse().map_err(Error::Corrupt)?;
            match policy {
                OnConflict::Reject => return Ok(Accepted::Conflict(head)),
                OnConflict::Queue => {
                    let last: OperationId =
                        active.last().map(|(i, _)| i.parse()).transpose().map_err(Error::Corrupt)?.unwrap_or(head);
                    machine::enqueue(&mut op, &mut first, last, now);
                }
                OnConflict::Supersede => machine::enqueue(&mut op, &mut first, head, now),
            }
        }
        if policy == OnConflict::Supersede && !active.is_empty() {
            insert_op(conn, &op)?;
            let f = supersede.ok_or_else(|| Error::Internal("supersede policy without a supersede function".into()))?;
            for (older, _) in &active {
                let f = f.clone();
                if let TransitionResult::Applied(a) = transition(conn, node, older, None, Box::new(move |o| Ok(f(o))))?
                {
                    others.push(a);
                }
            }
            return finish_accept(conn, node, op, first, idempotency, others, true);
        }
    }
    insert_op(conn, &op)?;
    finish_accept(conn, node, op, first, idempotency, others, false)
}

fn finish_accept(
    conn: &Connection,
    node: &Node,
    op: Operation,
    transition: Transition,
    idempotency: Option<crate::IdempotencyKey>,
    others: Vec<Applied>,
    maybe_dequeue: bool,
) -> Result<Accepted> {
    let id = op.id.to_string();
    if let Some(k) = &idempotency {
        conn.prepare_cached(
            "INSERT INTO idempotency (workflow, key, request_hash, op_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![op.workflow, k.key, k.request_hash, id, ms(op.created_at)])?;
    }
    insert_events(conn, &id, &transition.events)?;
    let mut tasks = insert_tasks(conn, node, &op.id, &transition.tasks)?;
    // Superseding may have emptied the queue ahead of this one.
    if maybe_dequeue && let Some(key) = &op.concurrency_key {
        tasks.extend(dequeue(conn, node, &op.workflow, key)?);
    }
    let inbox = write_inbox(conn, &op, transition.notice.as_ref())?;
    tasks.extend(write_deliveries(conn, node, &op, &transition.deliveries)?);
    Ok(Accepted::Created(Applied { op: Arc::new(op), events: transition.events, tasks, others, inbox }))
}

fn active_with_key(conn: &Connection, workflow: &str, key: &str) -> Result<Vec<(String, bool)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, queued FROM operations WHERE workflow = ?1 AND concurrency_key = ?2 AND {ACTIVE} ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![workflow, key], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn insert_op(conn: &Connection, op: &Operation) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO operations (id, workflow, subject, status, concurrency_key, queued, updated_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        op.id.to_string(),
        op.workflow,
        op.subject,
        op.status.as_str(),
        op.concurrency_key,
        op.queued_behind.is_some(),
        ms(op.updated_at),
        json(op)?
    ])?;
    Ok(())
}

fn insert_events(conn: &Connection, id: &str, events: &[Event]) -> Result<()> {
    let mut stmt = conn.prepare_cached("INSERT INTO events (op_id, seq, body) VALUES (?1, ?2, ?3)")?;
    for e in events {
        stmt.execute(params![id, e.seq as i64, json(e)?])?;
    }
    Ok(())
}

pub fn insert_tasks(
    conn: &Connection,
    node: &Node,
    op: &OperationId,
    specs: &[herald_core::TaskSpec],
) -> Result<Vec<Task>> {
    let now = Utc::now();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO tasks (op_id, kind, due_at, owner, lease_until) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    )?;
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        // Work due now is leased to this node at once, so it runs without a poll.
        let owned = spec.due <= now;
        let (owner, lease) = if owned { (Some(node.id.as_str()), Some(ms(now + node.lease))) } else { (None, None) };
        let id: TaskId =
            stmt.query_row(params![op.to_string(), json(&spec.kind)?, ms(spec.due), owner, lease], |r| r.get(0))?;
        out.push(Task { id, op: op.clone(), kind: spec.kind.clone(), due: spec.due, owned });
    }
    Ok(out)
}

/// Lets the oldest queued operation with this key start, if none is running.
fn dequeue(conn: &Connection, node: &Node, workflow: &str, key: &str) -> Result<Vec<Task>> {
    let active = active_with_key(conn, workflow, key)?;
    if active.iter().any(|(_, queued)| !queued) {
        return Ok(vec![]);
    }
    let Some((next, _)) = active.first() else { return Ok(vec![]) };
    let Some(mut op) = load(conn, next)? else { return Ok(vec![]) };
    // No longer behind anyone: the state says so too, so no later write of it
    // puts it back in the queue before its start runs.
    op.queued_behind = None;
    save(conn, &op)?;
    insert_tasks(conn, node, &op.id, &[herald_core::TaskSpec { kind: TaskKind::Start, due: Utc::now() }])
}

/// Writes an operation's state; `queued` is derived from it.
fn save(conn: &Connection, op: &Operation) -> Result<()> {
    conn.prepare_cached("UPDATE operations SET status = ?2, updated_at = ?3, state = ?4, queued = ?5 WHERE id = ?1")?
        .execute(params![
        op.id.to_string(),
        op.status.as_str(),
        ms(op.updated_at),
        json(op)?,
        op.queued_behind.is_some() && op.status == OpStatus::Accepted
    ])?;
    Ok(())
}

pub fn transition(
    conn: &Connection,
    node: &Node,
    id: &str,
    consume: Option<TaskId>,
    f: TransitionFn,
) -> Result<TransitionResult> {
    let Some(mut op) = load(conn, id)? else { return Ok(TransitionResult::Missing) };
    if let Some(task) = consume {
        let deleted =
            conn.prepare_cached("DELETE FROM tasks WHERE id = ?1 AND owner = ?2")?.execute(params![task, node.id])?;
        if deleted == 0 {
            return Ok(TransitionResult::Missing);
        }
    }
    let tr = match f(&mut op) {
        Ok(tr) => tr,
        // An error rolls this job's savepoint back, so the task stays; the
        // caller turns it back into `TransitionResult::Rejected`.
        Err(rejection) => return Err(Error::Rejected(rejection)),
    };
    if tr.is_empty() {
        return Ok(TransitionResult::Applied(Applied {
            op: Arc::new(op),
            events: vec![],
            tasks: vec![],
            others: vec![],
            inbox: None,
        }));
    }
    save(conn, &op)?;
    insert_events(conn, id, &tr.events)?;
    write_dead_letters(conn, &op, &tr)?;
    let mut tasks = insert_tasks(conn, node, &op.id, &tr.tasks)?;
    if tr.finished
        && let Some(key) = &op.concurrency_key
    {
        tasks.extend(dequeue(conn, node, &op.workflow, key)?);
    }
    let inbox = write_inbox(conn, &op, tr.notice.as_ref())?;
    tasks.extend(write_deliveries(conn, node, &op, &tr.deliveries)?);
    Ok(TransitionResult::Applied(Applied { op: Arc::new(op), events: tr.events, tasks, others: vec![], inbox }))
}

/// Steps given up on become dead letters; steps redriven (or overtaken)
/// take theirs away, in the transaction that says so.
fn write_dead_letters(conn: &Connection, op: &Operation, tr: &Transition) -> Result<()> {
    use herald_core::{EventKind, retry::AttemptError, task::Phase};
    let kind = |phase: Phase| match phase {
        Phase::Forward => crate::DeadLetterKind::Step,
        Phase::Compensation => crate::DeadLetterKind::Compensation,
    };
    let id = op.id.to_string();
    for (step, phase) in &tr.resolved {
        conn.prepare_cached("DELETE FROM dead_letters WHERE op_id = ?1 AND step = ?2 AND kind = ?3")?
            .execute(params![id, step, kind(*phase).as_str()])?;
    }
    if tr.dead_letters.is_empty() {
        return Ok(());
    }
    let timeline = super::read::events(conn, &id, 0, usize::MAX)?;
    for letter in &tr.dead_letters {
        // Every failed attempt of this step (or its compensation), from the timeline.
        let errors = timeline
            .iter()
            .filter_map(|e| match (&e.kind, letter.phase) {
                (EventKind::StepRetrying { step, attempt, error, .. }, Phase::Forward)
                | (EventKind::CompensationRetrying { step, attempt, error, .. }, Phase::Compensation)
                    if *step == letter.step =>
                {
                    Some(AttemptError { attempt: *attempt, at: e.at, error: error.clone() })
                }
                (EventKind::StepHeld { step, error }, Phase::Forward)
                | (EventKind::CompensationFailed { step, error }, Phase::Compensation)
                    if *step == letter.step =>
                {
                    Some(AttemptError { attempt: letter.attempts, at: e.at, error: error.clone() })
                }
                _ => None,
            })
            .collect();
        super::dead::insert(
            conn,
            &crate::DeadLetter {
                id: 0,
                kind: kind(letter.phase),
                subscription: None,
                topic: None,
                workflow: Some(op.workflow.clone()),
                operation_id: Some(op.id.clone()),
                step: Some(letter.step.clone()),
                attempts: letter.attempts,
                error: letter.error.clone(),
                errors,
                payload: serde_json::json!({ "operation_id": id, "step": letter.step, "phase": letter.phase }),
                created_at: Utc::now(),
            },
        )?;
    }
    Ok(())
}

/// The subject's next change number.
fn next_version(conn: &Connection, subject: &str) -> Result<u64> {
    let v: i64 = conn
        .prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, 1)
             ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
        )?
        .query_row([format!("inbox/{subject}")], |r| r.get(0))?;
    Ok(v as u64)
}

pub fn unread(conn: &Connection, subject: &str) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM notifications WHERE subject = ?1 AND read = 0")?
        .query_row([subject], |r| r.get(0))?;
    Ok(n as u64)
}

/// Rewrites the operation's notification in its subject's inbox (unread
/// again: there is news), in the transaction that made the news.
fn write_inbox(
    conn: &Connection,
    op: &Operation,
    notice: Option<&Notice>,
) -> Result<Option<Box<(String, InboxChange)>>> {
    let (Some(notice), Some(subject)) = (notice, op.subject.as_deref()) else { return Ok(None) };
    if !notice.channels.contains(&Channel::Inbox) {
        return Ok(None);
    }
    let version = next_version(conn, subject)?;
    let now = Utc::now();
    let notification = Notification {
        id: Notification::id_for(&op.id),
        operation_id: op.id.clone(),
        notice: notice.clone(),
        read: false,
        version,
        created_at: op.created_at,
        updated_at: now,
    };
    conn.prepare_cached(
        "INSERT INTO notifications (id, subject, op_id, version, read, created_at, updated_at, notice)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, read = 0,
             updated_at = excluded.updated_at, notice = excluded.notice",
    )?
    .execute(params![
        notification.id,
        subject,
        op.id.to_string(),
        version as i64,
        ms(op.created_at),
        ms(now),
        json(notice)?
    ])?;
    let unread = unread(conn, subject)?;
    Ok(Some(Box::new((subject.to_string(), InboxChange { notification, unread }))))
}

/// Queues the notification for the channels beyond the inbox (webhook,
/// email), in the transaction that made the news: it cannot be lost, nor
/// sent for news that was rolled back.
fn write_deliveries(
    conn: &Connection,
    node: &Node,
    op: &Operation,
    deliveries: &[(Channel, serde_json::Value)],
) -> Result<Vec<Task>> {
    let now = Utc::now();
    let specs: Vec<herald_core::TaskSpec> = deliveries
        .iter()
        .map(|(channel, payload)| herald_core::TaskSpec {
            kind: TaskKind::Deliver { channel: *channel, attempt: 1, payload: payload.clone() },
            due: now,
        })
        .collect();
    insert_tasks(conn, node, &op.id, &specs)
}

/// Deletes a task this node holds.
pub fn finish_task(conn: &Connection, node: &Node, id: TaskId) -> Result<bool> {
    Ok(conn.prepare_cached("DELETE FROM tasks WHERE id = ?1 AND owner = ?2")?.execute(params![id, node.id])? == 1)
}

/// Rewrites a held task and releases it to run at `due`.
pub fn retry_task(conn: &Connection, node: &Node, id: TaskId, kind: &TaskKind, due: Time) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE tasks SET kind = ?3, due_at = ?4, owner = NULL, lease_until = NULL WHERE id = ?1 AND owner = ?2",
        )?
        .execute(params![id, node.id, json(kind)?, ms(due)])?;
    Ok(n == 1)
}

pub fn dead_letter(conn: &Connection, node: &Node, id: TaskId, letter: &crate::DeadLetter) -> Result<bool> {
    if !finish_task(conn, node, id)? {
        return Ok(false);
    }
    super::dead::insert(conn, letter)?;
    Ok(true)
}

/// Marks unread notifications of `subject` read (one, or all with `None`).
pub fn mark_read(conn: &Connection, subject: &str, id: Option<&str>) -> Result<Vec<InboxChange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM notifications WHERE subject = ?1 AND read = 0 AND (?2 IS NULL OR id = ?2) ORDER BY version",
    )?;
    let ids: Vec<String> = stmt.query_map(params![subject, id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let mut changes = Vec::with_capacity(ids.len());
    for nid in ids {
        let version = next_version(conn, subject)?;
        conn.prepare_cached("UPDATE notifications SET read = 1, version = ?2 WHERE id = ?1")?
            .execute(params![nid, version as i64])?;
        let n = super::read::notification(conn, None, &nid)?
            .ok_or_else(|| Error::Corrupt(format!("notification {nid} vanished")))?;
        changes.push(n);
    }
    let unread = unread(conn, subject)?;
    Ok(changes.into_iter().map(|notification| InboxChange { notification, unread }).collect())
}
