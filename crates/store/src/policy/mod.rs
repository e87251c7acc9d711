//! The store's decisions, written once above the backends. Each public
//! function is one [`crate::Store`] write, run over a backend's [`Tx`]
//! inside its transaction; a backend only opens, commits or rolls back.
//!
//! - `accept` — a new operation: idempotency replays, then the
//!   concurrency policy (reject, queue, supersede).
//! - `transition` — one state-machine change, and letting the next queued
//!   operation start when one ends.
//! - `tasks` — new tasks, and which are leased to this node at once.
//! - `inbox` — the subject's notification rewritten; marking read.
//! - `dead_letters` — steps given up on (with every attempt's error), held
//!   tasks set aside, redrives.
//! - [`broker`] — the broker's: publish, subscriptions, leases, acks,
//!   nacks, dead letters, over [`TopicsTx`].
//! - `instances` — a service instance's registration: new, a heartbeat,
//!   or a change.
//!
//! [`Tx`]: crate::tx::Tx
//! [`TopicsTx`]: crate::tx::TopicsTx

mod accept;
pub mod broker;
mod dead_letters;
mod inbox;
mod instances;
mod tasks;
mod transition;

pub use accept::accept;
pub use dead_letters::{dead_letter, redrive_task};
pub use inbox::mark_read;
pub use instances::put_instance;
pub use transition::{answer, decide, transition};

/// A networked backend runs the policy inside its async `Store` methods,
/// which must be `Send`: so must every policy future, for any `Send` `Tx`.
/// Checked here, where no such backend exists yet to check it.
#[cfg(test)]
#[allow(dead_code)]
fn policy_futures_are_send<T: crate::tx::Tx + Send>(
    tx: &mut T,
    node: &crate::Node,
    new: crate::NewOperation,
    f: crate::TransitionFn,
    letter: &crate::DeadLetter,
    instance: &crate::RegisteredInstance,
) {
    fn send<F: Send>(_: F) {}
    let id = herald_core::OperationId::new(chrono::Utc::now(), [0; 10]);
    send(accept(tx, node, new));
    send(transition(tx, node, &id, None, f));
    send(dead_letter(tx, node, crate::TaskId { row: 1, epoch: 0 }, letter));
    send(redrive_task(tx, node, 1, &id, herald_core::TaskKind::Start));
    send(mark_read(tx, "subject", None));
    send(put_instance(tx, instance));
}
