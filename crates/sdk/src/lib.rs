//! herald's Rust SDK.
//!
//! # Layout
//!
//! - [`Client`] — start, read, cancel and [watch](Client::watch) operations;
//!   publish events; pull, ack and nack subscriptions; complete steps.
//! - [`step`] (feature `step`) — step handlers for axum services: the
//!   envelope, herald's signature, the replies; [`load`], how hard herald
//!   presses the service.
//! - [`Outbox`], [`Relay`] and [`Inbox`] (feature `outbox`) — the
//!   transactional outbox and the inbox on the service's own SQLite or
//!   PostgreSQL database (sqlx).
//! - [`verify`] — checks a `Herald-Signature` (webhooks, step calls, pushed
//!   events) against the method, path and body it came with, and refuses
//!   one dated more than five minutes from now, either way (a replay, or
//!   one made to be replayed later).

mod client;
mod watch;

#[cfg(feature = "outbox")]
mod db;
#[cfg(feature = "outbox")]
mod inbox;
#[cfg(feature = "step")]
pub mod load;
#[cfg(feature = "outbox")]
mod outbox;
#[cfg(feature = "step")]
pub mod step;

pub use client::{Callback, Client, Nack, Start};
#[cfg(feature = "outbox")]
pub use db::{Conn, Pool};
pub use herald_broker::{CloudEvent, Message, Nacked, Published};
pub use herald_core::signature::{HEADER as SIGNATURE_HEADER, VerifyError, verify};
pub use herald_core::{Event, EventKind, OpStatus, Operation};
#[cfg(feature = "outbox")]
pub use inbox::Inbox;
#[cfg(feature = "outbox")]
pub use outbox::{Outbox, Relay, RelayHandle};

use serde::Deserialize;

/// An operation with its whole timeline, as herald shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct OperationView {
    #[serde(flatten)]
    pub operation: Operation,
    pub timeline: Vec<Event>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("herald could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
    /// herald answered with a problem document.
    #[error("{status} {kind}: {detail}")]
    Problem { status: u16, kind: String, detail: String },
    #[error("unexpected data: {0}")]
    Decode(String),
    #[cfg(feature = "outbox")]
    #[error("the service's database: {0}")]
    Database(#[from] sqlx::Error),
}

impl Error {
    /// The problem's stable `type` (e.g. `urn:herald:problem:unknown-workflow`),
    /// so callers match on it rather than on messages.
    pub fn problem_type(&self) -> Option<&str> {
        match self {
            Error::Problem { kind, .. } => Some(kind),
            _ => None,
        }
    }
}
