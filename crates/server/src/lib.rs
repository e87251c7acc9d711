//! herald's server: the engine that runs operations, and the HTTP API that
//! starts them and shows them to their users.
//!
//! # Layout
//!
//! - [`app`] — `Application::build(config)` → `port()`, `run_until_stopped(shutdown)`.
//! - [`config`] — settings from defaults, `herald.toml`, `HERALD_…` env.
//! - [`workflows`] — loading and checking workflow files.
//! - [`subscriptions`] — the subscriptions herald starts with.
//! - [`engine`] — runs due tasks and applies their results.
//! - [`dispatch`] — delivers push subscriptions' events (and `await` steps').
//! - [`hub`] — live fan-out of timeline events to watchers.
//! - [`api`] — the HTTP surface, its errors and its OpenAPI document.
//! - `serve` — the listener loop: HTTP/1.1 through hyper, timeline streams
//!   straight to the socket, and the graceful drain.

pub mod api;
pub mod app;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod hub;
mod serve;
pub mod subscriptions;
pub mod workflows;

// The floors below, under the names the modules here use.
use herald_gateway::{self as gateway, registry};
use herald_http::{auth, guard};

pub use app::Application;
pub use config::Config;
