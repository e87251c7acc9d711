//! Winding down: completed steps are undone in reverse order of completion,
//! one at a time, after any call still in flight has answered.

use super::{Outcome, Rejection, StepLetter, Tx, forward::fail_step, outcome::finish};
use crate::{
    OpStatus,
    operation::{CompensationRun, Ending, Operation, StepState},
    task::Phase,
    timeline::EventKind,
};

pub(super) fn begin(tx: &mut Tx, ending: Ending) {
    let reason = match &ending {
        Ending::Failed { reason, .. } | Ending::Cancelled { reason } => reason.clone(),
    };
    tx.op.status = OpStatus::Compensating;
    tx.op.ending = Some(ending);
    // Nothing began (a queued request cancelled, one kept out by its
    // user's choice): there is nothing to undo, so nothing is said of it.
    if tx.op.steps.iter().any(|s| s.status != StepState::Pending) {
        tx.emit(EventKind::Compensating { reason });
    }
    for ix in 0..tx.op.steps.len() {
        let s = &tx.op.steps[ix];
        match s.status {
            StepState::Pending => {
                tx.op.steps[ix].status = StepState::Skipped;
                let step = tx.op.steps[ix].name.clone();
                tx.emit(EventKind::StepSkipped { step });
            }
            StepState::Retrying | StepState::Waiting => {
                fail_step(tx, ix, "stopped: the operation is being undone".into())
            }
            StepState::Held => {
                let step = tx.op.steps[ix].name.clone();
                tx.out.resolved.push((step, Phase::Forward));
                fail_step(tx, ix, "given up: the operation is being undone".into());
            }
            StepState::Running if s.awaiting_callback => {
                fail_step(tx, ix, "stopped waiting: the operation is being undone".into())
            }
            _ => {}
        }
    }
    proceed(tx);
}

/// Starts the next compensation, or finishes when none is left.
pub(super) fn proceed(tx: &mut Tx) {
    let busy = tx.op.steps.iter().any(|s| matches!(s.status, StepState::Running | StepState::Compensating));
    if busy {
        return;
    }
    let next = undo_order(tx.op).into_iter().find(|&ix| {
        let s = &tx.op.steps[ix];
        let pending = s.status == StepState::Succeeded || (s.status == StepState::Failed && s.maybe_applied);
        pending && s.undo.is_some()
    });
    match next {
        Some(ix) => start_attempt(tx, ix, 1),
        None => {
            let status = match tx.op.ending {
                Some(Ending::Cancelled { .. }) => OpStatus::Cancelled,
                _ => OpStatus::Failed,
            };
            finish(tx, status);
        }
    }
}

/// The order in which steps are undone: steps that may have done their work
/// without telling us went last, so they come first; then the completed
/// steps, last completed first.
pub(super) fn undo_order(op: &Operation) -> Vec<usize> {
    let unconfirmed =
        (0..op.steps.len()).rev().filter(|&ix| op.steps[ix].maybe_applied && !op.completion_order.contains(&ix));
    unconfirmed.chain(op.completion_order.iter().rev().copied()).collect()
}

fn start_attempt(tx: &mut Tx, ix: usize, attempt: u32) {
    let s = &mut tx.op.steps[ix];
    s.status = StepState::Compensating;
    let base = attempt - 1;
    let started_at = Some(tx.now);
    s.compensation = Some(CompensationRun { attempts: attempt, base, next_attempt_at: None, error: None, started_at });
    let step = s.name.clone();
    tx.emit(EventKind::CompensationStarted { step, attempt });
    tx.invoke(ix, attempt, Phase::Compensation, tx.now);
}

pub(super) fn attempt_started(tx: &mut Tx, ix: usize, attempt: u32) {
    let s = &mut tx.op.steps[ix];
    s.waiting_for = None;
    if let Some(c) = s.compensation.as_mut() {
        c.attempts = attempt;
        c.next_attempt_at = None;
    }
    let step = s.name.clone();
    tx.emit(EventKind::CompensationStarted { step, attempt });
}

pub(super) fn result(tx: &mut Tx, ix: usize, attempt: u32, outcome: Outcome, sample: f64) {
    let policy = &tx.wf.steps[ix].retry;
    let s = &mut tx.op.steps[ix];
    let Some(c) = s.compensation.as_mut() else { return };
    if s.status != StepState::Compensating || c.attempts != attempt || c.next_attempt_at.is_some() {
        return; // late
    }
    super::wait::told_started(tx, ix, Phase::Compensation);
    let s = &mut tx.op.steps[ix];
    let Some(c) = s.compensation.as_mut() else { return };
    let step = s.name.clone();
    match outcome {
        // A compensation has no callback: 202 means the service took it on.
        Outcome::Done(_) | Outcome::Accepted => {
            s.status = StepState::Compensated;
            c.error = None;
            tx.emit(EventKind::StepCompensated { step });
            proceed(tx);
        }
        Outcome::Failed { error, retryable, retry_after, .. } if retryable && !policy.exhausted(attempt - c.base) => {
            let next = super::next_attempt_at(tx, policy, attempt + 1, sample, retry_after);
            let Some(c) = tx.op.steps[ix].compensation.as_mut() else { return };
            c.next_attempt_at = Some(next);
            c.error = Some(error.clone());
            tx.emit(EventKind::CompensationRetrying { step, attempt, error, next_attempt_at: next });
            tx.invoke(ix, attempt + 1, Phase::Compensation, next);
        }
        Outcome::Failed { error, .. } => {
            s.status = StepState::CompensationFailed;
            c.error = Some(error.clone());
            tx.op.needs_attention = true;
            tx.out.dead_letters.push(StepLetter {
                step: step.clone(),
                phase: Phase::Compensation,
                attempts: attempt,
                error: error.clone(),
            });
            tx.emit(EventKind::CompensationFailed { step: step.clone(), error });
            tx.emit(EventKind::NeedsAttention { step });
            proceed(tx);
        }
    }
}

/// A person redrove a compensation that failed for good, once the
/// operation had ended: it is undone again, and the outcome rewritten.
pub(super) fn redrive(tx: &mut Tx, ix: usize) -> Result<(), Rejection> {
    let name = tx.op.steps[ix].name.clone();
    if tx.op.steps[ix].status != StepState::CompensationFailed {
        return Err(Rejection::NotHeld(name));
    }
    if !tx.op.is_final() {
        return Err(Rejection::AlreadyEnding);
    }
    tx.op.status = OpStatus::Compensating;
    tx.op.finished_at = None;
    tx.op.outcome = None;
    tx.out.resolved.push((name.clone(), Phase::Compensation));
    tx.emit(EventKind::StepRedriven { step: name, phase: Phase::Compensation });
    let attempt = tx.op.steps[ix].compensation.as_ref().map_or(0, |c| c.attempts) + 1;
    start_attempt(tx, ix, attempt);
    Ok(())
}
