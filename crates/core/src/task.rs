//! Durable work items. Each is stored with a due time; the engine claims due
//! ones under a lease and answers each with a [`crate::Command`].

use serde::{Deserialize, Serialize};

use crate::Time;

/// Which way a call goes: doing the step, or undoing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Forward,
    Compensation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskKind {
    /// Begin running a newly accepted (or dequeued) operation.
    Start,
    /// Call a step's service (or its compensation).
    Invoke {
        step: String,
        attempt: u32,
        phase: Phase,
    },
    Timer {
        timer: Timer,
    },
    /// Send a notification to a channel other than the inbox (a webhook).
    Deliver {
        channel: crate::notify::Channel,
        attempt: u32,
        payload: serde_json::Value,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
pub enum Timer {
    OpExpected,
    OpDeadline,
    StepExpected {
        step: String,
    },
    StepDeadline {
        step: String,
    },
    /// The workflow's `keep_input_for` has passed since the operation ended.
    InputExpires,
    /// An `ask` operation's user did not choose within `decide_within`.
    DecisionDue,
    /// An `await` step's `timeout` has passed.
    AwaitTimeout {
        step: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub kind: TaskKind,
    pub due: Time,
}
