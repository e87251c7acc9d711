//! How values are kept in SQLite: as every SQL backend keeps them
//! ([`crate::codec`]): times as milliseconds since the epoch, structured
//! values as JSON text.

use rusqlite::Connection;

use crate::Result;
pub use crate::codec::{flags, json, ms, time};

/// The one number a `SELECT COUNT(*) … WHERE … = ?1` answers.
pub fn count(conn: &Connection, sql: &str, arg: &str) -> Result<u64> {
    let n: i64 = conn.prepare_cached(sql)?.query_row([arg], |r| r.get(0))?;
    Ok(n as u64)
}
