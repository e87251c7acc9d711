-- Service instances registered at run time, shared by every node on the
-- database: each node routes to them until their TTL passes without a
-- heartbeat. Times in milliseconds since the epoch, metadata as JSON
-- text, as the rest of the schema keeps them.

CREATE TABLE instances (
    service       TEXT NOT NULL,
    id            TEXT NOT NULL,
    url           TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    registered_at BIGINT NOT NULL,
    PRIMARY KEY (service, id)
);
CREATE INDEX instances_expiry ON instances (expires_at);
