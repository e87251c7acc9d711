//! Dead letters: kept, listed, read and dropped. Each kind is written by
//! the part that gives up on it (a subscription, a step, a notification),
//! inside the transaction that gives up.

use rusqlite::{Connection, OptionalExtension, params};

use herald_core::OperationId;

use super::{
    codec::{count, json, ms},
    read::where_clause,
};
use crate::{
    DeadLetter, DeadLetterFilter, DeadLetterKind, Result,
    codec::{self, DEAD_LETTER_COLUMNS, DeadLetterRow},
    filters,
};

const COLUMNS: &str = DEAD_LETTER_COLUMNS;

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

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetterRow> {
    DeadLetterRow::try_from(r)
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<DeadLetter>> {
    let raw = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM dead_letters WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?;
    raw.map(codec::dead_letter).transpose()
}

/// Newest first.
pub fn list(conn: &Connection, f: &DeadLetterFilter) -> Result<Vec<DeadLetter>> {
    let (clauses, args) = where_clause(filters::dead_letters(f));
    let sql = format!("SELECT {COLUMNS} FROM dead_letters{clauses} ORDER BY id DESC LIMIT {}", filters::page(f.limit));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), row)?;
    rows.map(|r| codec::dead_letter(r?)).collect()
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
