//! Dead letters written by the store's own decisions: a step given up on
//! (with every attempt's error, from its timeline), a held task set aside,
//! and a letter turned back into work.

use chrono::Utc;
use herald_core::{
    EventKind, Operation, OperationId, TaskKind, TaskSpec, machine::StepLetter, retry::AttemptError, task::Phase,
};

use super::tasks;
use crate::{DeadLetter, DeadLetterKind, Node, Result, Task, TaskId, tx::Tx};

fn kind(phase: Phase) -> DeadLetterKind {
    match phase {
        Phase::Forward => DeadLetterKind::Step,
        Phase::Compensation => DeadLetterKind::Compensation,
    }
}

/// Steps given up on become dead letters; steps redriven (or overtaken)
/// take theirs away, in the transaction that says so. Runs after the
/// transition's events are written: the history includes them.
pub(super) async fn record<T: Tx>(
    tx: &mut T,
    op: &Operation,
    resolved: &[(String, Phase)],
    letters: &[StepLetter],
) -> Result<()> {
    for (step, phase) in resolved {
        tx.delete_step_dead_letters(&op.id, step, kind(*phase)).await?;
    }
    if letters.is_empty() {
        return Ok(());
    }
    let timeline = tx.events(&op.id, 0, usize::MAX).await?;
    for letter in letters {
        // Every failed attempt of this step (or its compensation), from the timeline.
        let errors = timeline
            .iter()
            .filter_map(|e| match (&e.kind, letter.phase) {
                (EventKind::StepRetrying { step, attempt, error, .. }, Phase::Forward)
                | (EventKind::CompensationRetrying { step, attempt, error, .. }, Phase::Compensation)
                    if *step == letter.step =>
                {
                    Some(AttemptError { attempt: *attempt, at: e.at, error: error.clone() })
                }
                (EventKind::StepHeld { step, error }, Phase::Forward)
                | (EventKind::CompensationFailed { step, error }, Phase::Compensation)
                    if *step == letter.step =>
                {
                    Some(AttemptError { attempt: letter.attempts, at: e.at, error: error.clone() })
                }
                _ => None,
            })
            .collect();
        let dead = DeadLetter {
            id: 0,
            kind: kind(letter.phase),
            subscription: None,
            topic: None,
            workflow: Some(op.workflow.clone()),
            operation_id: Some(op.id.clone()),
            step: Some(letter.step.clone()),
            attempts: letter.attempts,
            error: letter.error.clone(),
            errors,
            payload: serde_json::json!({ "operation_id": op.id, "step": letter.step, "phase": letter.phase }),
            created_at: Utc::now(),
        };
        tx.insert_dead_letter(&dead).await?;
    }
    Ok(())
}

/// Moves a task this node holds to the dead letters; `false` if it no
/// longer holds it (nothing is written then).
pub async fn dead_letter<T: Tx>(tx: &mut T, node: &Node, task: TaskId, letter: &DeadLetter) -> Result<bool> {
    if !tx.delete_task(task, &node.id).await? {
        return Ok(false);
    }
    tx.insert_dead_letter(letter).await?;
    Ok(true)
}

/// The letter goes and a task to run now comes, in one transaction; `None`
/// if the letter is already gone.
pub async fn redrive_task<T: Tx>(
    tx: &mut T,
    node: &Node,
    letter: i64,
    op: &OperationId,
    kind: TaskKind,
) -> Result<Option<Task>> {
    if !tx.delete_dead_letter(letter).await? {
        return Ok(None);
    }
    Ok(tasks::insert(tx, node, op, [TaskSpec { kind, due: Utc::now() }]).await?.pop())
}
