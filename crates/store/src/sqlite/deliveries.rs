//! The statements behind what subscriptions owe their consumers (see
//! [`crate::policy::broker`] for what they mean). They run inside the
//! writer, so two pullers can never hold the same row.

use herald_core::{Time, retry::AttemptError};
use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{json, ms, time};
use crate::{
    Result,
    codec::{DeliveryRawRow, delivery, select_delivery},
    tx::DeliveryRow,
};

pub fn key_waiting(conn: &Connection, sub: &str, key: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM deliveries WHERE sub = ?1 AND key = ?2 LIMIT 1")?
        .query_row(params![sub, key], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn insert(conn: &Connection, sub: &str, seq: i64, key: Option<&str>, ready: bool, due: Time) -> Result<()> {
    conn.prepare_cached("INSERT INTO deliveries (sub, seq, key, ready, due_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![sub, seq, key, ready, ms(due)])?;
    Ok(())
}

pub fn delete_for(conn: &Connection, sub: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM deliveries WHERE sub = ?1")?.execute([sub])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?.execute([id])?;
    Ok(())
}

pub fn next_of_key(conn: &Connection, sub: &str, key: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE deliveries SET ready = 1 WHERE id = (SELECT MIN(id) FROM deliveries WHERE sub = ?1 AND key = ?2)",
    )?
    .execute(params![sub, key])?;
    Ok(())
}

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRawRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

pub fn due(conn: &Connection, sub: &str, limit: usize, now: Time) -> Result<Vec<DeliveryRow>> {
    let mut stmt = conn.prepare_cached(concat!(
        select_delivery!(),
        "WHERE d.sub = ?1 AND d.ready = 1 AND d.due_at <= ?2 ORDER BY d.due_at, d.id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![sub, ms(now), limit as i64], raw)?;
    rows.map(|r| delivery(r?)).collect()
}

pub fn leased(conn: &Connection, sub: &str, id: i64, token: i64) -> Result<Option<DeliveryRow>> {
    conn.prepare_cached(concat!(select_delivery!(), "WHERE d.id = ?1 AND d.sub = ?2 AND d.lease = ?3"))?
        .query_row(params![id, sub, token], raw)
        .optional()?
        .map(delivery)
        .transpose()
}

pub fn lease(conn: &Connection, id: i64, token: i64, until: Time, errors: Option<&[AttemptError]>) -> Result<()> {
    if let Some(errors) = errors {
        conn.prepare_cached("UPDATE deliveries SET errors = ?2 WHERE id = ?1")?.execute(params![id, json(&errors)?])?;
    }
    conn.prepare_cached("UPDATE deliveries SET attempts = attempts + 1, lease = ?2, due_at = ?3 WHERE id = ?1")?
        .execute(params![id, token, ms(until)])?;
    Ok(())
}

pub fn release(conn: &Connection, id: i64, due: Time, errors: Option<&[AttemptError]>) -> Result<()> {
    match errors {
        Some(errors) => conn
            .prepare_cached("UPDATE deliveries SET lease = NULL, due_at = ?2, errors = ?3 WHERE id = ?1")?
            .execute(params![id, ms(due), json(&errors)?])?,
        None => conn
            .prepare_cached("UPDATE deliveries SET lease = NULL, due_at = ?2, attempts = attempts - 1 WHERE id = ?1")?
            .execute(params![id, ms(due)])?,
    };
    Ok(())
}

/// Ends every lease on `sub`'s deliveries: they are due at `now`.
pub fn release_all(conn: &Connection, sub: &str, now: Time) -> Result<()> {
    conn.prepare_cached("UPDATE deliveries SET lease = NULL, due_at = ?2 WHERE sub = ?1 AND lease IS NOT NULL")?
        .execute(params![sub, ms(now)])?;
    Ok(())
}

pub fn ack(conn: &Connection, sub: &str, id: i64, token: i64) -> Result<Option<Option<String>>> {
    Ok(conn
        .prepare_cached("DELETE FROM deliveries WHERE id = ?1 AND sub = ?2 AND lease = ?3 RETURNING key")?
        .query_row(params![id, sub, token], |r| r.get(0))
        .optional()?)
}

pub fn counts(conn: &Connection, sub: &str, now: Time) -> Result<(u64, u64, Option<Time>)> {
    let (total, out, oldest): (i64, Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT COUNT(*), SUM(d.lease IS NOT NULL AND d.due_at > ?2), MIN(e.published_at)
             FROM deliveries d JOIN topic_events e ON e.seq = d.seq WHERE d.sub = ?1",
        )?
        .query_row(params![sub, ms(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok((total as u64, out.unwrap_or(0) as u64, oldest.map(time).transpose()?))
}

pub fn next_due(conn: &Connection, sub: &str) -> Result<Option<Time>> {
    let due: Option<i64> = conn
        .prepare_cached("SELECT MIN(due_at) FROM deliveries WHERE sub = ?1 AND ready = 1")?
        .query_row([sub], |r| r.get(0))?;
    due.map(time).transpose()
}
