//! A new operation: its first events and tasks, committed before the 202.

use serde_json::Value;

use super::{Transition, Tx};
use crate::{
    OperationId, Time,
    operation::Operation,
    task::{TaskKind, Timer},
    timeline::{Event, EventKind},
    workflow::Workflow,
};

/// The operation as accepted, with its workflow timers (`intake`: see
/// [`Operation::new`]). An operation that
/// can never wait behind another (no concurrency policy) starts in the same
/// transaction; one that might gets a `Start` task, which the store holds
/// back while it is queued.
pub fn accept(
    wf: &Workflow,
    id: OperationId,
    input: Value,
    subject: Option<String>,
    concurrency_key: Option<String>,
    intake: &crate::operation::Intake,
    now: Time,
) -> (Operation, Transition) {
    let mut op = Operation::new(wf, id, input, subject, concurrency_key, intake, now);
    let mut tx = Tx { op: &mut op, wf, now, out: Transition::default() };
    tx.emit(EventKind::Accepted);
    if wf.concurrency.is_none() {
        super::forward::start(&mut tx);
    } else {
        tx.schedule(TaskKind::Start, now);
    }
    if let Some(at) = tx.op.expected_by {
        tx.schedule(TaskKind::Timer { timer: Timer::OpExpected }, at);
    }
    if let Some(at) = tx.op.deadline_at {
        tx.schedule(TaskKind::Timer { timer: Timer::OpDeadline }, at);
    }
    let out = tx.finish();
    (op, out)
}

/// Holds a just-accepted operation until `behind` finishes (concurrency
/// policy `queue`, or the newer side of `supersede`). The store starts it
/// later by scheduling its `Start` task.
pub fn enqueue(op: &mut Operation, out: &mut Transition, behind: OperationId, now: Time) {
    out.tasks.retain(|t| t.kind != TaskKind::Start);
    op.queued_behind = Some(behind.clone());
    op.last_seq += 1;
    op.updated_at = now;
    let event = Event::new(op.last_seq, now, EventKind::Queued { behind: Some(behind) }, op);
    out.events.push(event);
}
