//! Service instances registered at run time: one row each, written by the
//! writer, listed by the readers.

use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{json, ms};
use crate::{
    RegisteredInstance, Result,
    codec::{self, INSTANCE_COLUMNS, InstanceRow},
};

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InstanceRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

pub fn get(conn: &Connection, service: &str, id: &str) -> Result<Option<RegisteredInstance>> {
    let raw = conn
        .prepare_cached(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE service = ?1 AND id = ?2"))?
        .query_row(params![service, id], row)
        .optional()?;
    raw.map(codec::instance).transpose()
}

pub fn upsert(conn: &Connection, i: &RegisteredInstance) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO instances (service, id, url, metadata, expires_at, registered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (service, id) DO UPDATE SET url = excluded.url, metadata = excluded.metadata,
             expires_at = excluded.expires_at, registered_at = excluded.registered_at",
    )?
    .execute(params![i.service, i.id, i.url, json(&i.metadata)?, ms(i.expires_at), ms(i.registered_at)])?;
    Ok(())
}

pub fn delete(conn: &Connection, service: &str, id: &str) -> Result<bool> {
    Ok(conn.prepare_cached("DELETE FROM instances WHERE service = ?1 AND id = ?2")?.execute(params![service, id])? == 1)
}

pub fn list(conn: &Connection, now: i64) -> Result<Vec<RegisteredInstance>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances WHERE expires_at > ?1 ORDER BY service, id"
    ))?;
    let rows = stmt.query_map([now], row)?;
    super::read::readable(rows.map(|r| codec::instance(r?)))
}

pub fn prune(conn: &Connection, now: i64) -> Result<u64> {
    Ok(conn.prepare_cached("DELETE FROM instances WHERE expires_at <= ?1")?.execute([now])? as u64)
}
