//! New tasks, and who holds them from the start.

use chrono::Utc;
use herald_core::{OperationId, TaskKind, TaskSpec, notify::Channel};

use crate::{Node, Result, Task, tx::Lease, tx::Tx};

/// Stores new tasks of `op`. Work due now is leased to this node at once,
/// so it runs straight from memory, without waiting for a poll.
pub(super) async fn insert<T: Tx>(
    tx: &mut T,
    node: &Node,
    op: &OperationId,
    specs: impl IntoIterator<Item = TaskSpec>,
) -> Result<Vec<Task>> {
    let specs = specs.into_iter();
    let now = Utc::now();
    let mut out = Vec::with_capacity(specs.size_hint().0);
    for TaskSpec { kind, due } in specs {
        let owned = due <= now;
        let lease = owned.then(|| Lease { owner: &node.id, until: now + node.lease });
        let id = tx.insert_task(op, &kind, due, lease).await?;
        out.push(Task { id, op: op.clone(), kind, due, owned });
    }
    Ok(out)
}

/// Queues the notification for the channels beyond the inbox (webhook,
/// email), in the transaction that made the news: it cannot be lost, nor
/// sent for news that was rolled back.
pub(super) async fn deliveries<T: Tx>(
    tx: &mut T,
    node: &Node,
    op: &OperationId,
    deliveries: Vec<(Channel, serde_json::Value)>,
) -> Result<Vec<Task>> {
    let now = Utc::now();
    let specs = deliveries
        .into_iter()
        .map(|(channel, payload)| TaskSpec { kind: TaskKind::Deliver { channel, attempt: 1, payload }, due: now });
    insert(tx, node, op, specs).await
}
