//! What goes in and out of a [`crate::Store`].

use std::sync::Arc;

use herald_core::{Event, Operation, OperationId, Rejection, TaskKind, Time, Transition, notify::InboxChange};

pub use herald_core::instance::{Registered, RegisteredInstance};

/// The token of a held task: its row and the epoch of the claim that
/// handed it out. Every claim of a task moves its epoch on, so a write with
/// the token of an earlier claim (a node that was paused past its lease and
/// took the task again meanwhile, or another node's) finds the task gone
/// and changes nothing. Callers treat it as opaque.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The task's row, the same through every claim.
    pub row: i64,
    /// Which claim of the row this token came from.
    pub epoch: i64,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.row, self.epoch)
    }
}

impl std::fmt::Debug for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

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

/// Changes an operation inside the store's transaction. A `Fn`, not a
/// `FnOnce`: a store that wrote it in a batch that then failed runs it
/// again, alone, on the state as it then is.
pub type TransitionFn = Box<dyn Fn(&mut Operation) -> Result<Transition, Rejection> + Send + Sync>;

/// Cancels an older operation in favour of a newer one (concurrency `supersede`).
pub type SupersedeFn = Arc<dyn Fn(&mut Operation) -> Transition + Send + Sync>;

pub struct NewOperation {
    pub op: Operation,
    pub transition: Transition,
    pub idempotency: Option<IdempotencyKey>,
    /// Its workflow: its concurrency policy decides what a collision does.
    pub workflow: Arc<herald_core::Workflow>,
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

/// What waits in the store, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Operations not finished and past their expected time.
    pub delayed: u64,
    /// Operations that hold something only a person can mend.
    pub needing_attention: u64,
    /// Tasks due and not running: free ones due by now, and those whose
    /// node's lease ran out.
    pub due_tasks: u64,
    /// When the longest-waiting of them became due (a free task's due
    /// time, a lapsed one's lease end).
    pub oldest_due: Option<herald_core::Time>,
    /// Dead letters by kind ([`DeadLetterKind::as_str`]), kinds with none left out.
    pub dead_letters: Vec<(String, u64)>,
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

/// What a dead letter was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// A subscription's event that ran out of attempts.
    Event,
    /// A workflow step that failed for good and holds its operation (`on_failure = "hold"`).
    Step,
    /// A compensation that failed for good (the operation needs attention).
    Compensation,
    Webhook,
    Email,
}

impl DeadLetterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::Event => "event",
            DeadLetterKind::Step => "step",
            DeadLetterKind::Compensation => "compensation",
            DeadLetterKind::Webhook => "webhook",
            DeadLetterKind::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        use DeadLetterKind::*;
        [Event, Step, Compensation, Webhook, Email].into_iter().find(|k| k.as_str() == s)
    }
}

/// Work that ran out of attempts, kept for a person to redrive or drop.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: i64,
    pub kind: DeadLetterKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<OperationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub attempts: u32,
    /// The last attempt's error.
    pub error: String,
    /// Every attempt's error, oldest first (as far as they were kept).
    pub errors: Vec<herald_core::retry::AttemptError>,
    /// What would be delivered again: the event, the notification, or the
    /// step's coordinates.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Which dead letters to list or redrive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    pub kind: Option<DeadLetterKind>,
    pub subscription: Option<String>,
    pub workflow: Option<String>,
    pub operation: Option<OperationId>,
    /// Only ids below this one (the previous page's last), newest first.
    pub before: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub subject: Option<String>,
    pub workflow: Option<String>,
    pub status: Option<herald_core::OpStatus>,
    /// Only ids older than this one (the previous page's last id).
    pub before: Option<OperationId>,
    /// Only those flagged so (see `codec::flags`).
    pub flagged: Option<Flagged>,
    pub limit: usize,
}

/// What an operator looks for: operations past their expected time and
/// not finished, or waiting for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flagged {
    Late,
    NeedsAttention,
}

impl Flagged {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "late" => Some(Flagged::Late),
            "needs_attention" => Some(Flagged::NeedsAttention),
            _ => None,
        }
    }
}
