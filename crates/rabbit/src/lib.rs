//! herald's topics and subscriptions on RabbitMQ (3.10 or later): the
//! [`herald_broker::Broker`] trait over a topic exchange and quorum
//! queues, passing the same contract suite as the embedded and NATS
//! brokers. What RabbitMQ does not keep for herald (publish dedupe and
//! `seq`, subscription definitions) is kept in herald's store, through a
//! [`herald_broker::Ledger`]. docs/MESSAGING.md says how it keeps each
//! promise.
//!
//! # Layout
//!
//! - [`names`] — where everything lives: exchanges and queues, all under
//!   one prefix.
//! - [`ack_id`] — ack ids that name the holding process and the lease.
//! - `headers` — what herald stamps on each event (its `seq`, topic, time).
//! - `defs` — subscription definitions, read from the ledger and kept a
//!   moment for the calls that use them.
//! - [`topology`] — the prefix's exchanges, a subscription's queues (public
//!   for the bench's raw yardstick, which makes its queue as herald does).
//! - `held` — what this process holds of a subscription, and its channel.
//! - `publish` — claims, sends and confirms: what `publish` and redrives share.
//! - `pull` — leasing events: per-key order, filters, burying the exhausted.
//! - `answer` — acks, nacks, dead letters and redrives.
//! - `inbox` — this process's queue: acks forwarded from other processes,
//!   and their "look now" signals.
//! - `dead` — moving what RabbitMQ dead-lettered into herald's dead letters.
//! - `stats` — how a subscription keeps up, and when it is next due.
//! - `wake` — waking waiting consumers.
//! - `setup` — connecting (a session per connection, opened again when
//!   lost), and removing a prefix ([`destroy`]).
//! - `broker` — the trait's methods, each a few calls into the above.

pub mod ack_id;
mod answer;
mod broker;
mod dead;
mod defs;
mod headers;
mod held;
mod inbox;
pub mod names;
mod publish;
mod pull;
mod setup;
mod stats;
pub mod topology;
mod wake;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use herald_broker::{DeadLetters, Ledger};

pub use setup::destroy;

use crate::{held::Runtime, names::Names, wake::Wakeups};

pub use herald_broker::engine::{DEFAULT_PARTITIONS, EngineConfig as RabbitConfig, EngineError as Error, redact};

/// The engine's name in what herald says about it.
pub(crate) const ENGINE: &str = "RabbitMQ";

/// herald's broker on RabbitMQ. Cheap to share; every method may be
/// called from many tasks, and from many herald processes on the same
/// server and prefix.
///
/// Its connection is a session (`Inner`): when the connection is lost (the
/// server restarted, the network failed), the next call opens a new one,
/// with everything the prefix needs, and carries on; what this process
/// held went back to the queues with the old connection. Calls made while
/// the server is away fail.
pub struct RabbitBroker {
    config: RabbitConfig,
    dead_letters: Arc<dyn DeadLetters>,
    ledger: Arc<dyn Ledger>,
    /// Definitions as last read, kept across sessions: the ledger is the
    /// truth, whatever happened to the connection.
    defs: Arc<defs::Defs>,
    /// This process's name among those on the prefix (16 hex digits),
    /// kept across sessions so that ack ids reach it.
    process: String,
    wakeups: Arc<Wakeups>,
    session: std::sync::RwLock<Arc<Inner>>,
    reconnecting: tokio::sync::Mutex<()>,
    closed: std::sync::atomic::AtomicBool,
}

/// One connection to RabbitMQ and what herald runs on it.
pub(crate) struct Inner {
    pub conn: Arc<lapin::Connection>,
    pub names: Names,
    pub process: String,
    /// In confirm mode: every publish waits for RabbitMQ's confirm.
    pub publisher: lapin::Channel,
    /// Held from a publish's claims until its events are sent, so that
    /// events go to their queues in the order of their `seq`.
    pub publishing: tokio::sync::Mutex<()>,
    /// Held while a subscription's channel is started, so there is one.
    pub starting: tokio::sync::Mutex<()>,
    /// Publish claims and definitions: herald's store.
    pub ledger: Arc<dyn Ledger>,
    pub defs: Arc<defs::Defs>,
    pub dedupe_window: Duration,
    pub dead: Arc<dyn DeadLetters>,
    pub runtimes: Mutex<HashMap<String, Arc<Runtime>>>,
    /// Subscriptions whose queues this process is deleting: no channel
    /// starts consuming them meanwhile (see `broker`).
    pub going: Mutex<std::collections::HashSet<String>>,
    pub wakeups: Arc<Wakeups>,
    pub calls: inbox::Calls,
    /// The session's tasks: inbox, replies, dead letters.
    pub tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Inner {
    /// Can this session still serve? Its connection and its publishing
    /// channel must be up.
    pub fn healthy(&self) -> bool {
        self.conn.status().connected() && self.publisher.status().connected()
    }

    /// The scope of what the ledger keeps for this prefix.
    pub fn scope(&self) -> &str {
        self.names.prefix()
    }

    fn stop(&self) {
        for t in self.tasks.lock().expect("tasks").drain(..) {
            t.abort();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for RabbitBroker {
    fn drop(&mut self) {
        let session = self.session.read().expect("session").clone();
        session.stop();
        // Closing returns what this process held to the queues at once,
        // rather than when the server notices the socket gone.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = session.conn.close(200, "herald stopped").await;
            });
        }
    }
}

impl RabbitBroker {
    /// Closes the connection: whatever this process still holds goes back
    /// to its queues now (as it would when the process dies), for others.
    /// Calls after it fail.
    pub async fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Relaxed);
        let session = self.session.read().expect("session").clone();
        session.stop();
        let _ = session.conn.close(200, "herald stopped").await;
    }

    /// The current session, or a new one when it can no longer serve.
    pub(crate) async fn session(&self) -> herald_broker::Result<Arc<Inner>> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(storage("the broker was closed"));
        }
        let current = self.session.read().expect("session").clone();
        if current.healthy() {
            return Ok(current);
        }
        let _one = self.reconnecting.lock().await;
        let current = self.session.read().expect("session").clone();
        if current.healthy() {
            return Ok(current);
        }
        current.stop();
        let fresh =
            Inner::open(&self.config, self.kept(), &self.process, self.wakeups.clone()).await.map_err(storage)?;
        tracing::warn!(prefix = %self.config.prefix, "reconnected to RabbitMQ");
        *self.session.write().expect("session") = fresh.clone();
        // What this process held went back to the queues: look again.
        self.wakeups.wake_all();
        Ok(fresh)
    }
}

/// What a session keeps in herald's store, shared by every session of a
/// broker.
#[derive(Clone)]
pub(crate) struct Kept {
    pub dead_letters: Arc<dyn DeadLetters>,
    pub ledger: Arc<dyn Ledger>,
    pub defs: Arc<defs::Defs>,
}

impl RabbitBroker {
    fn kept(&self) -> Kept {
        Kept { dead_letters: self.dead_letters.clone(), ledger: self.ledger.clone(), defs: self.defs.clone() }
    }
}

/// A process name: 16 hex digits.
pub(crate) fn valid_process(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn storage(e: impl std::fmt::Display) -> herald_broker::Error {
    herald_broker::Error::Storage(format!("RabbitMQ: {e}"))
}

/// A publisher confirm as a result: a nack is an error.
pub(crate) fn confirmed(c: lapin::Result<lapin::publisher_confirm::Confirmation>) -> herald_broker::Result<()> {
    match c.map_err(storage)? {
        lapin::publisher_confirm::Confirmation::Nack(_) => Err(storage("the server refused a publish (nack)")),
        _ => Ok(()),
    }
}
