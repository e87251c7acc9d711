//! Hints between nodes sharing a store: "this changed, look now".
//!
//! A hint carries no data, only what to look at, so a lost or repeated
//! hint costs a late or an extra read and never a wrong answer: the store
//! is the truth. A store only one node uses sends none; a shared one
//! ([`crate::postgres`]) sends its commits' hints to every other node.

use herald_core::OperationId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Hint {
    /// The operation's timeline grew.
    #[serde(rename = "o")]
    Operation(OperationId),
    /// The subject's inbox changed.
    #[serde(rename = "i")]
    Inbox(String),
    /// Tasks nobody holds are due.
    #[serde(rename = "t")]
    Tasks,
    /// The subscription has events due.
    #[serde(rename = "s")]
    Subscription(String),
    /// Registered service instances changed.
    #[serde(rename = "r")]
    Services,
    /// Hints may have been missed (the connection that brings them was
    /// lost): look at everything.
    #[serde(rename = "*")]
    Resync,
}

impl Hint {
    /// What other nodes are told of one committed change.
    pub fn of(applied: &crate::Applied, now: herald_core::Time, out: &mut Vec<Hint>) {
        out.push(Hint::Operation(applied.op.id.clone()));
        if let Some(inbox) = &applied.inbox {
            out.push(Hint::Inbox(inbox.0.clone()));
        }
        // Work this node does not hold, due now: any node may take it.
        if applied.tasks.iter().any(|t| !t.owned && t.due <= now) {
            out.push(Hint::Tasks);
        }
        for other in &applied.others {
            Hint::of(other, now, out);
        }
    }
}
