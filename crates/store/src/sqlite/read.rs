//! The read side: a small pool of read-only connections. WAL lets them read
//! a consistent snapshot while the writer commits.

use std::{path::PathBuf, sync::Mutex};

use herald_core::{Event, Operation, OperationId, notify::Notification};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter, types::Value};

use super::codec::time;
use crate::{Error, InboxPage, ListQuery, Result};

/// Reads at once. Each connection has its own page cache, and a read is
/// CPU work: more than a few buys memory, not speed.
const READERS: usize = 4;

pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: tokio::sync::Semaphore,
}

impl Readers {
    pub fn new(path: PathBuf) -> Self {
        Readers { path, idle: Mutex::new(Vec::new()), permits: tokio::sync::Semaphore::new(READERS) }
    }

    /// Runs `f` on a read connection, off the async threads.
    pub async fn with<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(|_| Error::Closed)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match this.idle.lock().expect("reader pool").pop() {
                Some(c) => c,
                None => open(&this.path)?,
            };
            let out = f(&conn);
            this.idle.lock().expect("reader pool").push(conn);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("a storage thread failed: {e}")))?
    }
}

fn open(path: &PathBuf) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// One operation, as stored: for readers and inside the writer's transaction.
pub fn get(conn: &Connection, id: &OperationId) -> Result<Option<Operation>> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM operations WHERE id = ?1")?
        .query_row([&*id.text()], |r| r.get(0))
        .optional()?;
    state.map(|s| serde_json::from_str(&s).map_err(|e| Error::Corrupt(format!("operation {id}: {e}")))).transpose()
}

pub fn events(conn: &Connection, id: &OperationId, after: u64, limit: usize) -> Result<Vec<Event>> {
    let mut stmt =
        conn.prepare_cached("SELECT body FROM events WHERE op_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
    let rows = stmt.query_map(rusqlite::params![&*id.text(), after as i64, limit as i64], |r| r.get::<_, String>(0))?;
    readable(
        rows.map(|body| serde_json::from_str(&body?).map_err(|e| Error::Corrupt(format!("an event of {id}: {e}")))),
    )
}

/// The rows that can be read; each that cannot is reported and skipped,
/// so one broken row never breaks a whole list for everyone.
pub(super) fn readable<T>(rows: impl Iterator<Item = Result<T>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in rows {
        match row {
            Ok(v) => out.push(v),
            Err(Error::Corrupt(e)) => tracing::error!(error = %e, "a stored row cannot be read; it is left out"),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

const NOTIFICATION: &str = "SELECT id, op_id, read, version, created_at, updated_at, notice FROM notifications";

fn notification_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, bool, i64, i64, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn to_notification(row: (String, String, bool, i64, i64, i64, String)) -> Result<Notification> {
    let (id, op, read, version, created, updated, notice) = row;
    Ok(Notification {
        id,
        operation_id: op.parse().map_err(Error::Corrupt)?,
        notice: serde_json::from_str(&notice).map_err(|e| Error::Corrupt(e.to_string()))?,
        read,
        version: version as u64,
        created_at: time(created)?,
        updated_at: time(updated)?,
    })
}

/// A notification by id, within `subject`'s inbox when one is given.
pub fn notification(conn: &Connection, subject: Option<&str>, id: &str) -> Result<Option<Notification>> {
    let row = conn
        .prepare_cached(&format!("{NOTIFICATION} WHERE id = ?1 AND (?2 IS NULL OR subject = ?2)"))?
        .query_row(rusqlite::params![id, subject], notification_row);
    match row {
        Ok(r) => to_notification(r).map(Some),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn notifications(conn: &Connection, subject: &str, page: InboxPage) -> Result<Vec<Notification>> {
    let (sql, version, limit) = match page {
        InboxPage::Before { version, limit } => (
            format!("{NOTIFICATION} WHERE subject = ?1 AND version < ?2 ORDER BY version DESC LIMIT ?3"),
            version.map_or(i64::MAX, |v| v as i64),
            limit,
        ),
        InboxPage::After { version, limit } => (
            format!("{NOTIFICATION} WHERE subject = ?1 AND version > ?2 ORDER BY version LIMIT ?3"),
            version as i64,
            limit,
        ),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params![subject, version, limit.min(1000) as i64], notification_row)?;
    readable(rows.map(|r| to_notification(r?)))
}

pub fn list(conn: &Connection, q: &ListQuery) -> Result<Vec<Operation>> {
    let mut sql = String::from("SELECT id, state FROM operations WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut filter = |clause: &str, v: Value| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(s) = &q.subject {
        filter("subject =", Value::Text(s.clone()));
    }
    if let Some(w) = &q.workflow {
        filter("workflow =", Value::Text(w.clone()));
    }
    if let Some(s) = q.status {
        filter("status =", Value::Text(s.as_str().into()));
    }
    if let Some(b) = &q.before {
        filter("id <", Value::Text(b.to_string()));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", q.limit.clamp(1, 1000)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    readable(rows.map(|row| {
        let (id, state) = row?;
        serde_json::from_str(&state).map_err(|e| Error::Corrupt(format!("operation {id}: {e}")))
    }))
}
