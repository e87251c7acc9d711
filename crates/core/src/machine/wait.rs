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
    let s = &mut tx.op.steps[ix];
    s.status = StepState::Waiting;
    s.attempts = attempt - 1;
    s.next_attempt_at = None;
    s.waiting_for = Some(service.clone());
    if std::mem::replace(&mut s.waited, true) {
        tx.out.touched = true; // back to waiting after a try that could not connect: told already
        return;
    }
    let step = s.name.clone();
    tx.emit(EventKind::StepWaiting { step, phase: Phase::Forward, service });
}

fn compensation(tx: &mut Tx, ix: usize, attempt: u32, service: String) {
    let now = tx.now;
    let s = &mut tx.op.steps[ix];
    let Some(c) = s.compensation.as_mut() else { return };
    if s.status != StepState::Compensating || s.waiting_for.is_some() {
        return;
    }
    let unsent = c.next_attempt_at.is_none() && c.attempts == attempt;
    let due = c.next_attempt_at.is_some() && c.attempts + 1 == attempt;
    if !unsent && !due {
        return;
    }
    if unsent {
        c.attempts = attempt - 1;
        c.next_attempt_at = Some(now);
    }
    s.waiting_for = Some(service.clone());
    if std::mem::replace(&mut s.waited, true) {
        tx.out.touched = true;
        return;
    }
    let step = s.name.clone();
    tx.emit(EventKind::StepWaiting { step, phase: Phase::Compensation, service });
}
