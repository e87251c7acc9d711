//! One state-machine change of a stored operation, and what follows from
//! it in the same transaction: its tasks, its dead letters, its inbox
//! notification, and the next operation in its line when it ends.

use std::sync::Arc;

use chrono::Utc;
use herald_core::{Operation, OperationId, Rejection, TaskKind, TaskSpec, Transition, concurrency};

use super::{dead_letters, inbox, tasks};
use crate::{Applied, Error, Node, Result, Task, TaskId, TransitionResult, tx::Tx};

/// Runs `f` on the operation and writes what it returns. With `consume`,
/// the task goes in the same transaction, and nothing happens if this node
/// no longer holds it (another took it when the lease ran out).
///
/// A refusal is `Err(Error::Rejected)`, so the backend rolls back (the
/// task stays) and then answers with [`answer`].
pub async fn transition<T: Tx>(
    tx: &mut T,
    node: &Node,
    id: &OperationId,
    consume: Option<TaskId>,
    f: impl FnOnce(&mut Operation) -> Result<Transition, Rejection>,
) -> Result<TransitionResult> {
    let consume = consume.map(|task| (task, node.id.as_str()));
    let Some((mut op, held)) = tx.load_consuming(id, consume).await? else { return Ok(TransitionResult::Missing) };
    if !held {
        return Ok(TransitionResult::Missing);
    }
    let tr = f(&mut op).map_err(Error::Rejected)?;
    if tr.is_empty() {
        let op = Arc::new(op);
        return Ok(TransitionResult::Applied(Applied {
            op,
            events: vec![],
            tasks: vec![],
            others: vec![],
            inbox: None,
        }));
    }
    tx.update_op(&op).await?;
    let release = tr.finished || tr.release;
    persist(tx, node, op, tr, release).await.map(TransitionResult::Applied)
}

/// A choice made for an `ask` operation, as [`crate::Store::decide`] says.
pub async fn decide<T: Tx>(
    tx: &mut T,
    node: &Node,
    id: &OperationId,
    consume: Option<TaskId>,
    f: impl FnOnce(&mut Operation) -> Result<Transition, Rejection>,
    supersede: crate::SupersedeFn,
) -> Result<TransitionResult> {
    let result = transition(tx, node, id, consume, f).await?;
    let TransitionResult::Applied(mut applied) = result else { return Ok(result) };
    let (Some(key), true) = (&applied.op.concurrency_key, herald_core::machine::replaces(&applied.events)) else {
        return Ok(TransitionResult::Applied(applied));
    };
    let active = tx.active_with_key(&applied.op.workflow, key).await?;
    for other in active.iter().filter(|a| a.id != applied.op.id) {
        if let TransitionResult::Applied(a) = transition(tx, node, &other.id, None, |o| Ok(supersede(o))).await? {
            applied.others.push(a);
        }
    }
    Ok(TransitionResult::Applied(applied))
}

/// A backend's answer for a transition, once it rolled a refused one back.
pub fn answer(result: Result<TransitionResult>) -> Result<TransitionResult> {
    match result {
        Err(Error::Rejected(r)) => Ok(TransitionResult::Rejected(r)),
        other => other,
    }
}

/// Writes what a transition of `op` made, its row already written. With
/// `release`, an operation that may have left its line lets the next start.
pub(super) async fn persist<T: Tx>(
    tx: &mut T,
    node: &Node,
    op: Operation,
    tr: Transition,
    release: bool,
) -> Result<Applied> {
    let Transition { events, tasks: specs, notice, deliveries, dead_letters, resolved, .. } = tr;
    tx.insert_events(&op.id, &events).await?;
    dead_letters::record(tx, &op, &resolved, &dead_letters).await?;
    let mut tasks = tasks::insert(tx, node, &op.id, specs).await?;
    if release && let Some(key) = &op.concurrency_key {
        tasks.extend(release_next(tx, node, &op.workflow, key).await?);
    }
    let inbox = inbox::rewrite(tx, &op, notice).await?;
    tasks.extend(tasks::deliveries(tx, node, &op.id, deliveries).await?);
    Ok(Applied { op: Arc::new(op), events, tasks, others: vec![], inbox })
}

/// Lets the oldest queued operation with this key start, if none is running.
async fn release_next<T: Tx>(tx: &mut T, node: &Node, workflow: &str, key: &str) -> Result<Vec<Task>> {
    let active = tx.active_with_key(workflow, key).await?;
    let Some(next) = concurrency::next_to_start(&active) else { return Ok(vec![]) };
    let Some(mut op) = tx.load(next).await? else { return Ok(vec![]) };
    // No longer behind anyone: the state says so too, so no later write of it
    // puts it back in the queue before its start runs.
    op.queued_behind = None;
    tx.update_op(&op).await?;
    tasks::insert(tx, node, &op.id, [TaskSpec { kind: TaskKind::Start, due: Utc::now() }]).await
}
