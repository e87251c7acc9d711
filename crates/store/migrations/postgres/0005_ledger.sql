-- What a broker on a server of its own (RabbitMQ) keeps here, under its
-- prefix (`scope`), shared by every node: the last `seq` it handed out
-- (a claim takes the row's lock, so seqs grow in claim order), the
-- publishes its server confirmed (recognised as duplicates until
-- `expires_at`, ms since the epoch), and its subscription definitions; a
-- deleted one keeps its name (`spec` NULL), so removing the prefix finds
-- every subscription's queues.

CREATE TABLE ledger_seqs (
    scope TEXT PRIMARY KEY,
    last  BIGINT NOT NULL
);

CREATE TABLE ledger_publishes (
    scope      TEXT NOT NULL,
    topic      TEXT NOT NULL,
    source     TEXT NOT NULL,
    id         TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, topic, source, id)
);
CREATE INDEX ledger_publishes_expiry ON ledger_publishes (scope, expires_at);

CREATE TABLE ledger_definitions (
    scope TEXT NOT NULL,
    name  TEXT NOT NULL,
    spec  TEXT,
    PRIMARY KEY (scope, name)
);
