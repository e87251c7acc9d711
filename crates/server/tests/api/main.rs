//! Integration tests: the real server on port 0, a temp SQLite file, and
//! real HTTP step services.

mod auth;
mod bad_input;
mod broker_helpers;
mod browser;
mod busy;
mod callbacks;
mod choreography;
mod concurrency;
mod cross_site;
mod deadlines;
mod email;
mod held;
mod helpers;
mod idempotency;
mod identity;
mod inbox;
mod limits;
mod matrix;
mod operations;
mod postgres;
mod push;
mod registry;
mod signing;
mod sse;
mod stream_caps;
mod topics;
mod webhooks;
