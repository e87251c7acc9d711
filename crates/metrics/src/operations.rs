//! Operations, their steps and their conflicts. Every count comes from the
//! events a commit wrote ([`Operations::commit`]), on the node that made
//! the commit: summed over nodes, each transition counts once.

use herald_core::{Event, EventKind, Operation};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ByWorkflow {
    pub workflow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Finished {
    pub workflow: String,
    /// `succeeded`, `failed` or `cancelled`.
    pub outcome: String,
    /// Against the workflow's `expected_within`: `met`, `missed`, or
    /// `none` when it sets none.
    pub expected: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ByOutcome {
    pub workflow: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ByStep {
    pub workflow: String,
    pub step: String,
    /// `forward`, or `compensation` for the call that undoes the step.
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepOutcome {
    pub workflow: String,
    pub step: String,
    /// `succeeded`, `failed`, `held` (failed for good, held for a person),
    /// `skipped`, `compensated` or `compensation_failed`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Conflict {
    pub workflow: String,
    /// `queued`, `rejected` or `superseded` (the older operation's), for
    /// a workflow's concurrency key; `replayed` (an idempotency key and
    /// body seen before) or `key_reused` (the key with another body, 422).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Notified {
    /// `inbox`, `webhook` or `email`.
    pub channel: String,
    /// `delivered` (an inbox notification written, a webhook or email
    /// accepted by its receiver), `retried` (a failed attempt that will be
    /// tried again) or `dead_lettered`.
    pub outcome: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// From a hundredth of a second to a day: operations wait on people too.
fn flow_buckets() -> Histogram {
    Histogram::new([
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
    ])
}

/// From a millisecond to ten seconds: how soon a person sees progress.
fn feedback_buckets() -> Histogram {
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

pub struct Operations {
    accepted: Family<ByWorkflow, Counter>,
    finished: Family<Finished, Counter>,
    duration: Histograms<ByOutcome>,
    first_feedback: Histograms<ByWorkflow>,
    attempts: Family<ByStep, Counter>,
    retries: Family<ByStep, Counter>,
    steps: Family<StepOutcome, Counter>,
    step_duration: Histograms<StepOutcome>,
    conflicts: Family<Conflict, Counter>,
    notifications: Family<Notified, Counter>,
}

impl Operations {
    pub(crate) fn register(r: &mut Registry) -> Self {
        let o = Operations {
            accepted: Family::default(),
            finished: Family::default(),
            duration: Family::new_with_constructor(flow_buckets),
            first_feedback: Family::new_with_constructor(feedback_buckets),
            attempts: Family::default(),
            retries: Family::default(),
            steps: Family::default(),
            step_duration: Family::new_with_constructor(flow_buckets),
            conflicts: Family::default(),
            notifications: Family::default(),
        };
        r.register("operations_accepted", "Operations accepted", o.accepted.clone());
        r.register(
            "operations_finished",
            "Operations finished, by outcome and against their expected time",
            o.finished.clone(),
        );
        r.register_with_unit(
            "operation_duration",
            "From acceptance to the final outcome",
            Unit::Seconds,
            o.duration.clone(),
        );
        r.register_with_unit(
            "operation_first_feedback",
            "From acceptance to the first news after it (a step's answer, a wait, a delay)",
            Unit::Seconds,
            o.first_feedback.clone(),
        );
        r.register("step_attempts", "Calls begun for a step or its compensation", o.attempts.clone());
        r.register("step_retries", "Failed attempts that will be tried again", o.retries.clone());
        r.register("steps_finished", "Steps and compensations ended, by outcome", o.steps.clone());
        r.register_with_unit(
            "step_duration",
            "From a step's start to its end, retries and waits included",
            Unit::Seconds,
            o.step_duration.clone(),
        );
        r.register(
            "conflicts",
            "Starts that met another operation: concurrency keys and idempotency keys",
            o.conflicts.clone(),
        );
        r.register(
            "notifications",
            "Notifications to people: inbox, webhook, email, by what became of each attempt",
            o.notifications.clone(),
        );
        o
    }

    /// What became of a notification's attempt on `channel` (see [`Notified`]).
    pub fn notified(&self, channel: &str, outcome: &str) {
        let labels = Notified { channel: channel.to_string(), outcome: outcome.to_string() };
        self.notifications.get_or_create(&labels).inc();
    }

    /// Counts what one commit wrote on `op` (its state after the commit).
    pub fn commit(&self, op: &Operation, events: &[Event]) {
        let workflow = || op.workflow.clone();
        // The first news after the acceptance was written by this commit.
        if let (Some(news), Some(first)) = (op.first_news_at, events.first())
            && first.at == news
            && first.kind != EventKind::Accepted
        {
            let waited = seconds(news - op.created_at);
            self.first_feedback.get_or_create(&ByWorkflow { workflow: workflow() }).observe(waited);
        }
        for e in events {
            let ended = |step: &str, outcome: &str| StepOutcome {
                workflow: workflow(),
                step: step.to_string(),
                outcome: outcome.to_string(),
            };
            let by_step = |step: &str, phase: &str| ByStep {
                workflow: workflow(),
                step: step.to_string(),
                phase: phase.to_string(),
            };
            match &e.kind {
                EventKind::Accepted => {
                    self.accepted.get_or_create(&ByWorkflow { workflow: workflow() }).inc();
                }
                EventKind::Queued { .. } => self.conflict(&op.workflow, "queued"),
                EventKind::Superseded { .. } => self.conflict(&op.workflow, "superseded"),
                EventKind::DecisionNeeded { .. } => self.conflict(&op.workflow, "asked"),
                EventKind::Decided { choice, by_default } => {
                    let outcome = match (choice, by_default) {
                        (herald_core::concurrency::Choice::Keep, false) => "kept",
                        (herald_core::concurrency::Choice::Keep, true) => "kept_by_default",
                        (herald_core::concurrency::Choice::Replace, false) => "replaced",
                        (herald_core::concurrency::Choice::Replace, true) => "replaced_by_default",
                    };
                    self.conflict(&op.workflow, outcome);
                }
                EventKind::StepStarted { step, .. } => {
                    self.attempts.get_or_create(&by_step(step, "forward")).inc();
                }
                EventKind::CompensationStarted { step, .. } => {
                    self.attempts.get_or_create(&by_step(step, "compensation")).inc();
                }
                EventKind::StepRetrying { step, .. } => {
                    self.retries.get_or_create(&by_step(step, "forward")).inc();
                }
                EventKind::CompensationRetrying { step, .. } => {
                    self.retries.get_or_create(&by_step(step, "compensation")).inc();
                }
                EventKind::StepSucceeded { step, .. } => self.step_ended(op, ended(step, "succeeded"), e),
                EventKind::StepFailed { step, .. } => self.step_ended(op, ended(step, "failed"), e),
                EventKind::StepHeld { step, .. } => self.step_ended(op, ended(step, "held"), e),
                EventKind::StepSkipped { step } => {
                    self.steps.get_or_create(&ended(step, "skipped")).inc();
                }
                EventKind::StepCompensated { step } => {
                    self.steps.get_or_create(&ended(step, "compensated")).inc();
                }
                EventKind::CompensationFailed { step, .. } => {
                    self.steps.get_or_create(&ended(step, "compensation_failed")).inc();
                }
                EventKind::Succeeded => self.finished(op, "succeeded", e),
                EventKind::Failed { .. } => self.finished(op, "failed", e),
                EventKind::Cancelled { .. } => self.finished(op, "cancelled", e),
                _ => {}
            }
        }
    }

    fn step_ended(&self, op: &Operation, labels: StepOutcome, e: &Event) {
        self.steps.get_or_create(&labels).inc();
        if let Some(started) = op.step(&labels.step).and_then(|(_, s)| s.started_at) {
            self.step_duration.get_or_create(&labels).observe(seconds(e.at - started));
        }
    }

    fn finished(&self, op: &Operation, outcome: &str, e: &Event) {
        let expected = match op.expected_by {
            Some(by) if e.at <= by => "met",
            Some(_) => "missed",
            None => "none",
        };
        let labels =
            Finished { workflow: op.workflow.clone(), outcome: outcome.to_string(), expected: expected.to_string() };
        self.finished.get_or_create(&labels).inc();
        let labels = ByOutcome { workflow: op.workflow.clone(), outcome: outcome.to_string() };
        self.duration.get_or_create(&labels).observe(seconds(e.at - op.created_at));
    }

    /// A start that met another operation (see [`Conflict`]).
    pub fn conflict(&self, workflow: &str, outcome: &str) {
        self.conflicts.get_or_create(&Conflict { workflow: workflow.to_string(), outcome: outcome.to_string() }).inc();
    }
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    (d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6).max(0.0)
}
