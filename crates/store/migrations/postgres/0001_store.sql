-- herald's store on PostgreSQL, as the SQLite schema stands at its fourth
-- version (topics aside). Values are kept as SQLite keeps them (times in
-- milliseconds since the epoch, structured values as JSON text), so both
-- backends read a row back with the same code. Ids that lists order by are
-- compared byte by byte (COLLATE "C"), whatever the database's locale.

CREATE TABLE operations (
    id              TEXT COLLATE "C" PRIMARY KEY,
    workflow        TEXT NOT NULL,
    subject         TEXT,
    status          TEXT NOT NULL,
    concurrency_key TEXT,
    queued          BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at      BIGINT NOT NULL,
    state           TEXT NOT NULL
);
CREATE INDEX operations_subject ON operations (subject, id);
CREATE INDEX operations_workflow ON operations (workflow, id);
CREATE INDEX operations_key ON operations (workflow, concurrency_key) WHERE concurrency_key IS NOT NULL;

CREATE TABLE events (
    op_id TEXT NOT NULL,
    seq   BIGINT NOT NULL,
    body  TEXT NOT NULL,
    PRIMARY KEY (op_id, seq)
);

-- A task is free (owner NULL) or leased to one node until lease_until; a
-- node claims free due tasks and expired leases with FOR UPDATE SKIP LOCKED.
CREATE TABLE tasks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    op_id       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    owner       TEXT,
    lease_until BIGINT
);
CREATE INDEX tasks_free ON tasks (due_at) WHERE owner IS NULL;
CREATE INDEX tasks_leased ON tasks (lease_until) WHERE owner IS NOT NULL;
CREATE INDEX tasks_owner ON tasks (owner) WHERE owner IS NOT NULL;

-- The key is the arbiter between nodes: the second of two accepts under
-- one key fails here, and answers as a replay once it runs again.
CREATE TABLE idempotency (
    workflow     TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    op_id        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT idempotency_key PRIMARY KEY (workflow, key)
);

CREATE TABLE workflows (
    name    TEXT NOT NULL,
    version BIGINT NOT NULL,
    source  TEXT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- One notification per operation, rewritten in place; `version` is the
-- subject's change counter at its last change (the inbox stream's event id).
CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    op_id      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    read       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    notice     TEXT NOT NULL
);
CREATE INDEX notifications_by_subject ON notifications (subject, version);
CREATE INDEX notifications_unread ON notifications (subject) WHERE NOT read;

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

-- Dead letters of every kind: subscription events, held or failed steps and
-- compensations, webhooks and emails.
CREATE TABLE dead_letters (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         TEXT NOT NULL,
    subscription TEXT,
    topic        TEXT,
    workflow     TEXT,
    op_id        TEXT,
    step         TEXT,
    attempts     BIGINT NOT NULL,
    error        TEXT NOT NULL,
    errors       TEXT NOT NULL DEFAULT '[]',
    payload      TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX dead_letters_by_subscription ON dead_letters (subscription, id) WHERE subscription IS NOT NULL;
CREATE INDEX dead_letters_by_workflow ON dead_letters (workflow, id) WHERE workflow IS NOT NULL;
CREATE INDEX dead_letters_by_operation ON dead_letters (op_id, step) WHERE op_id IS NOT NULL;
