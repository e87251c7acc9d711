//! Integration tests: the real server on port 0, a temp SQLite file, and
//! real HTTP step services.

mod auth;
mod bad_input;
mod callbacks;
mod concurrency;
mod deadlines;
mod email;
mod helpers;
mod idempotency;
mod inbox;
mod limits;
mod operations;
mod sse;
mod webhooks;
