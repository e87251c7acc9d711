//! The broker's decisions, written once above the backends, over a
//! backend's [`TopicsTx`] inside its transaction (see
//! `herald_broker::Broker` for the contract they keep).
//!
//! - `topics` — publishing (the dedupe window, one delivery per matching
//!   subscription, per-key `ready` order), subscription definitions, and
//!   housekeeping.
//! - `deliveries` — what a subscription owes: leases (an ended one counts
//!   as a failed attempt), acks, nacks and their redelivery, burial in the
//!   dead letters, redrives, stats.
//!
//! [`TopicsTx`]: crate::tx::TopicsTx

mod deliveries;
mod topics;

pub use deliveries::{ack, nack, pull, redeliver, stats};
pub use topics::{DEFAULT_DEDUPE_WINDOW, delete, prune, publish, put, subscription};

/// Broker futures run inside async trait methods too: `Send` for any
/// `Send` transaction.
#[cfg(test)]
#[allow(dead_code)]
fn broker_futures_are_send<T: crate::tx::TopicsTx + Send>(
    tx: &mut T,
    sub: &herald_broker::Subscription,
    events: &[herald_broker::CloudEvent],
) {
    fn send<F: Send>(_: F) {}
    let now = chrono::Utc::now();
    send(publish(tx, &[sub], "t", events, DEFAULT_DEDUPE_WINDOW, now));
    send(put(tx, sub, now));
    send(delete(tx, "s"));
    send(prune(tx, now));
    send(pull(tx, sub, 1, std::time::Duration::ZERO, now));
    send(ack(tx, "s", &[]));
    send(nack(tx, sub, &[], herald_broker::Redelivery::Never, "", now));
    send(redeliver(tx, sub, &events[0], now));
    send(stats(tx, "s", now));
}
