//! The final account: what succeeded, what was undone, what could not be.

use super::Tx;
use crate::{
    OpStatus,
    lang::say,
    operation::{Ending, NotUndone, Operation, Outcome, StepState},
    task::{TaskKind, Timer},
    timeline::{EventKind, clause},
};

pub(super) fn finish(tx: &mut Tx, status: OpStatus) {
    let op = &mut *tx.op;
    op.status = status;
    op.finished_at = Some(tx.now);
    // A redriven compensation may have cleared what needed a person.
    op.needs_attention = op.attention_needed();
    let outcome = account(op, status);
    let reason = outcome.reason.clone();
    op.outcome = Some(outcome);
    tx.out.finished = true;
    tx.emit(match status {
        OpStatus::Succeeded => EventKind::Succeeded,
        OpStatus::Cancelled => EventKind::Cancelled { reason: reason.unwrap_or_default() },
        _ => EventKind::Failed { reason: reason.unwrap_or_default() },
    });
    // Personal data goes now, unless the final email still needs the address.
    if !tx.wf.notify.emails_the_end() {
        redact(tx);
    }
    if let Some(keep) = tx.wf.keep_input_for {
        tx.schedule(TaskKind::Timer { timer: Timer::InputExpires }, tx.now + keep.as_chrono());
    }
}

/// The final account of `op`, ending as `status`, in its language: also
/// how an ended operation is told again in another.
pub fn account(op: &Operation, status: OpStatus) -> Outcome {
    let lang = op.lang.as_str();
    let say = |id: &str, args: &[(&str, &dyn std::fmt::Display)]| say(lang, id, args);
    let succeeded: Vec<String> =
        op.steps.iter().filter(|s| s.status == StepState::Succeeded).map(|s| s.done_label.clone()).collect();
    // The outcome speaks of steps ("Undone: Items reserved"); how each was
    // undone ("Items put back") is on the timeline.
    let undone: Vec<String> = super::compensate::undo_order(op)
        .into_iter()
        .filter(|&ix| op.steps[ix].status == StepState::Compensated)
        .map(|ix| op.steps[ix].done_label.clone())
        .collect();
    let not_undone: Vec<NotUndone> = op
        .steps
        .iter()
        .filter_map(|s| {
            let reason = match s.status {
                StepState::CompensationFailed => {
                    let err = s.compensation.as_ref().and_then(|c| c.error.clone()).unwrap_or_default();
                    say("reason_undo_failed", &[("error", &err)])
                }
                StepState::Succeeded if status != OpStatus::Succeeded => say("reason_cannot_undo", &[]),
                StepState::Failed if s.maybe_applied && s.undo.is_none() => say("reason_may_have_happened", &[]),
                _ => return None,
            };
            let needs_attention = s.status == StepState::CompensationFailed;
            Some(NotUndone { step: s.name.clone(), label: s.done_label.clone(), reason, needs_attention })
        })
        .collect();
    let (failed_step, reason) = match &op.ending {
        Some(Ending::Failed { step, reason }) => (step.clone(), Some(reason.clone())),
        Some(Ending::Cancelled { reason }) => (None, Some(reason.clone())),
        None => (None, None),
    };
    let summary = summary(
        lang,
        &op.label,
        status,
        failed_step.as_deref().and_then(|f| op.step(f)).map(|(_, s)| s.label.as_str()),
        reason.as_deref(),
        &succeeded,
        &undone,
        &not_undone,
    );
    Outcome { status, summary, succeeded, undone, not_undone, failed_step, reason }
}

/// Erases the workflow's `redact` fields from the input, once.
pub(super) fn redact(tx: &mut Tx) {
    let fields = tx.wf.redact.clone();
    erase(tx, &fields);
}

/// Erases these input fields of an ended operation, saying so on the
/// timeline; fields already gone are passed over.
pub(super) fn erase(tx: &mut Tx, fields: &[String]) {
    if !tx.op.is_final() {
        return;
    }
    let Some(input) = tx.op.input.as_object_mut() else { return };
    let erased: Vec<String> = fields.iter().filter(|f| input.remove(f.as_str()).is_some()).cloned().collect();
    if erased.is_empty() {
        return;
    }
    tx.op.redacted.extend(erased.iter().cloned());
    tx.emit(EventKind::Redacted { fields: erased });
}

/// One plain sentence (or two) for the person who asked, in `lang`.
#[allow(clippy::too_many_arguments)]
fn summary(
    lang: &str,
    label: &str,
    status: OpStatus,
    failed_step: Option<&str>,
    reason: Option<&str>,
    succeeded: &[String],
    undone: &[String],
    not_undone: &[NotUndone],
) -> String {
    let say = |id: &str, args: &[(&str, &dyn std::fmt::Display)]| say(lang, id, args);
    let unknown = say("reason_unknown", &[]);
    let why = clause(reason.unwrap_or(&unknown));
    let mut s = match (status, failed_step) {
        (OpStatus::Succeeded, _) if succeeded.is_empty() => say("outcome_done", &[("label", &label)]),
        (OpStatus::Succeeded, _) => {
            let done: Vec<&str> = succeeded.iter().map(|d| clause(d)).collect();
            say("outcome_done_with", &[("label", &label), ("list", &done.join(", "))])
        }
        (OpStatus::Cancelled, _) => {
            let asked = say("reason_cancelled", &[]);
            say("outcome_cancelled", &[("label", &label), ("reason", &clause(reason.unwrap_or(&asked)))])
        }
        (_, Some(step)) => say("outcome_step_failed", &[("label", &label), ("step", &step), ("reason", &why)]),
        (_, None) => say("outcome_failed", &[("label", &label), ("reason", &why)]),
    };
    if !undone.is_empty() {
        s.push_str(&say("outcome_undone", &[("list", &undone.join(", "))]));
    }
    let attention: Vec<&str> = not_undone.iter().filter(|n| n.needs_attention).map(|n| n.label.as_str()).collect();
    let kept: Vec<&str> = not_undone.iter().filter(|n| !n.needs_attention).map(|n| n.label.as_str()).collect();
    if !kept.is_empty() {
        s.push_str(&say("outcome_not_undone", &[("list", &kept.join(", "))]));
    }
    if !attention.is_empty() {
        s.push_str(&say("outcome_follow_up", &[("list", &attention.join(", "))]));
    }
    s
}
