//! Integration tests: the real server on port 0, a temp SQLite file, and
//! real HTTP step services. `api_postgres` runs the same tests (but those
//! in `sqlite_only!`) on PostgreSQL.

/// The store every herald of these tests runs on.
const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

/// Tests that need herald on SQLite (each says why): here, as written.
macro_rules! sqlite_only {
    ($($test:item)*) => { $($test)* };
}

mod auth;
mod bad_input;
mod broker_helpers;
mod brokers;
mod browser;
mod busy;
mod callbacks;
mod choreography;
mod concurrency;
mod cross_site;
mod deadlines;
mod decisions;
mod disk_full;
mod edges;
mod email;
mod held;
mod helpers;
mod idempotency;
mod identity;
mod inbox;
mod languages;
mod limits;
mod matrix;
mod metrics;
mod misbehaving;
mod operations;
mod postgres;
mod push;
mod registry;
mod signing;
mod slow_receivers;
mod sse;
mod stream_caps;
mod tls;
mod topics;
mod traces;
mod webhooks;
