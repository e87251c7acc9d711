//! The API tests of `tests/api`, each herald on a PostgreSQL schema of its
//! own (see `herald_store::contract::postgres`: without a server they fail,
//! saying what to start). The test files are `api`'s; only the store
//! differs.

/// The store every herald of these tests runs on.
const BACKEND: helpers::Backend = helpers::Backend::Postgres;

/// Tests that need herald on SQLite (each says why): left out here.
macro_rules! sqlite_only {
    ($($test:item)*) => {};
}

#[path = "../api/auth.rs"]
mod auth;
#[path = "../api/bad_input.rs"]
mod bad_input;
#[path = "../api/broker_helpers.rs"]
mod broker_helpers;
#[path = "../api/browser.rs"]
mod browser;
#[path = "../api/busy.rs"]
mod busy;
#[path = "../api/callbacks.rs"]
mod callbacks;
#[path = "../api/choreography.rs"]
mod choreography;
#[path = "../api/concurrency.rs"]
mod concurrency;
#[path = "../api/cross_site.rs"]
mod cross_site;
#[path = "../api/deadlines.rs"]
mod deadlines;
#[path = "../api/email.rs"]
mod email;
#[path = "../api/held.rs"]
mod held;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/idempotency.rs"]
mod idempotency;
#[path = "../api/identity.rs"]
mod identity;
#[path = "../api/inbox.rs"]
mod inbox;
#[path = "../api/limits.rs"]
mod limits;
#[path = "../api/matrix.rs"]
mod matrix;
#[path = "../api/metrics.rs"]
mod metrics;
#[path = "../api/operations.rs"]
mod operations;
#[path = "../api/push.rs"]
mod push;
#[path = "../api/registry.rs"]
mod registry;
#[path = "../api/signing.rs"]
mod signing;
#[path = "../api/sse.rs"]
mod sse;
#[path = "../api/stream_caps.rs"]
mod stream_caps;
#[path = "../api/topics.rs"]
mod topics;
#[path = "../api/traces.rs"]
mod traces;
#[path = "../api/webhooks.rs"]
mod webhooks;

// Not `postgres`: its tests make schemas and nodes of their own, and run in
// `api`.
