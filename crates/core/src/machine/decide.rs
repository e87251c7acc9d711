//! `on_conflict = "ask"`: a new operation that collided with a running one
//! waits for its user to choose, or for its workflow's default when the
//! time to choose is out. Keeping the running one cancels the new one
//! before it did anything; replacing it leaves the new one in line behind
//! it, and the store supersedes the others in the same transaction.

use super::{Rejection, Transition, Tx, compensate};
use crate::{
    OpStatus, OperationId, Time,
    concurrency::Choice,
    operation::{Decision, Ending, Operation},
    task::{TaskKind, Timer},
    timeline::EventKind,
    workflow::Workflow,
};

/// Holds a just-accepted operation for its user's choice between it and
/// `with`, the operation holding its key.
pub fn await_decision(op: &mut Operation, wf: &Workflow, out: &mut Transition, with: OperationId, now: Time) {
    let Some(c) = &wf.concurrency else { return };
    let mut first = std::mem::take(out);
    first.tasks.retain(|t| t.kind != TaskKind::Start);
    // The notice is derived again below from all the events, and with it
    // what goes out by webhook and email.
    first.notice = None;
    first.deliveries.clear();
    let due_at = now + c.decide_within.as_chrono();
    op.status = OpStatus::AwaitingDecision;
    op.decision = Some(Decision { with: Some(with.clone()), due_at, default: c.default });
    let mut tx = Tx { op, wf, now, out: first };
    tx.emit(EventKind::DecisionNeeded { with: Some(with) });
    tx.schedule(TaskKind::Timer { timer: Timer::DecisionDue }, due_at);
    *out = tx.finish();
}

/// The user's choice (or, `by_default`, the workflow's).
pub(super) fn decide(tx: &mut Tx, choice: Choice, by_default: bool) -> Result<(), Rejection> {
    if tx.op.status != OpStatus::AwaitingDecision {
        return Err(Rejection::NothingToDecide);
    }
    let Some(decision) = tx.op.decision.take() else { return Err(Rejection::NothingToDecide) };
    tx.op.status = OpStatus::Accepted;
    match choice {
        Choice::Keep => {
            tx.emit(EventKind::Decided { choice, by_default });
            let reason = if by_default { "reason_kept_by_default" } else { "reason_kept" };
            let reason = crate::lang::say(&tx.op.lang, reason, &[]);
            compensate::begin(tx, Ending::Cancelled { reason });
        }
        Choice::Replace => {
            // In line behind the one it replaces: it starts once that one
            // has been undone, or now if it has already ended.
            tx.op.queued_behind = decision.with;
            tx.out.release = true;
            tx.emit(EventKind::Decided { choice, by_default });
        }
    }
    Ok(())
}

/// Do these events choose to replace the running operation?
pub fn replaces(events: &[crate::Event]) -> bool {
    events.iter().any(|e| matches!(e.kind, EventKind::Decided { choice: Choice::Replace, .. }))
}
