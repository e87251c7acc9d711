//! The SQLite schema and its migrations, applied in order by `user_version`.

use rusqlite::Connection;

/// Each entry moves the schema one version on; never edit a released one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE operations (
    id              TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    subject         TEXT,
    status          TEXT NOT NULL,
    concurrency_key TEXT,
    queued          INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    state           TEXT NOT NULL
);
CREATE INDEX operations_subject ON operations(subject, id);
CREATE INDEX operations_workflow ON operations(workflow, id);
CREATE INDEX operations_key ON operations(workflow, concurrency_key) WHERE concurrency_key IS NOT NULL;

CREATE TABLE events (
    op_id TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    body  TEXT NOT NULL,
    PRIMARY KEY (op_id, seq)
) WITHOUT ROWID;

CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    op_id       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    owner       TEXT,
    lease_until INTEGER
);
CREATE INDEX tasks_free ON tasks(due_at) WHERE owner IS NULL;
CREATE INDEX tasks_leased ON tasks(lease_until) WHERE owner IS NOT NULL;

CREATE TABLE idempotency (
    workflow     TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    op_id        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workflow, key)
) WITHOUT ROWID;

CREATE TABLE workflows (
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    source  TEXT NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- One notification per operation, rewritten in place; `version` is the
-- subject's change counter at its last change (the inbox stream's event id).
CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    op_id      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    notice     TEXT NOT NULL
);
CREATE INDEX notifications_by_subject ON notifications(subject, version);
CREATE INDEX notifications_unread ON notifications(subject) WHERE read = 0;

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- Work that ran out of attempts, kept with its last error for a person.
CREATE TABLE dead_letters (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    op_id      TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    error      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#,
    r#"
-- Topics: every event published, in publish order. A row stays while a
-- subscription still owes it to a consumer.
CREATE TABLE topic_events (
    seq          INTEGER PRIMARY KEY,
    topic        TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    body         TEXT NOT NULL
);

-- Recent (topic, source, id) triples: a re-publish within the window is
-- recognised and not stored again.
CREATE TABLE event_ids (
    topic      TEXT NOT NULL,
    source     TEXT NOT NULL,
    id         TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (topic, source, id)
) WITHOUT ROWID;
CREATE INDEX event_ids_expiry ON event_ids(expires_at);

CREATE TABLE subscriptions (
    name       TEXT PRIMARY KEY,
    topic      TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- What each subscription still owes: one row per (subscription, event)
-- until it is acknowledged or dead-lettered. `ready` marks the first row
-- of its ordering key (keyless rows are always ready); `due_at` is when it
-- may go out: now, after a backoff, or when its lease ends.
CREATE TABLE deliveries (
    id       INTEGER PRIMARY KEY,
    sub      TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    key      TEXT,
    ready    INTEGER NOT NULL,
    due_at   INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease    INTEGER,
    errors   TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX deliveries_due ON deliveries(sub, due_at) WHERE ready = 1;
CREATE INDEX deliveries_key ON deliveries(sub, key, id) WHERE key IS NOT NULL;
CREATE INDEX deliveries_seq ON deliveries(seq);

-- Dead letters of every kind: subscription events, held or failed steps and
-- compensations, webhooks and emails.
CREATE TABLE dead_letters_v2 (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    subscription TEXT,
    topic        TEXT,
    workflow     TEXT,
    op_id        TEXT,
    step         TEXT,
    attempts     INTEGER NOT NULL,
    error        TEXT NOT NULL,
    errors       TEXT NOT NULL DEFAULT '[]',
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
INSERT INTO dead_letters_v2 (id, kind, workflow, op_id, attempts, error, payload, created_at)
    SELECT d.id, d.kind, (SELECT workflow FROM operations o WHERE o.id = d.op_id), d.op_id, d.attempts, d.error,
           d.payload, d.created_at
    FROM dead_letters d;
DROP TABLE dead_letters;
ALTER TABLE dead_letters_v2 RENAME TO dead_letters;
CREATE INDEX dead_letters_by_subscription ON dead_letters(subscription, id) WHERE subscription IS NOT NULL;
CREATE INDEX dead_letters_by_workflow ON dead_letters(workflow, id) WHERE workflow IS NOT NULL;
CREATE INDEX dead_letters_by_operation ON dead_letters(op_id, step) WHERE op_id IS NOT NULL;
"#,
    r#"
-- A fencing token on every lease: each claim of a task moves its epoch on,
-- and every write to a held task names the epoch it was claimed at.
ALTER TABLE tasks ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Service instances registered at run time, until their TTL passes
-- without a heartbeat (times in ms since the epoch, metadata as JSON).
CREATE TABLE instances (
    service       TEXT NOT NULL,
    id            TEXT NOT NULL,
    url           TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (service, id)
) WITHOUT ROWID;
CREATE INDEX instances_expiry ON instances(expires_at);
"#,
    r#"
-- What a broker on a server of its own (RabbitMQ) keeps here, under its
-- prefix (`scope`): the last `seq` it handed out, the publishes its server
-- confirmed (recognised as duplicates until `expires_at`), and its
-- subscription definitions; a deleted one keeps its name (`spec` NULL).
CREATE TABLE ledger_seqs (
    scope TEXT PRIMARY KEY,
    last  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE ledger_publishes (
    scope      TEXT NOT NULL,
    topic      TEXT NOT NULL,
    source     TEXT NOT NULL,
    id         TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, topic, source, id)
) WITHOUT ROWID;
CREATE INDEX ledger_publishes_expiry ON ledger_publishes(scope, expires_at);

CREATE TABLE ledger_definitions (
    scope TEXT NOT NULL,
    name  TEXT NOT NULL,
    spec  TEXT,
    PRIMARY KEY (scope, name)
) WITHOUT ROWID;
"#,
    r#"
-- Whether an operation is late (1) or needs a person (2), beside its state
-- (`codec::flags`), so that /metrics counts them over an index.
ALTER TABLE operations ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
UPDATE operations SET flags =
      (CASE WHEN json_extract(state, '$.delayed') AND status IN ('accepted', 'running', 'compensating')
            THEN 1 ELSE 0 END)
    | (CASE WHEN json_extract(state, '$.needs_attention') THEN 2 ELSE 0 END)
    WHERE json_extract(state, '$.delayed') OR json_extract(state, '$.needs_attention');
CREATE INDEX operations_flagged ON operations(flags) WHERE flags <> 0;
"#,
];

/// herald's mark on its database file (`PRAGMA application_id`, "hrld"):
/// how it knows a file it may change from one that is someone else's.
const APPLICATION_ID: i64 = 0x6872_6c64;

/// Whether `conn`'s file is herald's to open and migrate, read before
/// anything is written to it: a new file is marked, a herald file from
/// before the mark (it has herald's tables and migrations) too; anything
/// else — another application's database, or one a newer herald wrote —
/// is refused, untouched.
pub fn claim(conn: &Connection, path: &std::path::Path) -> crate::Result<()> {
    let pragma = |name: &str| conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0));
    let not_ours = |why: &str| {
        crate::Error::NotOurs(format!(
            "{} {why}; herald leaves it as it is. Point herald at another data directory, or move the file away",
            path.display()
        ))
    };
    let app = pragma("application_id").map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => not_ours("is not a SQLite database, or is damaged"),
        _ => e.into(),
    })?;
    let version = pragma("user_version")?;
    let objects: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    let ours_before_the_mark = app == 0 && version > 0 && {
        let has = |t: &str| {
            conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [t], |r| {
                r.get::<_, i64>(0)
            })
        };
        has("operations")? == 1 && has("meta")? == 1
    };
    match (app, objects) {
        (APPLICATION_ID, _) | (0, 0) => {}
        (0, _) if ours_before_the_mark => {}
        (0, _) => return Err(not_ours("is a database herald did not make (it holds other tables)")),
        (other, _) => {
            return Err(not_ours(&format!("belongs to another application (its application_id is {other:#x})")));
        }
    }
    if version > MIGRATIONS.len() as i64 {
        let known = MIGRATIONS.len();
        return Err(not_ours(&format!(
            "was written by a newer herald (schema {version}; this one knows up to {known})"
        )));
    }
    if app != APPLICATION_ID {
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    Ok(())
}

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Durability first: WAL with a full fsync at every commit.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Erased personal data must not linger in freed pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Each job of a group commit runs in its own savepoint; its
    // sub-journal stays in memory instead of a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}
