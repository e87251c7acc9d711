//! What waits, for `/metrics` ([`crate::Gauges`]).

use herald_core::Time;
use rusqlite::Connection;

use super::codec::{ms, time};
use crate::{
    Gauges, Result,
    codec::{DEAD_BY_KIND, FLAGGED},
};

pub fn read(conn: &Connection, now: Time) -> Result<Gauges> {
    let (delayed, needing_attention): (i64, i64) =
        conn.prepare_cached(FLAGGED)?.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (due_tasks, oldest): (i64, Option<i64>) = conn
        .prepare_cached(
            "SELECT COUNT(*), MIN(due) FROM (
                 SELECT due_at AS due FROM tasks WHERE owner IS NULL AND due_at <= ?1
                 UNION ALL
                 SELECT lease_until FROM tasks WHERE owner IS NOT NULL AND lease_until < ?1)",
        )?
        .query_row([ms(now)], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut stmt = conn.prepare_cached(DEAD_BY_KIND)?;
    let dead_letters = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Gauges {
        delayed: delayed as u64,
        needing_attention: needing_attention as u64,
        due_tasks: due_tasks as u64,
        oldest_due: oldest.map(time).transpose()?,
        dead_letters,
    })
}
