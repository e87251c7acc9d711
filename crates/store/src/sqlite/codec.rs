//! How values are kept in SQLite: times as milliseconds since the epoch,
//! structured values as JSON text.

use chrono::{TimeZone, Utc};
use herald_core::Time;
use rusqlite::Connection;

use crate::{Error, Result};

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

/// The one number a `SELECT COUNT(*) … WHERE … = ?1` answers.
pub fn count(conn: &Connection, sql: &str, arg: &str) -> Result<u64> {
    let n: i64 = conn.prepare_cached(sql)?.query_row([arg], |r| r.get(0))?;
    Ok(n as u64)
}
