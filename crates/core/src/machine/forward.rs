//! Moving forward: starting, stage by stage, and what each step's answer does.

use serde_json::Value;

use super::{Outcome, Rejection, StepLetter, Tx, compensate};
use crate::{
    OpStatus,
    operation::{Ending, StepState},
    task::{Phase, TaskKind, Timer},
    timeline::EventKind,
    workflow::{Action, OnFailure},
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
    let mut arrived = Vec::new();
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
        if let Some(event) = tx.op.steps[ix].received.take() {
            arrived.push((ix, event));
        }
    }
    // Events that came before their steps began complete them now, once
    // the whole stage has started.
    for (ix, event) in arrived {
        if tx.op.status == OpStatus::Running && tx.op.steps[ix].awaiting_callback {
            tx.op.steps[ix].awaiting_callback = false;
            settle(tx, ix, Outcome::Done(event), 0.0);
        }
    }
}

/// An attempt shown as started: a call or publish is invoked at once; an
/// `await` step starts waiting (until its timeout, if it has one).
fn run_attempt(tx: &mut Tx, ix: usize, attempt: u32) {
    mark_running(tx, ix, attempt);
    match &tx.wf.steps[ix].action {
        Action::Await(a) => {
            let timeout = a.timeout;
            tx.op.steps[ix].awaiting_callback = true;
            if let Some(t) = timeout {
                let step = tx.op.steps[ix].name.clone();
                tx.schedule(TaskKind::Timer { timer: Timer::AwaitTimeout { step } }, tx.now + t.as_chrono());
            }
        }
        Action::Call(_) | Action::Publish(_) => tx.invoke(ix, attempt, Phase::Forward, tx.now),
    }
}

fn mark_running(tx: &mut Tx, ix: usize, attempt: u32) {
    let s = &mut tx.op.steps[ix];
    s.status = StepState::Running;
    s.attempts = attempt;
    s.next_attempt_at = None;
    s.waiting_for = None;
    let step = s.name.clone();
    tx.emit(EventKind::StepStarted { step, attempt });
}

pub(super) fn attempt_started(tx: &mut Tx, ix: usize, attempt: u32, phase: Phase) {
    let check = super::check_invoke(tx.op, &tx.op.steps[ix].name.clone(), attempt, phase);
    if check != super::InvokeCheck::Begin {
        return;
    }
    // A retry's task already exists: only the state and the timeline change.
    if super::wait::resume(tx, ix, attempt, phase) {
        return;
    }
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

pub(super) fn callback(tx: &mut Tx, ix: usize, attempt: u32, outcome: Outcome, sample: f64) -> Result<(), Rejection> {
    let s = &tx.op.steps[ix];
    if tx.op.status.is_final() {
        return Err(Rejection::Finished);
    }
    // A retrying (or waiting) step's next attempt is due: the last one is
    // over too, and a late answer to it must change nothing.
    if s.attempts != attempt || matches!(s.status, StepState::Retrying | StepState::Waiting) {
        return Err(Rejection::AttemptOver(s.name.clone(), attempt));
    }
    // Taken while its call is still out, too: a service that finishes at
    // once may report before herald has taken in its 202, which then
    // arrives for a step already settled and changes nothing.
    if s.status != StepState::Running || outcome == Outcome::Accepted {
        return Err(Rejection::NotAwaiting(s.name.clone()));
    }
    tx.op.steps[ix].awaiting_callback = false;
    settle(tx, ix, outcome, sample);
    Ok(())
}

/// A step's answer, from its call or its callback.
fn settle(tx: &mut Tx, ix: usize, outcome: Outcome, sample: f64) {
    let winding_down = tx.op.status == OpStatus::Compensating;
    super::wait::told_started(tx, ix, Phase::Forward);
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
        Outcome::Failed { error, retryable, maybe_applied, retry_after } => {
            let policy = &tx.wf.steps[ix].retry;
            let s = &mut tx.op.steps[ix];
            s.maybe_applied |= maybe_applied;
            s.error = Some(error.clone());
            if winding_down {
                fail_step(tx, ix, error);
                compensate::proceed(tx);
            } else if retryable && !policy.exhausted(s.attempts_this_round()) {
                let attempt = s.attempts;
                let next = super::next_attempt_at(tx, policy, attempt + 1, sample, retry_after);
                let s = &mut tx.op.steps[ix];
                s.status = StepState::Retrying;
                s.next_attempt_at = Some(next);
                let step = s.name.clone();
                tx.emit(EventKind::StepRetrying { step, attempt, error, next_attempt_at: next });
                tx.invoke(ix, attempt + 1, Phase::Forward, next);
            } else {
                give_up(tx, ix, error);
            }
        }
    }
}

/// The step failed for good: by its `on_failure`, the operation is held
/// for a person, or what was done is undone.
pub(super) fn give_up(tx: &mut Tx, ix: usize, error: String) {
    if tx.wf.steps[ix].on_failure == OnFailure::Hold {
        let s = &mut tx.op.steps[ix];
        s.status = StepState::Held;
        s.error = Some(error.clone());
        s.next_attempt_at = None;
        s.awaiting_callback = false;
        let (step, attempts) = (s.name.clone(), s.attempts);
        tx.op.needs_attention = true;
        tx.emit(EventKind::StepHeld { step: step.clone(), error: error.clone() });
        tx.out.dead_letters.push(StepLetter { step, phase: Phase::Forward, attempts, error });
        return;
    }
    let step = tx.op.steps[ix].name.clone();
    fail_step(tx, ix, error.clone());
    compensate::begin(tx, Ending::Failed { step: Some(step), reason: error });
}

/// A person redrove a held step: a new round of attempts begins.
pub(super) fn redrive(tx: &mut Tx, ix: usize) -> Result<(), Rejection> {
    let s = &mut tx.op.steps[ix];
    if s.status != StepState::Held || tx.op.status != OpStatus::Running {
        return Err(Rejection::NotHeld(s.name.clone()));
    }
    s.retry_base = s.attempts;
    s.error = None;
    let (step, attempt) = (s.name.clone(), s.attempts + 1);
    tx.out.resolved.push((step.clone(), Phase::Forward));
    tx.emit(EventKind::StepRedriven { step, phase: Phase::Forward });
    run_attempt(tx, ix, attempt);
    tx.op.needs_attention = tx.op.attention_needed();
    Ok(())
}

/// An event on a topic some `await` steps listen to: each of this
/// operation's that it names is done with it, or keeps it if it has not
/// begun waiting yet.
pub(super) fn event_arrived(tx: &mut Tx, topic: &str, event: Value) {
    if tx.op.is_final() {
        return;
    }
    let id = tx.op.id.to_string();
    let kind = event.get("type").and_then(Value::as_str).unwrap_or_default();
    let extension = event.get("operationid").and_then(Value::as_str);
    let named: Vec<usize> = tx
        .wf
        .awaits()
        .filter(|(_, a)| a.topic == topic && a.kind == kind)
        .filter(|(_, a)| a.correlation(extension, event.get("data")) == Some(id.as_str()))
        .map(|(ix, _)| ix)
        .collect();
    for ix in named {
        let s = &mut tx.op.steps[ix];
        match s.status {
            StepState::Running if s.awaiting_callback && tx.op.status == OpStatus::Running => {
                s.awaiting_callback = false;
                settle(tx, ix, Outcome::Done(event.clone()), 0.0);
            }
            StepState::Pending if s.received.is_none() => {
                s.received = Some(event.clone());
                tx.out.touched = true;
            }
            _ => {}
        }
    }
}

pub(super) fn fail_step(tx: &mut Tx, ix: usize, error: String) {
    let s = &mut tx.op.steps[ix];
    s.status = StepState::Failed;
    s.error = Some(error.clone());
    s.next_attempt_at = None;
    s.waiting_for = None;
    s.finished_at = Some(tx.now);
    if s.awaiting_callback {
        s.awaiting_callback = false;
        s.maybe_applied = true;
    }
    let step = s.name.clone();
    tx.emit(EventKind::StepFailed { step, error });
}

/// After a success (or a skip): the next stage once every step of this
/// one is done.
pub(super) fn advance(tx: &mut Tx) {
    let stage = tx.op.stage;
    let done = tx.wf.stages[stage]
        .iter()
        .all(|&ix| matches!(tx.op.steps[ix].status, StepState::Succeeded | StepState::Skipped));
    if !done {
        return;
    }
    if stage + 1 < tx.wf.stages.len() {
        begin_stage(tx, stage + 1);
    } else {
        super::outcome::finish(tx, OpStatus::Succeeded);
    }
}
