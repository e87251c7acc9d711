//! How the SQL backends keep values and read them back, written once:
//! times as milliseconds since the epoch, structured values as JSON text,
//! and each stored row turned into the store's types. What cannot be read
//! back is [`Error::Corrupt`]; a list skips it ([`readable`]).

use chrono::{TimeZone, Utc};
use herald_core::{Event, Operation, OperationId, Time, notify::Notification};

use crate::{DeadLetter, DeadLetterKind, Error, RegisteredInstance, Result, Task, TaskId};

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

/// An operation's `flags` column: 1 when it is not finished and past its
/// expected time, 2 when it needs a person; kept beside its state so that
/// `/metrics` counts them over an index.
pub fn flags(op: &Operation) -> i64 {
    i64::from(op.delayed && !op.status.is_final()) | i64::from(op.needs_attention) << 1
}

/// The gauges' counting of flagged operations, the same in both dialects.
pub const FLAGGED: &str = "SELECT COALESCE(SUM(flags & 1), 0), COALESCE(SUM((flags >> 1) & 1), 0) \
                           FROM operations WHERE flags <> 0";

/// Dead letters by kind, the same in both dialects.
pub const DEAD_BY_KIND: &str = "SELECT kind, COUNT(*) FROM dead_letters GROUP BY kind ORDER BY kind";

/// An operation's stored state.
pub fn operation(id: &dyn std::fmt::Display, state: &str) -> Result<Operation> {
    serde_json::from_str(state).map_err(|e| Error::Corrupt(format!("operation {id}: {e}")))
}

/// One event of `op`'s timeline.
pub fn event(op: &OperationId, body: &str) -> Result<Event> {
    serde_json::from_str(body).map_err(|e| Error::Corrupt(format!("an event of {op}: {e}")))
}

/// A task as a claim hands it out: held by this node.
pub fn claimed_task(id: TaskId, op: &str, kind: &str, due: i64) -> Result<Task> {
    let corrupt = |e: String| Error::Corrupt(format!("task {id}: {e}"));
    Ok(Task {
        id,
        op: op.parse().map_err(corrupt)?,
        kind: serde_json::from_str(kind).map_err(|e| corrupt(e.to_string()))?,
        due: time(due).map_err(|e| corrupt(e.to_string()))?,
        owned: true,
    })
}

/// The columns of a notification, in [`NotificationRow`]'s order.
pub const NOTIFICATION_COLUMNS: &str = "id, op_id, read, version, created_at, updated_at, notice";

/// A notification's row: id, operation, read, version, created, updated, notice.
pub type NotificationRow = (String, String, bool, i64, i64, i64, String);

pub fn notification(row: NotificationRow) -> Result<Notification> {
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

/// The columns of a dead letter, in [`DeadLetterRow`]'s order.
pub const DEAD_LETTER_COLUMNS: &str =
    "id, kind, subscription, topic, workflow, op_id, step, attempts, error, errors, payload, created_at";

/// A dead letter's row: id, kind, subscription, topic, workflow,
/// operation, step, attempts, error, errors, payload, created.
pub type DeadLetterRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    String,
    String,
    String,
    i64,
);

pub fn dead_letter(row: DeadLetterRow) -> Result<DeadLetter> {
    let (id, kind, subscription, topic, workflow, op, step, attempts, error, errors, payload, created) = row;
    let corrupt = |e: String| Error::Corrupt(format!("dead letter {id}: {e}"));
    Ok(DeadLetter {
        id,
        kind: DeadLetterKind::parse(&kind).ok_or_else(|| corrupt(format!("kind `{kind}`")))?,
        subscription,
        topic,
        workflow,
        operation_id: op.map(|o| o.parse()).transpose().map_err(corrupt)?,
        step,
        attempts: u32::try_from(attempts).map_err(|_| corrupt(format!("{attempts} attempts")))?,
        error,
        errors: serde_json::from_str(&errors).map_err(|e| corrupt(e.to_string()))?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt(e.to_string()))?,
        created_at: time(created)?,
    })
}

/// The columns of a registered instance, in [`InstanceRow`]'s order.
pub const INSTANCE_COLUMNS: &str = "service, id, url, metadata, expires_at, registered_at";

/// A registered instance's row: service, id, url, metadata, expiry, registration.
pub type InstanceRow = (String, String, String, String, i64, i64);

pub fn instance(row: InstanceRow) -> Result<RegisteredInstance> {
    let (service, id, url, metadata, expires, registered) = row;
    let corrupt = |e: String| Error::Corrupt(format!("instance {id} of {service}: {e}"));
    Ok(RegisteredInstance {
        metadata: serde_json::from_str(&metadata).map_err(|e| corrupt(e.to_string()))?,
        expires_at: time(expires)?,
        registered_at: time(registered)?,
        service,
        id,
        url,
    })
}

/// The rows that can be read; each that cannot is reported and skipped,
/// so one broken row never breaks a whole list for everyone.
pub fn readable<T>(rows: impl Iterator<Item = Result<T>>) -> Result<Vec<T>> {
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

/// `SELECT` of a delivery with its event, in [`DeliveryRawRow`]'s order,
/// for `concat!` with each backend's `WHERE` (a literal, so SQLite's
/// statement cache and sqlx take it as it is).
macro_rules! select_delivery {
    () => {
        "SELECT d.id, d.seq, d.key, d.attempts, d.lease, d.errors, e.body, e.published_at
         FROM deliveries d JOIN topic_events e ON e.seq = d.seq "
    };
}
pub(crate) use select_delivery;

/// A delivery's row: id, seq, key, attempts, lease, errors, body, published.
pub type DeliveryRawRow = (i64, i64, Option<String>, i64, Option<i64>, String, String, i64);

pub fn delivery(row: DeliveryRawRow) -> Result<crate::tx::DeliveryRow> {
    let (id, seq, key, attempts, lease, errors, body, published_at) = row;
    let corrupt = |e: String| Error::Corrupt(format!("delivery {id}: {e}"));
    Ok(crate::tx::DeliveryRow {
        id,
        seq,
        key,
        attempts: u32::try_from(attempts).map_err(|_| corrupt(format!("{attempts} attempts")))?,
        leased: lease.is_some(),
        errors: serde_json::from_str(&errors).map_err(|e| corrupt(e.to_string()))?,
        body,
        published_at: time(published_at)?,
    })
}
