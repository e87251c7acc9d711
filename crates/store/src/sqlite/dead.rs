//! Dead letters: kept, listed, read and dropped. Each kind is written by
//! the part that gives up on it (a subscription, a step, a notification),
//! inside the transaction that gives up.

use rusqlite::{Connection, OptionalExtension, params, types::Value};

use herald_core::OperationId;

use super::codec::{count, json, ms, time};
use crate::{DeadLetter, DeadLetterFilter, DeadLetterKind, Error, Result};

const COLUMNS: &str =
    "id, kind, subscription, topic, workflow, op_id, step, attempts, error, errors, payload, created_at";

pub fn insert(conn: &Connection, d: &DeadLetter) -> Result<i64> {
    let id = conn
        .prepare_cached(
            "INSERT INTO dead_letters (kind, subscription, topic, workflow, op_id, step, attempts, error, errors,
                                       payload, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        )?
        .query_row(
            params![
                d.kind.as_str(),
                d.subscription,
                d.topic,
                d.workflow,
                d.operation_id.as_ref().map(|o| o.to_string()),
                d.step,
                d.attempts,
                d.error,
                json(&d.errors)?,
                json(&d.payload)?,
                ms(d.created_at)
            ],
            |r| r.get(0),
        )?;
    Ok(id)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: r.get(0)?,
        kind: r.get(1)?,
        subscription: r.get(2)?,
        topic: r.get(3)?,
        workflow: r.get(4)?,
        op: r.get(5)?,
        step: r.get(6)?,
        attempts: r.get(7)?,
        error: r.get(8)?,
        errors: r.get(9)?,
        payload: r.get(10)?,
        created: r.get(11)?,
    })
}

struct Raw {
    id: i64,
    kind: String,
    subscription: Option<String>,
    topic: Option<String>,
    workflow: Option<String>,
    op: Option<String>,
    step: Option<String>,
    attempts: u32,
    error: String,
    errors: String,
    payload: String,
    created: i64,
}

impl Raw {
    fn parse(self) -> Result<DeadLetter> {
        let corrupt = |e: serde_json::Error| Error::Corrupt(format!("dead letter {}: {e}", self.id));
        Ok(DeadLetter {
            id: self.id,
            kind: DeadLetterKind::parse(&self.kind)
                .ok_or_else(|| Error::Corrupt(format!("dead letter {}: kind `{}`", self.id, self.kind)))?,
            subscription: self.subscription,
            topic: self.topic,
            workflow: self.workflow,
            operation_id: self.op.map(|o| o.parse()).transpose().map_err(Error::Corrupt)?,
            step: self.step,
            attempts: self.attempts,
            error: self.error,
            errors: serde_json::from_str(&self.errors).map_err(corrupt)?,
            payload: serde_json::from_str(&self.payload).map_err(corrupt)?,
            created_at: time(self.created)?,
        })
    }
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<DeadLetter>> {
    let raw = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM dead_letters WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?;
    raw.map(Raw::parse).transpose()
}

/// Newest first.
pub fn list(conn: &Connection, f: &DeadLetterFilter) -> Result<Vec<DeadLetter>> {
    let mut sql = format!("SELECT {COLUMNS} FROM dead_letters WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut filter = |clause: &str, v: Value| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(k) = f.kind {
        filter("kind =", Value::Text(k.as_str().into()));
    }
    if let Some(s) = &f.subscription {
        filter("subscription =", Value::Text(s.clone()));
    }
    if let Some(w) = &f.workflow {
        filter("workflow =", Value::Text(w.clone()));
    }
    if let Some(o) = &f.operation {
        filter("op_id =", Value::Text(o.to_string()));
    }
    if let Some(b) = f.before {
        filter("id <", Value::Integer(b));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", f.limit.clamp(1, 1000)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), row)?;
    rows.map(|r| r?.parse()).collect()
}

pub fn delete(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?.execute([id])? == 1)
}

/// A step's (or its compensation's) letters of one operation.
pub fn delete_for_step(conn: &Connection, op: &OperationId, step: &str, kind: DeadLetterKind) -> Result<()> {
    conn.prepare_cached("DELETE FROM dead_letters WHERE op_id = ?1 AND step = ?2 AND kind = ?3")?.execute(params![
        &*op.text(),
        step,
        kind.as_str()
    ])?;
    Ok(())
}

/// A subscription's dead letters, for its stats.
pub fn count_for_subscription(conn: &Connection, sub: &str) -> Result<u64> {
    count(conn, "SELECT COUNT(*) FROM dead_letters WHERE subscription = ?1", sub)
}
