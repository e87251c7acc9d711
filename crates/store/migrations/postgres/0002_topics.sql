-- Topics on PostgreSQL, as SQLite keeps them (its fourth version): times
-- in milliseconds since the epoch, events and definitions as JSON text.
-- Several nodes share these tables; what keeps them from racing is in
-- `crates/store/src/postgres/topics.rs`.

-- Every event published, in publish order. A row stays while a
-- subscription still owes it to a consumer.
CREATE TABLE topic_events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    body         TEXT NOT NULL
);

-- Recent (topic, source, id) triples: a re-publish within the window, on
-- any node, is recognised and not stored again.
CREATE TABLE event_ids (
    topic      TEXT NOT NULL,
    source     TEXT NOT NULL,
    id         TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (topic, source, id)
);
CREATE INDEX event_ids_expiry ON event_ids (expires_at);

-- The truth about subscriptions: every node reads them from here.
CREATE TABLE subscriptions (
    name       TEXT PRIMARY KEY,
    topic      TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_by_topic ON subscriptions (topic);

-- What each subscription still owes: one row per (subscription, event)
-- until it is acknowledged or dead-lettered. `ready` marks the first row
-- of its ordering key (keyless rows are always ready); `due_at` is when it
-- may go out: now, after a backoff, or when its lease ends.
CREATE TABLE deliveries (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sub      TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    key      TEXT,
    ready    BOOLEAN NOT NULL,
    due_at   BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease    BIGINT,
    errors   TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX deliveries_due ON deliveries (sub, due_at) WHERE ready;
CREATE INDEX deliveries_key ON deliveries (sub, key, id) WHERE key IS NOT NULL;
CREATE INDEX deliveries_seq ON deliveries (seq);
