//! Moving forward: starting, stage by stage, and what each step's answer does.

use super::{Outcome, Rejection, Tx, compensate};
use crate::{
    OpStatus,
    operation::{Ending, StepState},
    task::{Phase, TaskKind, Timer},
    timeline::EventKind,
};

pub(super) fn start(tx: &mut Tx) {
    if tx.op.status != OpStatus::Accepted {
        return;
    }
    tx.op.status = OpStatus::Running;
    tx.op.started_at = Some(tx.now);
    tx.op.queued_behind = None;
    tx.emit(EventKind::Started);
    begin_stage(tx, 0);
}

fn begin_stage(tx: &mut Tx, stage: usize) {
    tx.op.stage = stage;
    for ix in tx.wf.stages[stage].clone() {
        let def = &tx.wf.steps[ix];
        let (expected, deadline) = (def.expected_within, def.deadline);
        let now = tx.now;
        let s = &mut tx.op.steps[ix];
        s.started_at = Some(now);
        s.expected_by = expected.map(|d| now + d.as_chrono());
        let name = s.name.clone();
        if let Some(d) = expected {
            tx.schedule(TaskKind::Timer { timer: Timer::StepExpected { step: name.clone() } }, now + d.as_chrono());
        }
        if let Some(d) = deadline {
            tx.schedule(TaskKind::Timer { timer: Timer::StepDeadline { step: name } }, now + d.as_chrono());
        }
        run_attempt(tx, ix, 1);
    }
}

/// The first attempt: shown as started and invoked at once.
fn run_attempt(tx: &mut Tx, ix: usize, attempt: u32) {
    mark_running(tx, ix, attempt);
    tx.invoke(ix, attempt, Phase::Forward, tx.now);
}

fn mark_running(tx: &mut Tx, ix: usize, attempt: u32) {
    let s = &mut tx.op.steps[ix];
    s.status = StepState::Running;
    s.attempts = attempt;
    s.next_attempt_at = None;
    let step = s.name.clone();
    tx.emit(EventKind::StepStarted { step, attempt });
}

pub(super) fn attempt_started(tx: &mut Tx, ix: usize, attempt: u32, phase: Phase) {
    let check = super::check_invoke(tx.op, &tx.op.steps[ix].name.clone(), attempt, phase);
    if check != super::InvokeCheck::Begin {
        return;
    }
    // A retry's task already exists: only the state and the timeline change.
    match phase {
        Phase::Forward => mark_running(tx, ix, attempt),
        Phase::Compensation => compensate::attempt_started(tx, ix, attempt),
    }
}

pub(super) fn result(tx: &mut Tx, ix: usize, attempt: u32, outcome: Outcome, sample: f64) {
    let s = &tx.op.steps[ix];
    if s.status != StepState::Running || s.attempts != attempt || s.awaiting_callback {
        return; // late: this attempt no longer matters
    }
    settle(tx, ix, outcome, sample);
}

pub(super) fn callback(tx: &mut Tx, ix: usize, outcome: Outcome, sample: f64) -> Result<(), Rejection> {
    let s = &tx.op.steps[ix];
    if tx.op.status.is_final() {
        return Err(Rejection::Finished);
    }
    if s.status != StepState::Running || !s.awaiting_callback || outcome == Outcome::Accepted {
        return Err(Rejection::NotAwaiting(s.name.clone()));
    }
    tx.op.steps[ix].awaiting_callback = false;
    settle(tx, ix, outcome, sample);
    Ok(())
}

/// A step's answer, from its call or its callback.
fn settle(tx: &mut Tx, ix: usize, outcome: Outcome, sample: f64) {
    let winding_down = tx.op.status == OpStatus::Compensating;
    match outcome {
        Outcome::Done(value) => {
            let s = &mut tx.op.steps[ix];
            s.status = StepState::Succeeded;
            s.result = Some(value);
            s.error = None;
            s.finished_at = Some(tx.now);
            let (step, attempt) = (s.name.clone(), s.attempts);
            tx.op.completion_order.push(ix);
            tx.emit(EventKind::StepSucceeded { step, attempt });
            if winding_down {
                compensate::proceed(tx);
            } else {
                advance(tx);
            }
        }
        Outcome::Accepted => {
            let s = &mut tx.op.steps[ix];
            s.awaiting_callback = true;
            s.maybe_applied = true;
            let step = s.name.clone();
            tx.emit(EventKind::StepAwaiting { step });
            if winding_down {
                // Nobody will wait for it now; undo it like a completed step.
                fail_step(tx, ix, "stopped waiting: the operation is being undone".into());
                compensate::proceed(tx);
            }
        }
        Outcome::Failed { error, retryable, maybe_applied } => {
            let policy = &tx.wf.steps[ix].retry;
            let s = &mut tx.op.steps[ix];
            s.maybe_applied |= maybe_applied;
            s.error = Some(error.clone());
            if winding_down {
                fail_step(tx, ix, error);
                compensate::proceed(tx);
            } else if retryable && !policy.exhausted(s.attempts) {
                let attempt = s.attempts;
                let next =
                    tx.now + chrono::Duration::from_std(policy.delay_before(attempt + 1, sample)).unwrap_or_default();
                s.status = StepState::Retrying;
                s.next_attempt_at = Some(next);
                let step = s.name.clone();
                tx.emit(EventKind::StepRetrying { step, attempt, error, next_attempt_at: next });
                tx.invoke(ix, attempt + 1, Phase::Forward, next);
            } else {
                let step = s.name.clone();
                fail_step(tx, ix, error.clone());
                compensate::begin(tx, Ending::Failed { step: Some(step), reason: error });
            }
        }
    }
}

pub(super) fn fail_step(tx: &mut Tx, ix: usize, error: String) {
    let s = &mut tx.op.steps[ix];
    s.status = StepState::Failed;
    s.error = Some(error.clone());
    s.next_attempt_at = None;
    s.finished_at = Some(tx.now);
    if s.awaiting_callback {
        s.awaiting_callback = false;
        s.maybe_applied = true;
    }
    let step = s.name.clone();
    tx.emit(EventKind::StepFailed { step, error });
}

/// After a success: the next stage once every step of this one is done.
fn advance(tx: &mut Tx) {
    let stage = tx.op.stage;
    let done = tx.wf.stages[stage].iter().all(|&ix| tx.op.steps[ix].status == StepState::Succeeded);
    if !done {
        return;
    }
    if stage + 1 < tx.wf.stages.len() {
        begin_stage(tx, stage + 1);
    } else {
        super::outcome::finish(tx, OpStatus::Succeeded);
    }
}
