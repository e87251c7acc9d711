//! What goes in and out of a [`crate::Store`].

use std::sync::Arc;

use herald_core::{
    Event, Operation, OperationId, Rejection, TaskKind, Time, Transition, notify::InboxChange, workflow::OnConflict,
};

pub type TaskId = i64;

/// A durable task as claimed from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: TaskId,
    pub op: OperationId,
    pub kind: TaskKind,
    pub due: Time,
    /// This node holds its lease and should run it at `due`.
    pub owned: bool,
}

/// Changes an operation inside the store's transaction.
pub type TransitionFn = Box<dyn FnOnce(&mut Operation) -> Result<Transition, Rejection> + Send>;

/// Cancels an older operation in favour of a newer one (concurrency `supersede`).
pub type SupersedeFn = Arc<dyn Fn(&mut Operation) -> Transition + Send + Sync>;

pub struct NewOperation {
    pub op: Operation,
    pub transition: Transition,
    pub idempotency: Option<IdempotencyKey>,
    pub on_conflict: Option<OnConflict>,
    pub supersede: Option<SupersedeFn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// A digest of the request, so a reused key with another body is caught.
    pub request_hash: String,
}

#[derive(Debug)]
pub enum Accepted {
    Created(Applied),
    /// The same idempotency key and body were seen before.
    Existing(Box<Operation>),
    /// The same idempotency key came with a different body.
    KeyReused(OperationId),
    /// `on_conflict = "reject"` and this operation is active.
    Conflict(OperationId),
}

/// What a committed transition wrote.
#[derive(Debug, Clone)]
pub struct Applied {
    pub op: Arc<Operation>,
    pub events: Vec<Event>,
    /// New tasks, this operation's and any operation it let out of a queue.
    pub tasks: Vec<Task>,
    /// Other operations changed in the same transaction (superseded ones).
    pub others: Vec<Applied>,
    /// The subject's inbox notification, if this change rewrote it.
    pub inbox: Option<Box<(String, InboxChange)>>,
}

#[derive(Debug)]
pub enum TransitionResult {
    Applied(Applied),
    /// No such operation, or the task was already consumed.
    Missing,
    Rejected(Rejection),
}

/// Work that ran out of attempts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: i64,
    /// What it was: `webhook`, …
    pub kind: String,
    pub operation_id: OperationId,
    pub attempts: u32,
    pub error: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub subject: Option<String>,
    pub workflow: Option<String>,
    pub status: Option<herald_core::OpStatus>,
    /// Only ids older than this one (the previous page's last id).
    pub before: Option<OperationId>,
    pub limit: usize,
}
