//! A broker's ledger on SQLite (see [`crate::BrokerLedger`]): seqs, the
//! publishes its server confirmed, subscription definitions. Writes go
//! through the writer, reads through the read pool.

use std::ops::Range;

use herald_broker::{Claim, Claimed, Confirmed};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Result, ledger::answered};

pub fn claim(conn: &Connection, scope: &str, topic: &str, claims: &[Claim], now: i64) -> Result<Vec<Claimed>> {
    let mut seen = conn.prepare_cached(
        "SELECT seq FROM ledger_publishes
         WHERE scope = ?1 AND topic = ?2 AND source = ?3 AND id = ?4 AND expires_at > ?5",
    )?;
    let mut found = Vec::with_capacity(claims.len());
    for c in claims {
        found.push(match c.fresh {
            true => None,
            false => seen.query_row(params![scope, topic, c.source, c.id, now], |r| r.get(0)).optional()?,
        });
    }
    let new = found.iter().filter(|f| f.is_none()).count() as i64;
    let last = match new {
        0 => 0,
        _ => conn
            .prepare_cached(
                "INSERT INTO ledger_seqs (scope, last) VALUES (?1, ?2)
                 ON CONFLICT (scope) DO UPDATE SET last = last + excluded.last RETURNING last",
            )?
            .query_row(params![scope, new], |r| r.get(0))?,
    };
    Ok(answered(found, last))
}

/// Each recognised from `during.start` (now) until `during.end`.
pub fn confirm(conn: &Connection, scope: &str, topic: &str, done: &[Confirmed], during: Range<i64>) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO ledger_publishes (scope, topic, source, id, seq, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (scope, topic, source, id) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at
         WHERE ledger_publishes.expires_at <= ?7",
    )?;
    for p in done {
        insert.execute(params![scope, topic, p.source, p.id, p.seq as i64, during.end, during.start])?;
    }
    Ok(())
}

/// At most this many at a time, so the writer is never held long.
const FORGET_BATCH: i64 = 5000;

pub fn forget(conn: &Connection, scope: &str, now: i64) -> Result<u64> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM ledger_publishes WHERE (scope, topic, source, id) IN
               (SELECT scope, topic, source, id FROM ledger_publishes WHERE scope = ?1 AND expires_at <= ?2 LIMIT ?3)",
        )?
        .execute(params![scope, now, FORGET_BATCH])? as u64)
}

pub fn put_definition(conn: &Connection, scope: &str, name: &str, spec: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO ledger_definitions (scope, name, spec) VALUES (?1, ?2, ?3)
         ON CONFLICT (scope, name) DO UPDATE SET spec = excluded.spec",
    )?
    .execute(params![scope, name, spec])?;
    Ok(())
}

pub fn delete_definition(conn: &Connection, scope: &str, name: &str) -> Result<bool> {
    let sql = "UPDATE ledger_definitions SET spec = NULL WHERE scope = ?1 AND name = ?2 AND spec IS NOT NULL";
    Ok(conn.prepare_cached(sql)?.execute(params![scope, name])? == 1)
}

pub fn definition(conn: &Connection, scope: &str, name: &str) -> Result<Option<String>> {
    let sql = "SELECT spec FROM ledger_definitions WHERE scope = ?1 AND name = ?2";
    let spec: Option<Option<String>> =
        conn.prepare_cached(sql)?.query_row(params![scope, name], |r| r.get(0)).optional()?;
    Ok(spec.flatten())
}

pub fn definitions(conn: &Connection, scope: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut stmt = conn.prepare_cached("SELECT name, spec FROM ledger_definitions WHERE scope = ?1 ORDER BY name")?;
    let rows = stmt.query_map([scope], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn drop_scope(conn: &Connection, scope: &str) -> Result<()> {
    for table in ["ledger_seqs", "ledger_publishes", "ledger_definitions"] {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE scope = ?1"))?.execute([scope])?;
    }
    Ok(())
}
