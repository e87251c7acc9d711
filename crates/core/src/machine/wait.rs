//! Waiting for a service: the engine could not send a step's call (herald
//! refused it itself — no instance, an open circuit, its concurrency limit —
//! or no connection could be made), so the attempt is not spent. The step
//! shows that it waits, told once; its timers still run, so the user hears
//! when it is late and a deadline still ends it.

use super::{Tx, compensate, forward::fail_step};
use crate::{OpStatus, operation::StepState, task::Phase, timeline::EventKind};

pub(super) fn wait(tx: &mut Tx, ix: usize, attempt: u32, phase: Phase, service: String) {
    match phase {
        Phase::Forward => forward(tx, ix, attempt, service),
        Phase::Compensation => compensation(tx, ix, attempt, service),
    }
}

fn forward(tx: &mut Tx, ix: usize, attempt: u32, service: String) {
    let s = &tx.op.steps[ix];
    let unsent = s.status == StepState::Running && s.attempts == attempt && !s.awaiting_callback;
    if tx.op.status == OpStatus::Compensating && unsent {
        // It was to go out when the operation began to wind down: nothing
        // was sent, so nothing waits for an answer.
        fail_step(tx, ix, "stopped: the operation is being undone".into());
        compensate::proceed(tx);
        return;
    }
    if tx.op.status != OpStatus::Running {
        return;
    }
    let due = s.status == StepState::Retrying && s.attempts + 1 == attempt;
    if !unsent && !due {
        return; // already waiting, or no longer this attempt's turn
    }
    // An attempt out of a wait that could not be sent either: back to
    // waiting, told already.
    let told = unsent && s.waiting_for.is_some();
    let s = &mut tx.op.steps[ix];
    s.status = StepState::Waiting;
    s.attempts = attempt - 1;
    s.next_attempt_at = None;
    s.waiting_for = Some(service.clone());
    if told {
        tx.out.touched = true;
        return;
    }
    let step = s.name.clone();
    tx.emit(EventKind::StepWaiting { step, phase: Phase::Forward, service });
}

fn compensation(tx: &mut Tx, ix: usize, attempt: u32, service: String) {
    let now = tx.now;
    let s = &mut tx.op.steps[ix];
    let Some(c) = s.compensation.as_mut() else { return };
    if s.status != StepState::Compensating {
        return;
    }
    let unsent = c.next_attempt_at.is_none() && c.attempts == attempt;
    let due = c.next_attempt_at.is_some() && c.attempts + 1 == attempt;
    let told = s.waiting_for.is_some();
    if !unsent && (!due || told) {
        return; // already waiting, or no longer this attempt's turn
    }
    if unsent {
        c.attempts = attempt - 1;
        c.next_attempt_at = Some(now);
    }
    s.waiting_for = Some(service.clone());
    if told {
        tx.out.touched = true;
        return;
    }
    let step = s.name.clone();
    tx.emit(EventKind::StepWaiting { step, phase: Phase::Compensation, service });
}

/// The first attempt after a wait begins without a word: it is told with
/// its answer (see [`told_started`]), so tries that cannot connect to a
/// service that is still down add nothing to the timeline.
pub(super) fn resume(tx: &mut Tx, ix: usize, attempt: u32, phase: Phase) -> bool {
    let s = &mut tx.op.steps[ix];
    if s.waiting_for.is_none() {
        return false;
    }
    match phase {
        Phase::Forward => {
            s.status = StepState::Running;
            s.attempts = attempt;
            s.next_attempt_at = None;
        }
        Phase::Compensation => {
            let Some(c) = s.compensation.as_mut() else { return false };
            c.attempts = attempt;
            c.next_attempt_at = None;
        }
    }
    tx.out.touched = true;
    true
}

/// An answer came to an attempt begun out of a wait: the attempt is told
/// now, before its answer.
pub(super) fn told_started(tx: &mut Tx, ix: usize, phase: Phase) {
    let s = &mut tx.op.steps[ix];
    if s.waiting_for.take().is_none() {
        return;
    }
    let (step, attempt) = (s.name.clone(), s.attempts);
    match phase {
        Phase::Forward => tx.emit(EventKind::StepStarted { step, attempt }),
        Phase::Compensation => {
            let attempt = s.compensation.as_ref().map_or(attempt, |c| c.attempts);
            tx.emit(EventKind::CompensationStarted { step, attempt })
        }
    }
}
