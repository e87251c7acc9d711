//! herald's topics and subscriptions on NATS JetStream (server 2.9 or
//! later): the [`herald_broker::Broker`] trait over one stream per topic
//! and durable pull consumers, passing the same contract suite as the
//! embedded broker. docs/MESSAGING.md says how it keeps each promise.
//!
//! A crate of its own rather than a feature of `herald-broker`: the trait's
//! crate stays free of a network client, so the store and the engine build
//! without one, and the server is the one place that picks a backend.
//!
//! # Layout
//!
//! - [`names`] — where everything lives: streams, subjects, consumers,
//!   buckets, all under one prefix.
//! - [`ack_id`] — ack ids that carry the server's ack subject and the lease.
//! - `setup` — connecting, the buckets and streams herald needs, and
//!   removing them again ([`destroy`]).
//! - `topology` — a topic's stream, a subscription's consumers.
//! - `fetch` — pull requests, and the mailbox their replies come to.
//! - `pull` — leasing events: per-key order, filters, burying the
//!   exhausted.
//! - `answer` — acks, nacks and redrives.
//! - `answered` — deliveries this process answered: one answer each.
//! - `replies` — the answers to a batch of messages, on one subscription.
//! - `dead` — dead letters, handed to herald's one list.
//! - `records` — what a delivery's attempts left behind (errors, unsent
//!   give-backs), in a KV bucket.
//! - `stats` — how a subscription keeps up, and when it is next due.
//! - `wake` — waking waiting consumers, here and in other herald processes.
//! - `broker` — the trait's methods, each a few calls into the above.

pub mod ack_id;
mod answer;
mod answered;
mod broker;
mod dead;
mod fetch;
pub mod names;
mod pull;
mod records;
mod replies;
mod setup;
mod stats;
mod topology;
mod wake;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, atomic::AtomicUsize},
    time::Duration,
};

use async_nats::jetstream::{self, kv};

pub use setup::destroy;

use crate::{names::Names, wake::Wakeups};

pub use herald_broker::engine::{DEFAULT_PARTITIONS, EngineConfig as NatsConfig, EngineError as Error, redact};

/// The engine's name in what herald says about it.
pub(crate) const ENGINE: &str = "NATS JetStream";

/// herald's broker on a NATS JetStream server. Cheap to share; every
/// method may be called from many tasks, and from many herald processes
/// on the same server and prefix.
pub struct NatsBroker {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) names: Names,
    pub(crate) dedupe_window: Duration,
    /// Subscription definitions, the truth for every herald process.
    pub(crate) subs: kv::Store,
    pub(crate) records: records::Records,
    /// Topics whose stream this process has seen exist.
    pub(crate) streams: Mutex<HashSet<String>>,
    pub(crate) wakeups: Arc<Wakeups>,
    /// Turns the order partitions are tried in, so none waits behind the others.
    pub(crate) turn: AtomicUsize,
    pub(crate) mailbox: Arc<fetch::Mailbox>,
    /// Where the server's answers to publishes come.
    pub(crate) replies: Arc<replies::Replies>,
    /// Each subscription's consumers' `ack_wait`, as last read.
    pub(crate) ack_waits: Mutex<HashMap<String, pull::KnownAckWait>>,
    /// Deliveries answered here, until their leases end.
    pub(crate) answered: answered::Answered,
    /// herald's one dead-letter list.
    pub(crate) dead: Arc<dyn herald_broker::DeadLetters>,
    listener: tokio::task::AbortHandle,
    postman: tokio::task::AbortHandle,
    /// Routes the answers to publishes.
    router: tokio::task::AbortHandle,
}

impl Drop for NatsBroker {
    fn drop(&mut self) {
        self.listener.abort();
        self.postman.abort();
        self.router.abort();
    }
}

fn storage(e: impl std::fmt::Display) -> herald_broker::Error {
    herald_broker::Error::Storage(format!("NATS: {e}"))
}
