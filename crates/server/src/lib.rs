//! herald's server: the engine that runs operations, and the HTTP API that
//! starts them and shows them to their users.
//!
//! # Layout
//!
//! Bottom to top; no module uses one above it.
//!
//! - [`config`] — settings from defaults, `herald.toml`, `HERALD_…` env.
//! - `broker` — where topics live: the store, or a NATS JetStream server.
//! - [`streams`] — how many event streams each end user holds open.
//! - [`state`] — `AppState`, what every handler reads.
//! - [`api`] — the handlers, one file per resource, and the OpenAPI document.
//! - [`router`] — the routes and the layers over them.
//! - `serve` — the listener loop: HTTP/1.1 through hyper, timeline streams
//!   straight to the socket, and the graceful drain.
//! - [`app`] — `Application::build(config)` → `port()`, `run_until_stopped(shutdown)`.

pub mod api;
pub mod app;
mod broker;
pub mod config;
pub mod router;
mod serve;
pub mod state;
pub mod streams;

// The floors below, under the names the modules here use.
use herald_engine::{self as engine, dispatch, subscriptions};
use herald_gateway::{self as gateway, registry};
use herald_http::{auth, guard};

pub use app::Application;
pub use config::Config;
/// Workflow files as herald reads and checks them (`herald check`, tests).
pub use herald_engine::workflows;
