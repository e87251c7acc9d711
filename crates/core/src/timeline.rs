//! The timeline: the append-only events of an operation. Each carries a
//! user-facing message written when it happens, from the step labels.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::{OperationId, operation::Operation};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// 1, 2, 3… within the operation; the SSE event id.
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
    /// What a person is told, in plain words.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Accepted,
    Queued {
        behind: OperationId,
    },
    Started,
    StepStarted {
        step: String,
        attempt: u32,
    },
    StepAwaiting {
        step: String,
    },
    StepSucceeded {
        step: String,
        attempt: u32,
    },
    StepRetrying {
        step: String,
        attempt: u32,
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    StepFailed {
        step: String,
        error: String,
    },
    StepSkipped {
        step: String,
    },
    /// The step failed for good and holds the operation for a person.
    StepHeld {
        step: String,
        error: String,
    },
    /// A person redrove the step (or its compensation): it is tried again.
    StepRedriven {
        step: String,
        phase: crate::task::Phase,
    },
    StepDelayed {
        step: String,
    },
    /// The step's call (or its compensation's) waits for its service to
    /// take calls; told once, when the wait begins.
    StepWaiting {
        step: String,
        phase: crate::task::Phase,
        service: String,
    },
    Delayed,
    /// The operation (or, naming it, a step) was not done by its deadline:
    /// it is stopped and what was done is undone.
    DeadlinePassed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
    },
    CancelRequested {
        reason: String,
    },
    Superseded {
        by: OperationId,
    },
    /// It collided with a running operation: its user is asked to choose.
    DecisionNeeded {
        with: OperationId,
    },
    /// The choice was made: by the user, or `by_default` when time ran out.
    Decided {
        choice: crate::concurrency::Choice,
        by_default: bool,
    },
    Compensating {
        reason: String,
    },
    CompensationStarted {
        step: String,
        attempt: u32,
    },
    CompensationRetrying {
        step: String,
        attempt: u32,
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    StepCompensated {
        step: String,
    },
    CompensationFailed {
        step: String,
        error: String,
    },
    NeedsAttention {
        step: String,
    },
    Succeeded,
    Failed {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
    /// Personal data was erased from the operation (retention `redact`).
    Redacted {
        fields: Vec<String>,
    },
}

/// Text set inside parentheses in a sentence: no full stop of its own.
pub fn clause(text: &str) -> &str {
    text.trim().trim_end_matches('.')
}

impl EventKind {
    /// Ends the timeline: nothing follows.
    pub fn is_final(&self) -> bool {
        matches!(self, EventKind::Succeeded | EventKind::Failed { .. } | EventKind::Cancelled { .. })
    }

    /// The sentence a person reads for this event, from the operation's labels.
    pub fn message(&self, op: &Operation) -> String {
        let label = |step: &str| op.step(step).map(|(_, s)| s.label.clone()).unwrap_or_else(|| step.to_string());
        let done = |step: &str| op.step(step).map(|(_, s)| s.done_label.clone()).unwrap_or_else(|| step.to_string());
        let outcome = || op.outcome.as_ref().map(|o| o.summary.clone()).unwrap_or_default();
        match self {
            EventKind::Accepted => "Request received".into(),
            EventKind::Queued { .. } => "Waiting for an earlier request to finish first".into(),
            EventKind::Started => "Started".into(),
            EventKind::StepStarted { step, attempt: 1 } => label(step),
            EventKind::StepStarted { step, attempt } => format!("{} (attempt {attempt})", label(step)),
            EventKind::StepAwaiting { step } => format!("{}: in progress", label(step)),
            EventKind::StepSucceeded { step, .. } => done(step),
            EventKind::StepRetrying { step, attempt, error, .. } => {
                format!("{}: attempt {attempt} did not work ({}); trying again", label(step), clause(error))
            }
            EventKind::StepFailed { step, error } => format!("{} failed: {error}", label(step)),
            EventKind::StepSkipped { step } => format!("{}: not needed", label(step)),
            EventKind::StepHeld { step, error } => {
                format!("{} did not work ({}); paused until a person looks at it", label(step), clause(error))
            }
            EventKind::StepRedriven { step, phase: crate::task::Phase::Forward } => {
                format!("Trying again: {}", label(step))
            }
            EventKind::StepRedriven { step, phase: crate::task::Phase::Compensation } => {
                format!("Trying again: {}", crate::machine::comp_label(op, step))
            }
            EventKind::StepDelayed { step } => format!("{} is taking longer than usual", label(step)),
            EventKind::StepWaiting { step, phase, service } => {
                let doing = match phase {
                    crate::task::Phase::Forward => label(step),
                    crate::task::Phase::Compensation => crate::machine::comp_label(op, step),
                };
                format!("{doing}: waiting for the {service} service")
            }
            EventKind::Delayed => "This is taking longer than usual".into(),
            EventKind::DeadlinePassed { step } => {
                let what = step.as_deref().map_or_else(|| "This".to_string(), label);
                format!(
                    "{what} was not done in time: it is being stopped and anything already done undone; you will be told here when that is finished"
                )
            }
            EventKind::CancelRequested { .. } => "Cancellation requested".into(),
            EventKind::Superseded { .. } => "Replaced by a newer request".into(),
            EventKind::DecisionNeeded { .. } => {
                "An earlier request is still in progress: choose whether to keep it or to replace it with this one"
                    .into()
            }
            EventKind::Decided { choice, by_default } => {
                use crate::concurrency::Choice;
                let chosen = match choice {
                    Choice::Keep => "the earlier request was kept and this one will not run",
                    Choice::Replace => "this request replaces the earlier one, which is being undone first",
                };
                if *by_default {
                    format!("No choice was made in time, so {chosen} (the default)")
                } else {
                    format!("As you chose, {chosen}")
                }
            }
            EventKind::Compensating { reason } => format!("Undoing what was done ({})", clause(reason)),
            EventKind::CompensationStarted { step, .. } => crate::machine::comp_label(op, step),
            EventKind::CompensationRetrying { step, attempt, error, .. } => {
                format!(
                    "{}: attempt {attempt} did not work ({error}); trying again",
                    crate::machine::comp_label(op, step)
                )
            }
            EventKind::StepCompensated { step } => crate::machine::comp_done_label(op, step),
            EventKind::CompensationFailed { step, error } => {
                format!("{} failed: {error}", crate::machine::comp_label(op, step))
            }
            EventKind::NeedsAttention { step } => {
                format!("{} could not be undone: a person will look at it", done(step))
            }
            EventKind::Succeeded | EventKind::Failed { .. } | EventKind::Cancelled { .. } => outcome(),
            EventKind::Redacted { fields } => format!("Erased from our records: your {}", fields.join(", ")),
        }
    }
}

impl Event {
    pub fn new(seq: u64, at: DateTime<Utc>, kind: EventKind, op: &Operation) -> Self {
        let message = kind.message(op);
        Event { seq, at, kind, message }
    }
}
