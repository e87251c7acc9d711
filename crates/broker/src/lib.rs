//! herald's asynchronous half: topics that keep events durably, and
//! subscriptions that hand each event to their consumers at least once.
//!
//! # Layout
//!
//! - [`engine`] — what a broker on a server of its own is configured
//!   with, and how connecting to it fails.
//! - [`dead`] — herald's one dead-letter list, as the brokers on servers
//!   of their own hand it their dead letters.
//! - [`event`] — CloudEvents 1.0: parsing (structured and binary mode) and checks.
//! - [`ledger`] — what a broker on a server of its own keeps in herald's
//!   store: publish dedupe and `seq`, subscription definitions.
//! - [`subscription`] — what a subscription is: topic, filter, push or pull, retry.
//! - [`wake`] — waking a process's consumers that wait for a subscription,
//!   shared by the brokers on servers of their own.
//! - [`Broker`] — the one trait every backend implements (embedded on the
//!   store, on NATS JetStream, on RabbitMQ), with the semantics below.
//! - `contract` (feature `contract`) — the tests every backend must pass.
//!
//! # The contract
//!
//! - `publish` is durable when it returns; an event whose `source` and `id`
//!   were published to the topic within the dedupe window is not stored
//!   again, and the answer says so.
//! - Each subscription gets every event published after it was created
//!   that its filter lets through, at least once.
//! - Events with the same ordering key (the `partitionkey` extension, else
//!   `subject`) go out in publish order, one at a time per subscription;
//!   other keys proceed beside them.
//! - A pulled event is the puller's for its lease; unacknowledged, it goes
//!   out again when the lease ends. A `nack` brings it back after a delay
//!   (the subscription's backoff, or the one given). After the last attempt
//!   it becomes a dead letter, with every attempt's error. An event given
//!   back as `Unsent` never reached its consumer: its attempt is not
//!   counted.
//! - No two pullers hold the same event at the same time.

pub mod dead;
pub mod engine;
pub mod event;
pub mod ledger;
pub mod subscription;
pub mod wake;

#[cfg(feature = "contract")]
pub mod contract;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use dead::{DeadEvent, DeadLetters};
pub use engine::{DEFAULT_PARTITIONS, EngineConfig, EngineError};
pub use event::{CloudEvent, EventError};
pub use ledger::{Claim, Claimed, Confirmed, Ledger};
pub use subscription::{Delivery, RawSubscription, Subscription, SubscriptionError};
pub use wake::Wakeups;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("there is no subscription `{0}`")]
    UnknownSubscription(String),
    #[error("the broker's storage failed: {0}")]
    Storage(String),
}

/// What publishing one event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Published {
    pub id: String,
    pub source: String,
    /// Its place in the topic (publish order).
    pub seq: u64,
    /// The same `source` and `id` were published within the dedupe window:
    /// nothing new was stored, and `seq` is the first copy's.
    pub duplicate: bool,
}

/// An event handed to a consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    /// Answers `:ack` or `:nack`; good for this lease only.
    pub ack_id: String,
    /// 1 on the first delivery.
    pub attempt: u32,
    pub seq: u64,
    pub published_at: DateTime<Utc>,
    pub event: CloudEvent,
}

/// What a `nack` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Nacked {
    /// Will go out again.
    pub retrying: usize,
    /// Out of attempts: moved to the dead letters.
    pub dead_lettered: usize,
    /// Ack ids that no longer hold a lease (it ended, or was answered).
    pub unknown: Vec<String>,
}

/// How a subscription is keeping up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stats {
    /// Events waiting to go out (first time or again).
    pub pending: u64,
    /// Events out with a consumer, not yet answered.
    pub in_flight: u64,
    /// How long the oldest unacknowledged event has waited, in milliseconds.
    pub lag_ms: u64,
    pub dead_letters: u64,
}

/// When an event given back by its consumer goes out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// After the subscription's backoff for the next attempt.
    Backoff,
    After(Duration),
    /// Never: it cannot be processed, so it goes to the dead letters now.
    Never,
    /// It never reached the consumer (herald held it back, or could not
    /// connect): after this long it goes out again as the same attempt,
    /// which is not counted, whatever the attempts left.
    Unsent(Duration),
}

/// The partition of an ordering key among `partitions`: FNV-1a, stable
/// across processes, releases and backends (a change would split a key's
/// events across two partitions, and their order with them). Shared by the
/// NATS and RabbitMQ backends.
pub fn key_partition(key: &str, partitions: u16) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % u32::from(partitions.max(1))) as u16
}

/// Where a broker on a server of its own keeps an event of a topic: with
/// the keyless ones, or in its key's partition. Written `u` or `k{n}` in
/// the names of streams, subjects, consumers and queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Events without an ordering key: many out at once.
    Keyless,
    /// Events whose key hashes to this partition: one out at a time.
    Key(u16),
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Keyless => f.write_str("u"),
            Part::Key(n) => write!(f, "k{n}"),
        }
    }
}

/// A prefix a broker on a server of its own names everything under: 1-32
/// letters, digits or `_`. It holds no separator (`-`, `.`), so no name
/// under one prefix is a name under another.
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty() && prefix.len() <= 32 && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Did a put create, change or leave a subscription as it was?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    Updated,
    Unchanged,
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Appends `events` to `topic`, in order, and queues each for every
    /// subscription whose filter lets it through. Durable when it returns.
    async fn publish(&self, topic: &str, events: Vec<CloudEvent>) -> Result<Vec<Published>>;

    async fn put_subscription(&self, sub: &Subscription) -> Result<Put>;

    /// Removes a subscription and every event still waiting for it.
    async fn delete_subscription(&self, name: &str) -> Result<bool>;

    async fn subscription(&self, name: &str) -> Result<Option<Subscription>>;

    async fn subscriptions(&self) -> Result<Vec<Subscription>>;

    /// Leases up to `max` events that are due to the caller for `lease`.
    /// An event out of attempts when its lease ends is dead-lettered here
    /// instead of going out again.
    async fn pull(&self, sub: &str, max: usize, lease: Duration) -> Result<Vec<Message>>;

    /// Acknowledges; answers the ack ids that held no lease.
    async fn ack(&self, sub: &str, ack_ids: &[String]) -> Result<Vec<String>>;

    /// Gives leased events back to go out again as `redelivery` says, or
    /// to the dead letters when out of attempts. `error` is kept with the
    /// attempt.
    async fn nack(&self, sub: &str, ack_ids: &[String], redelivery: Redelivery, error: &str) -> Result<Nacked>;

    /// Queues an event again for one subscription (a dead letter redriven),
    /// as a first attempt.
    async fn redeliver(&self, sub: &str, event: CloudEvent) -> Result<()>;

    async fn stats(&self, sub: &str) -> Result<Stats>;

    /// When the subscription next has an event due, if none is due now: a
    /// backoff or a lease ending. `None` when nothing waits at all.
    async fn next_due(&self, sub: &str) -> Result<Option<DateTime<Utc>>>;

    /// Notified whenever the subscription may have new events due, so
    /// consumers wait without polling.
    fn wakeup(&self, sub: &str) -> Arc<tokio::sync::Notify>;

    /// Housekeeping, run every so often: forgets event ids past the dedupe
    /// window and events no subscription still owes.
    async fn maintain(&self) -> Result<()>;
}
