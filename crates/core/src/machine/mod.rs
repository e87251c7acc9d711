//! The operation state machine.
//!
//! [`apply`] takes an operation, its workflow, one [`Command`] and the time,
//! changes the operation and returns a [`Transition`]: the timeline events
//! and the tasks to persist with it, in one transaction. Commands that
//! arrive late (a result for an attempt that was superseded, a timer for a
//! step that already finished) change nothing and return an empty
//! transition, so at-least-once delivery of commands is safe.
//!
//! One command per file, as the engine sees them:
//! [`accept`], [`forward`] (start, results, callbacks), [`compensate`],
//! [`timers`], [`cancel`], [`wait`]; [`outcome`] writes the final account.

mod accept;
mod cancel;
mod compensate;
mod decide;
mod forward;
pub(crate) mod outcome;
mod timers;
mod wait;

use serde_json::Value;

pub use accept::{accept, enqueue};
pub use decide::{await_decision, replaces};
pub use outcome::account;

use crate::{
    OperationId, Time,
    operation::{Operation, StepState},
    task::{Phase, TaskKind, TaskSpec, Timer},
    timeline::{Event, EventKind},
    workflow::Workflow,
};

/// What happened to one call of a step's service.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: done, with the response body as the step's result.
    Done(Value),
    /// 202: the service will complete the step later by callback.
    Accepted,
    Failed {
        error: String,
        retryable: bool,
        /// The request may have reached the service and done its work
        /// (a timeout after sending, not a refused connection).
        maybe_applied: bool,
        /// The service asked for this long before the next try
        /// (`Retry-After`); the retry policy's delay applies when longer.
        retry_after: Option<std::time::Duration>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Start,
    /// A retry's due time came: the attempt begins (shown on the timeline).
    AttemptStarted {
        step: String,
        attempt: u32,
        phase: Phase,
    },
    /// The answer to an invocation. `sample` is a uniform [0, 1) draw for jitter.
    Result {
        step: String,
        attempt: u32,
        phase: Phase,
        outcome: Outcome,
        sample: f64,
    },
    /// The service completed a step that answered 202, for the attempt
    /// its callback token names.
    Callback {
        step: String,
        attempt: u32,
        outcome: Outcome,
        sample: f64,
    },
    Timer(Timer),
    Cancel {
        reason: String,
    },
    Supersede {
        by: OperationId,
    },
    /// The user of an `awaiting_decision` operation chose.
    Decide {
        choice: crate::concurrency::Choice,
    },
    /// Erase the workflow's `redact` fields from the input (its final
    /// email is out, or could not be sent).
    Redact,
    /// An event arrived on a topic that `await` steps listen to; it
    /// completes those of this operation's that it names.
    EventArrived {
        topic: String,
        event: Value,
    },
    /// A person redrove a held step, or a compensation that failed for good.
    Redrive {
        step: String,
        phase: Phase,
    },
    /// The attempt could not be sent: herald refused it itself, or no
    /// connection to `service` could be made. It is not spent; the step
    /// waits for the service.
    Wait {
        step: String,
        attempt: u32,
        phase: Phase,
        service: String,
    },
    /// Consume a task that no longer applies; changes nothing.
    Discard,
}

/// A command that cannot apply, as the caller should be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the operation has already finished")]
    Finished,
    #[error("the operation is already being cancelled or undone")]
    AlreadyEnding,
    #[error("step `{0}` is not waiting for a callback")]
    NotAwaiting(String),
    #[error("attempt {1} of step `{0}` is over: a later attempt was made or is due")]
    AttemptOver(String, u32),
    #[error("the operation has no step `{0}`")]
    UnknownStep(String),
    #[error("workflow `{0}` is not known to this server")]
    UnknownWorkflow(String),
    #[error("step `{0}` is not waiting for a person: there is nothing to redrive")]
    NotHeld(String),
    #[error("the operation is not waiting for a choice: it was made, or time ran out and the default was applied")]
    NothingToDecide,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Transition {
    pub events: Vec<Event>,
    pub tasks: Vec<TaskSpec>,
    /// The operation reached a final state in this transition.
    pub finished: bool,
    /// The operation joined its line (a choice to replace): the next in
    /// line starts if none runs.
    pub release: bool,
    /// The subject's notification, rewritten, when these events call for it.
    pub notice: Option<crate::notify::Notice>,
    /// What to send beyond the inbox (webhook, email), each a payload.
    pub deliveries: Vec<(crate::notify::Channel, serde_json::Value)>,
    /// Steps (or compensations) given up on, for the dead letters.
    pub dead_letters: Vec<StepLetter>,
    /// Steps whose dead letters no longer apply (redriven, or the operation moved on).
    pub resolved: Vec<(String, Phase)>,
    /// The state changed without an event (an early event kept for later).
    pub touched: bool,
}

impl Transition {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.tasks.is_empty() && !self.touched
    }
}

/// A step or compensation that failed for good and waits for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLetter {
    pub step: String,
    pub phase: Phase,
    pub attempts: u32,
    pub error: String,
}

/// The transition under construction: the operation, and what to persist.
pub(crate) struct Tx<'a> {
    pub op: &'a mut Operation,
    pub wf: &'a Workflow,
    pub now: Time,
    pub out: Transition,
}

impl Tx<'_> {
    pub fn emit(&mut self, kind: EventKind) {
        self.op.last_seq += 1;
        self.op.updated_at = self.now;
        let event = Event::new(self.op.last_seq, self.now, kind, self.op);
        self.out.events.push(event);
    }

    pub fn schedule(&mut self, kind: TaskKind, due: Time) {
        self.out.tasks.push(TaskSpec { kind, due });
    }

    /// The transition, with the notification its events call for.
    pub fn finish(mut self) -> Transition {
        use crate::notify::{self, Channel};
        self.out.notice = notify::derive(self.op, &self.wf.notify, &self.out.events);
        if let Some(notice) = &self.out.notice {
            for channel in &notice.channels {
                let payload = match channel {
                    Channel::Inbox => None,
                    Channel::Webhook => Some(notify::webhook_payload(self.op, notice, self.now)),
                    Channel::Email => notify::email(self.op, &self.wf.notify, notice),
                };
                self.out.deliveries.extend(payload.map(|p| (*channel, p)));
            }
        }
        self.out
    }

    pub fn invoke(&mut self, step: usize, attempt: u32, phase: Phase, due: Time) {
        let step = self.op.steps[step].name.clone();
        self.schedule(TaskKind::Invoke { step, attempt, phase }, due);
    }
}

pub fn apply(op: &mut Operation, wf: &Workflow, cmd: Command, now: Time) -> Result<Transition, Rejection> {
    let mut tx = Tx { op, wf, now, out: Transition::default() };
    match cmd {
        Command::Start => forward::start(&mut tx),
        Command::AttemptStarted { step, attempt, phase } => {
            let ix = step_index(tx.op, &step)?;
            forward::attempt_started(&mut tx, ix, attempt, phase)
        }
        Command::Result { step, attempt, phase: Phase::Forward, outcome, sample } => {
            let ix = step_index(tx.op, &step)?;
            forward::result(&mut tx, ix, attempt, outcome, sample)
        }
        Command::Result { step, attempt, phase: Phase::Compensation, outcome, sample } => {
            let ix = step_index(tx.op, &step)?;
            compensate::result(&mut tx, ix, attempt, outcome, sample)
        }
        Command::Callback { step, attempt, outcome, sample } => {
            let ix = step_index(tx.op, &step)?;
            forward::callback(&mut tx, ix, attempt, outcome, sample)?
        }
        Command::Timer(t) => timers::fire(&mut tx, t),
        Command::Cancel { reason } => cancel::cancel(&mut tx, reason)?,
        Command::Supersede { by } => cancel::supersede(&mut tx, by),
        Command::Decide { choice } => decide::decide(&mut tx, choice, false)?,
        Command::Redact => outcome::redact(&mut tx),
        Command::EventArrived { topic, event } => forward::event_arrived(&mut tx, &topic, event),
        Command::Redrive { step, phase: Phase::Forward } => {
            let ix = step_index(tx.op, &step)?;
            forward::redrive(&mut tx, ix)?
        }
        Command::Redrive { step, phase: Phase::Compensation } => {
            let ix = step_index(tx.op, &step)?;
            compensate::redrive(&mut tx, ix)?
        }
        Command::Wait { step, attempt, phase, service } => {
            let ix = step_index(tx.op, &step)?;
            wait::wait(&mut tx, ix, attempt, phase, service)
        }
        Command::Discard => {}
    }
    if tx.op.first_news_at.is_none() && !tx.out.events.is_empty() {
        tx.op.first_news_at = Some(now);
    }
    Ok(tx.finish())
}

fn step_index(op: &Operation, name: &str) -> Result<usize, Rejection> {
    op.step(name).map(|(i, _)| i).ok_or_else(|| Rejection::UnknownStep(name.to_string()))
}

/// The longest `Retry-After` honoured: a service cannot park a step for
/// longer than this per attempt.
pub const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// When the next attempt goes: the policy's delay, or the service's
/// `Retry-After` when that is longer.
pub(crate) fn next_attempt_at(
    tx: &Tx,
    policy: &crate::retry::RetryPolicy,
    next: u32,
    sample: f64,
    retry_after: Option<std::time::Duration>,
) -> Time {
    let delay = policy.delay_before(next, sample).max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
    tx.now + chrono::Duration::from_std(delay).unwrap_or_default()
}

/// Whether an invocation task still applies, as the engine must know before
/// it calls a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeCheck {
    /// Call now: this attempt is the one the operation waits for.
    Current,
    /// A retry whose time has come: apply [`Command::AttemptStarted`], then call.
    Begin,
    /// Superseded or finished: consume the task with [`Command::Discard`].
    Stale,
}

pub fn check_invoke(op: &Operation, step: &str, attempt: u32, phase: Phase) -> InvokeCheck {
    let Some((_, s)) = op.step(step) else { return InvokeCheck::Stale };
    match phase {
        Phase::Forward => match s.status {
            StepState::Running if s.attempts == attempt && !s.awaiting_callback => InvokeCheck::Current,
            StepState::Retrying | StepState::Waiting
                if s.attempts + 1 == attempt && op.status == crate::OpStatus::Running =>
            {
                InvokeCheck::Begin
            }
            _ => InvokeCheck::Stale,
        },
        Phase::Compensation => match (&s.status, &s.compensation) {
            (StepState::Compensating, Some(c)) if c.next_attempt_at.is_none() && c.attempts == attempt => {
                InvokeCheck::Current
            }
            (StepState::Compensating, Some(c)) if c.next_attempt_at.is_some() && c.attempts + 1 == attempt => {
                InvokeCheck::Begin
            }
            _ => InvokeCheck::Stale,
        },
    }
}

/// The label shown while a step is being undone.
pub fn comp_label(op: &Operation, step: &str) -> String {
    match op.step(step) {
        Some((_, s)) => s
            .undo
            .as_ref()
            .map(|u| u.label.clone())
            .unwrap_or_else(|| crate::lang::say(&op.lang, "undoing_default", &[("label", &s.label)])),
        None => step.to_string(),
    }
}

/// The label shown once a step has been undone.
pub fn comp_done_label(op: &Operation, step: &str) -> String {
    match op.step(step) {
        Some((_, s)) => s
            .undo
            .as_ref()
            .map(|u| u.done_label.clone())
            .unwrap_or_else(|| crate::lang::say(&op.lang, "undone_default", &[("label", &s.label)])),
        None => step.to_string(),
    }
}

#[cfg(test)]
mod tests;
