//! The timeline: the append-only events of an operation. Each carries a
//! user-facing message written when it happens, from the step labels.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::{OperationId, lang::say, operation::Operation};

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
    /// `behind`, like the other operations' ids below, is not shown to an
    /// end user unless the key is their own ([`Event::for_end_user`]).
    Queued {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        behind: Option<OperationId>,
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<OperationId>,
    },
    /// It collided with a running operation: its user is asked to choose.
    DecisionNeeded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<OperationId>,
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

    /// The sentence a person reads for this event, from the operation's
    /// labels, in its language.
    pub fn message(&self, op: &Operation) -> String {
        let lang = op.lang.as_str();
        let label = |step: &str| op.step(step).map(|(_, s)| s.label.clone()).unwrap_or_else(|| step.to_string());
        let done = |step: &str| op.step(step).map(|(_, s)| s.done_label.clone()).unwrap_or_else(|| step.to_string());
        let doing = |step: &str, phase: &crate::task::Phase| match phase {
            crate::task::Phase::Forward => label(step),
            crate::task::Phase::Compensation => crate::machine::comp_label(op, step),
        };
        let outcome = || op.outcome.as_ref().map(|o| o.summary.clone()).unwrap_or_default();
        let say = |id: &str, args: &[(&str, &dyn std::fmt::Display)]| say(lang, id, args);
        match self {
            EventKind::Accepted => say("accepted", &[]),
            EventKind::Queued { .. } => say("queued", &[]),
            EventKind::Started => say("started", &[]),
            EventKind::StepStarted { step, attempt: 1 } => label(step),
            EventKind::StepStarted { step, attempt } => {
                say("step_attempt", &[("label", &label(step)), ("attempt", attempt)])
            }
            EventKind::StepAwaiting { step } => say("step_awaiting", &[("label", &label(step))]),
            EventKind::StepSucceeded { step, .. } => done(step),
            EventKind::StepRetrying { step, attempt, error, .. } => {
                say("step_retrying", &[("label", &label(step)), ("attempt", attempt), ("error", &clause(error))])
            }
            EventKind::StepFailed { step, error } => say("step_failed", &[("label", &label(step)), ("error", error)]),
            EventKind::StepSkipped { step } => say("step_skipped", &[("label", &label(step))]),
            EventKind::StepHeld { step, error } => {
                say("step_held", &[("label", &label(step)), ("error", &clause(error))])
            }
            EventKind::StepRedriven { step, phase } => say("trying_again", &[("label", &doing(step, phase))]),
            EventKind::StepDelayed { step } => say("step_delayed", &[("label", &label(step))]),
            EventKind::StepWaiting { step, phase, service } => {
                say("step_waiting", &[("label", &doing(step, phase)), ("service", service)])
            }
            EventKind::Delayed => say("delayed", &[]),
            EventKind::DeadlinePassed { step: None } => say("deadline_passed", &[]),
            EventKind::DeadlinePassed { step: Some(step) } => say("step_deadline_passed", &[("label", &label(step))]),
            EventKind::CancelRequested { .. } => say("cancel_requested", &[]),
            EventKind::Superseded { .. } => say("superseded", &[]),
            EventKind::DecisionNeeded { .. } => say("decision_needed", &[]),
            EventKind::Decided { choice, by_default } => {
                use crate::concurrency::Choice;
                let id = match (choice, by_default) {
                    (Choice::Keep, false) => "chose_keep",
                    (Choice::Replace, false) => "chose_replace",
                    (Choice::Keep, true) => "default_keep",
                    (Choice::Replace, true) => "default_replace",
                };
                say(id, &[])
            }
            EventKind::Compensating { reason } => say("compensating", &[("reason", &clause(reason))]),
            EventKind::CompensationStarted { step, .. } => crate::machine::comp_label(op, step),
            EventKind::CompensationRetrying { step, attempt, error, .. } => say(
                "step_retrying",
                &[("label", &crate::machine::comp_label(op, step)), ("attempt", attempt), ("error", &clause(error))],
            ),
            EventKind::StepCompensated { step } => crate::machine::comp_done_label(op, step),
            EventKind::CompensationFailed { step, error } => {
                say("step_failed", &[("label", &crate::machine::comp_label(op, step)), ("error", error)])
            }
            EventKind::NeedsAttention { step } => say("not_undone_attention", &[("done", &done(step))]),
            EventKind::Succeeded | EventKind::Failed { .. } | EventKind::Cancelled { .. } => outcome(),
            EventKind::Redacted { fields } => {
                let named: Vec<&str> = fields.iter().map(|f| op.field_labels.get(f).unwrap_or(f).as_str()).collect();
                say("redacted", &[("fields", &named.join(", "))])
            }
        }
    }
}

impl Event {
    /// The event as an end user is shown it: the ids of the other
    /// operations it names only when they are the user's own (`own_key`:
    /// the concurrency key is their subject), as [`Operation::for_end_user`].
    pub fn for_end_user(&mut self, own_key: bool) {
        if !own_key {
            match &mut self.kind {
                EventKind::Queued { behind: id }
                | EventKind::Superseded { by: id }
                | EventKind::DecisionNeeded { with: id } => *id = None,
                _ => {}
            }
        }
    }

    pub fn new(seq: u64, at: DateTime<Utc>, kind: EventKind, op: &Operation) -> Self {
        let message = kind.message(op);
        Event { seq, at, kind, message }
    }
}
