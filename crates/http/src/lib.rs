//! herald's HTTP ground floor, shared by the API and the gateway.
//!
//! # Layout
//!
//! - [`problem`] — every error answer: `ApiError` and its one table of
//!   status, stable `type` and title (RFC 9457).
//! - [`auth`] — who is calling: end users (JWT), services and admins, and
//!   `[auth]`'s settings.
//! - [`guard`] — without credentials, requests from other sites' pages are refused.
//! - [`conn`] — what a connection may cost: timeouts, the head's size,
//!   idle connections, and the `Host` rules.
//! - [`lists`] — configuration lists given as arrays or comma-separated.

pub mod auth;
pub mod conn;
pub mod guard;
pub mod lists;
pub mod problem;
