//! The read side: a small pool of read-only connections. WAL lets them read
//! a consistent snapshot while the writer commits.

use std::{path::PathBuf, sync::Mutex};

use herald_core::{Event, Operation, OperationId, notify::Notification};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter, types::Value};

pub(super) use crate::codec::readable;
use crate::{
    Error, InboxPage, ListQuery, Result,
    codec::{self, NOTIFICATION_COLUMNS, NotificationRow},
    filters::{self, Arg, Filters, MAX_PAGE},
};

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
    state.map(|s| codec::operation(id, &s)).transpose()
}

pub fn events(conn: &Connection, id: &OperationId, after: u64, limit: usize) -> Result<Vec<Event>> {
    let mut stmt =
        conn.prepare_cached("SELECT body FROM events WHERE op_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
    let rows = stmt.query_map(rusqlite::params![&*id.text(), after as i64, limit as i64], |r| r.get::<_, String>(0))?;
    readable(rows.map(|body| codec::event(id, &body?)))
}

fn notification_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NotificationRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

/// A notification by id, within `subject`'s inbox when one is given.
pub fn notification(conn: &Connection, subject: Option<&str>, id: &str) -> Result<Option<Notification>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?1 AND (?2 IS NULL OR subject = ?2)"
        ))?
        .query_row(rusqlite::params![id, subject], notification_row);
    match row {
        Ok(r) => codec::notification(r).map(Some),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn notifications(conn: &Connection, subject: &str, page: InboxPage) -> Result<Vec<Notification>> {
    let (sql, version, limit) = match page {
        InboxPage::Before { version, limit } => (
            format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE subject = ?1 AND version < ?2 ORDER BY version DESC LIMIT ?3"
            ),
            version.map_or(i64::MAX, |v| v as i64),
            limit,
        ),
        InboxPage::After { version, limit } => (
            format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE subject = ?1 AND version > ?2 ORDER BY version LIMIT ?3"
            ),
            version as i64,
            limit,
        ),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params![subject, version, limit.min(MAX_PAGE) as i64], notification_row)?;
    readable(rows.map(|r| codec::notification(r?)))
}

pub fn list(conn: &Connection, q: &ListQuery) -> Result<Vec<Operation>> {
    let (clauses, args) = where_clause(filters::operations(q));
    let sql = format!("SELECT id, state FROM operations{clauses} ORDER BY id DESC LIMIT {}", filters::page(q.limit));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    readable(rows.map(|row| {
        let (id, state) = row?;
        codec::operation(&id, &state)
    }))
}

/// ` WHERE` and the filters in SQLite's numbered placeholders, and their
/// values; empty if there are none.
pub(super) fn where_clause(filters: Filters) -> (String, Vec<Value>) {
    let mut sql = String::new();
    let mut args = Vec::with_capacity(filters.len());
    for (i, (test, arg)) in filters.into_iter().enumerate() {
        sql.push_str(&format!("{} {test} ?{}", if i == 0 { " WHERE" } else { " AND" }, i + 1));
        args.push(match arg {
            Arg::Text(t) => Value::Text(t),
            Arg::Int(n) => Value::Integer(n),
        });
    }
    (sql, args)
}
