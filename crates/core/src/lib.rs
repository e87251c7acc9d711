//! herald's domain, with no IO: what a workflow is, what an operation is,
//! and how an operation moves when something happens to it.
//!
//! # Layout
//!
//! - [`duration`] — human durations (`"200ms"`, `"24h"`) parsed once at the edge.
//! - [`ids`] — operation ids.
//! - [`expect`] — when a request is expected to be done, and the words for it.
//! - [`lang`] — the languages herald speaks: its phrases' catalog, workflows' texts per language.
//! - [`workflow`] — the workflow file schema and its validation into a [`Workflow`].
//! - [`operation`] — the operation and its steps, as stored and as shown.
//! - [`timeline`] — the append-only events every status is derived from.
//! - [`trace`] — W3C trace context: the caller's, and the one an operation keeps.
//! - [`task`] — the durable work items (invoke, compensate, timers) the engine runs.
//! - [`concurrency`] — the `on_conflict` policies decided: go, refuse, queue
//!   or supersede, and who starts when the line moves.
//! - [`retell`] — an operation told again in another language, for its reader.
//! - [`retry`] — backoff arithmetic.
//! - [`nesting`] — how deep JSON may nest and still be read back.
//! - [`signature`] — signing and verifying the requests herald sends (method, path, body).
//! - [`notify`] — which events tell the user, and the inbox notification they make.
//! - [`instance`] — service instances registered at run time, as stored,
//!   and whether a registration is new, a heartbeat or a change.
//! - [`machine`] — the state machine: `apply(op, workflow, command, now)` returns
//!   the events and tasks the engine must persist, in one transaction.
//!
//! Nothing here reads the clock or a random source: callers pass `now` and
//! the jitter sample, so every transition is reproducible in tests.

pub mod concurrency;
pub mod duration;
pub mod expect;
pub mod ids;
pub mod instance;
pub mod lang;
pub mod machine;
pub mod nesting;
pub mod notify;
pub mod operation;
pub mod retell;
pub mod retry;
pub mod signature;
pub mod task;
pub mod timeline;
pub mod trace;
pub mod workflow;

pub use duration::Span;
pub use ids::OperationId;
pub use machine::{Command, Outcome, Rejection, Transition, apply};
pub use operation::{OpStatus, Operation, StepRun, StepState};
pub use task::{TaskKind, TaskSpec, Timer};
pub use timeline::{Event, EventKind};
pub use workflow::{Workflow, WorkflowError};

/// Wall-clock instants are UTC everywhere in herald.
pub type Time = chrono::DateTime<chrono::Utc>;
