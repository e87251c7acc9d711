//! The read side, on any connection (the pool's, or a write transaction's):
//! operations, timelines, lists, the inbox and dead letters. Rows become
//! the store's types through [`crate::codec`], as SQLite's do.

use herald_core::{Event, Operation, OperationId, notify::Notification};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::{
    DeadLetter, DeadLetterFilter, Error, InboxPage, ListQuery, Result,
    codec::{self, DEAD_LETTER_COLUMNS, DeadLetterRow, NOTIFICATION_COLUMNS, readable},
    filters::{self, Arg, Filters, MAX_PAGE},
};

/// One operation; `for_update` locks its row to the end of the transaction.
pub async fn operation(c: &mut PgConnection, id: &OperationId, for_update: bool) -> Result<Option<Operation>> {
    let sql = if for_update {
        "SELECT state FROM operations WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT state FROM operations WHERE id = $1"
    };
    let state: Option<String> = sqlx::query_scalar(sql).bind(&*id.text()).fetch_optional(c).await?;
    state.map(|s| codec::operation(id, &s)).transpose()
}

pub async fn events(c: &mut PgConnection, id: &OperationId, after: u64, limit: usize) -> Result<Vec<Event>> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM events WHERE op_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
            .bind(&*id.text())
            .bind(after as i64)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(c)
            .await?;
    readable(bodies.iter().map(|b| codec::event(id, b)))
}

/// `base` with ` WHERE` and the filters in PostgreSQL's placeholders.
fn filtered(base: &str, filters: Filters) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(base);
    for (i, (test, arg)) in filters.into_iter().enumerate() {
        q.push(if i == 0 { " WHERE " } else { " AND " }).push(test).push(" ");
        match arg {
            Arg::Text(t) => q.push_bind(t),
            Arg::Int(n) => q.push_bind(n),
        };
    }
    q
}

pub async fn list(c: &mut PgConnection, query: &ListQuery) -> Result<Vec<Operation>> {
    let mut q = filtered("SELECT id, state FROM operations", filters::operations(query));
    q.push(format!(" ORDER BY id DESC LIMIT {}", filters::page(query.limit)));
    let rows: Vec<(String, String)> = q.build_query_as().fetch_all(c).await?;
    readable(rows.iter().map(|(id, state)| codec::operation(id, state)))
}

/// A notification by id, within `subject`'s inbox when one is given.
pub async fn notification(c: &mut PgConnection, subject: Option<&str>, id: &str) -> Result<Option<Notification>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1 AND ($2::TEXT IS NULL OR subject = $2)"
    ));
    let row = sqlx::query_as(sql).bind(id).bind(subject).fetch_optional(c).await?;
    row.map(codec::notification).transpose()
}

pub async fn notifications(c: &mut PgConnection, subject: &str, page: InboxPage) -> Result<Vec<Notification>> {
    let (order, version, limit) = match page {
        InboxPage::Before { version, limit } => {
            ("version < $2 ORDER BY version DESC", version.map_or(i64::MAX, |v| v as i64), limit)
        }
        InboxPage::After { version, limit } => ("version > $2 ORDER BY version", version as i64, limit),
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE subject = $1 AND {order} LIMIT $3"
    ));
    let rows: Vec<codec::NotificationRow> =
        sqlx::query_as(sql).bind(subject).bind(version).bind(limit.min(MAX_PAGE) as i64).fetch_all(c).await?;
    readable(rows.into_iter().map(codec::notification))
}

pub async fn unread(c: &mut PgConnection, subject: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE subject = $1 AND NOT read")
        .bind(subject)
        .fetch_one(c)
        .await?;
    Ok(n as u64)
}

pub async fn dead_letter(c: &mut PgConnection, id: i64) -> Result<Option<DeadLetter>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = $1"));
    let row = sqlx::query_as(sql).bind(id).fetch_optional(c).await?;
    row.map(codec::dead_letter).transpose()
}

/// Newest first.
pub async fn dead_letters(c: &mut PgConnection, f: &DeadLetterFilter) -> Result<Vec<DeadLetter>> {
    let base = format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters");
    let mut q = filtered(&base, filters::dead_letters(f));
    q.push(format!(" ORDER BY id DESC LIMIT {}", filters::page(f.limit)));
    let rows: Vec<DeadLetterRow> = q.build_query_as().fetch_all(c).await?;
    rows.into_iter().map(codec::dead_letter).collect()
}

pub async fn workflows(c: &mut PgConnection) -> Result<Vec<(String, u32, String)>> {
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT name, version, source FROM workflows ORDER BY name, version").fetch_all(c).await?;
    rows.into_iter()
        .map(|(name, version, source)| {
            let v = u32::try_from(version).map_err(|_| Error::Corrupt(format!("workflow {name} version {version}")))?;
            Ok((name, v, source))
        })
        .collect()
}
