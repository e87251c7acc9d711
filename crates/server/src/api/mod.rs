//! The HTTP surface (DESIGN.md "HTTP surface (v1)").
//!
//! - [`operations`] — start, get, list, cancel.
//! - [`events`] — a timeline as Server-Sent Events; `follow` — following any numbered sequence live.
//! - `inbox` — the end user's notifications, and their live stream.
//! - [`steps`] — callbacks completing steps that answered 202.
//! - [`workflows`] — the definitions this server runs.
//! - `topics` — publishing; `subscriptions` — defining and consuming them.
//! - `dead_letters` — what ran out of attempts, and redriving it.
//! - `services` — the service registry: registration, heartbeats, health.
//! - `gateway` — `/gw/` requests handed to the gateway, and its `async`
//!   routes started as operations.
//! - `health` — `/healthz` and `/readyz`; `metrics` — `/metrics`; `ui` —
//!   herald's clock, and the lag pages report seeing.
//! - What handlers share: `caller` — who is calling, as an extractor;
//!   `body` — a POST or PUT's headers and size-limited body (`Posted`),
//!   and POST/PUT taken as JSON only; `action` — `{name}:{verb}` actions;
//!   `query` — query parameters; `trace` — the caller's trace context; `views` — what answers look like. Errors
//!   are `herald_http::problem::ApiError`.
//! - [`hardening`] — the headers every answer carries for browsers; `page` —
//!   the demo page and its files.
//! - [`openapi`] — the OpenAPI document, generated from the handlers.

pub(crate) mod action;
pub(crate) mod body;
pub(crate) mod caller;
pub(crate) mod dead_letters;
pub mod events;
pub(crate) mod follow;
/// For fuzz/ only (its targets reach the publish API's reading through it).
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod hardening;
pub(crate) mod health;
pub(crate) mod inbox;
pub(crate) mod metrics;
pub mod openapi;
pub(crate) mod operations;
pub(crate) mod page;

pub(crate) mod query;
pub(crate) mod services;
pub(crate) mod steps;
pub(crate) mod subscriptions;
pub(crate) mod topics;
pub(crate) mod trace;
pub(crate) mod ui;
pub(crate) mod views;
pub(crate) mod workflows;

pub(crate) use operations::parse_id;
