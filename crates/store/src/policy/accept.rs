//! A new operation: a replay of a known idempotency key answers what was
//! stored; otherwise the workflow's concurrency policy decides whether it
//! is refused, waits in line, or supersedes the ones before it.

use herald_core::{
    concurrency::{self, Admission},
    machine,
};

use super::transition::{persist, transition};
use crate::{Accepted, Error, IdempotencyKey, NewOperation, Node, Result, TransitionResult, tx::Tx};

pub async fn accept<T: Tx>(tx: &mut T, node: &Node, new: NewOperation) -> Result<Accepted> {
    let NewOperation { mut op, transition: mut first, idempotency, workflow, supersede } = new;
    let on_conflict = workflow.concurrency.as_ref().map(|c| c.on_conflict);
    if let Some(k) = &idempotency
        && let Some(seen) = replay(tx, &op.workflow, k).await?
    {
        return Ok(seen);
    }
    if let (Some(key), Some(policy)) = (&op.concurrency_key, on_conflict) {
        let active = tx.active_with_key(&op.workflow, key).await?;
        let now = op.updated_at;
        match concurrency::admit(policy, &active) {
            Admission::Go => {}
            Admission::Conflict(head) => return Ok(Accepted::Conflict(head.clone())),
            Admission::Queue(behind) => machine::enqueue(&mut op, &mut first, behind.clone(), now),
            Admission::Ask(head) => {
                machine::await_decision(&mut op, &workflow, &mut first, head.clone(), now);
            }
            Admission::Supersede(head) => {
                machine::enqueue(&mut op, &mut first, head.clone(), now);
                // Inserted before the older ones end, so the last of them
                // to end finds it in line and lets it start.
                tx.insert_op(&op).await?;
                let f =
                    supersede.ok_or_else(|| Error::Internal("supersede policy without a supersede function".into()))?;
                let mut others = Vec::with_capacity(active.len());
                for older in &active {
                    if let TransitionResult::Applied(a) = transition(tx, node, &older.id, None, |o| Ok(f(o))).await? {
                        others.push(a);
                    }
                }
                let mut applied = finish(tx, node, op, first, idempotency.as_ref(), true).await?;
                applied.others = others;
                return Ok(Accepted::Created(applied));
            }
        }
    }
    tx.insert_op(&op).await?;
    finish(tx, node, op, first, idempotency.as_ref(), false).await.map(Accepted::Created)
}

/// The answer to a key seen before in this workflow: the same request gets
/// the operation it made; another request under that key, a refusal.
async fn replay<T: Tx>(tx: &mut T, workflow: &str, k: &IdempotencyKey) -> Result<Option<Accepted>> {
    let Some((existing, hash)) = tx.idempotency(workflow, &k.key).await? else { return Ok(None) };
    let op =
        tx.load(&existing).await?.ok_or_else(|| Error::Corrupt(format!("idempotency row for missing {existing}")))?;
    Ok(Some(if hash == k.request_hash { Accepted::Existing(Box::new(op)) } else { Accepted::KeyReused(op.id) }))
}

/// The new operation's key, timeline and work, its row already written.
async fn finish<T: Tx>(
    tx: &mut T,
    node: &Node,
    op: herald_core::Operation,
    first: herald_core::Transition,
    idempotency: Option<&IdempotencyKey>,
    superseded: bool,
) -> Result<crate::Applied> {
    if let Some(k) = idempotency {
        tx.insert_idempotency(&op.workflow, k, &op.id, op.created_at).await?;
    }
    // Superseding may have emptied the line ahead of it.
    persist(tx, node, op, first, superseded).await
}
