//! herald's server: the engine that runs operations, and the HTTP API that
//! starts them and shows them to their users.
//!
//! # Layout
//!
//! - [`app`] — `Application::build(config)` → `port()`, `run_until_stopped(shutdown)`.
//! - [`config`] — settings from defaults, `herald.toml`, `HERALD_…` env.
//! - [`api`] — the HTTP surface, its errors and its OpenAPI document.
//! - `serve` — the listener loop: HTTP/1.1 through hyper, timeline streams
//!   straight to the socket, and the graceful drain.

pub mod api;
pub mod app;
pub mod config;
mod serve;

// The floors below, under the names the modules here use.
use herald_engine::{self as engine, dispatch, subscriptions};
use herald_gateway::{self as gateway, registry};
use herald_http::{auth, guard};

pub use app::Application;
pub use config::Config;
/// Workflow files as herald reads and checks them (`herald check`, tests).
pub use herald_engine::workflows;
