//! What a broker on a server of its own keeps in herald's store because its
//! server does not keep it for herald: publish dedupe and `seq` (RabbitMQ
//! has neither), and subscription definitions (RabbitMQ has no key-value
//! store). The store is the truth: every herald process sharing it agrees
//! on each `seq` and sees each definition at once, and none of it depends
//! on the broker server surviving an unclean stop. In herald the store
//! implements it (`herald_store::BrokerLedger`).
//!
//! Everything is kept under a `scope` (a broker's prefix), so deployments
//! sharing a store keep apart.

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

/// One event of a publish, asking for its `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub source: String,
    pub id: String,
    /// A redrive: never a duplicate, and never recorded as published.
    pub fresh: bool,
}

/// What a claim got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// Publish it with this `seq`, then [`Ledger::confirm`] it.
    New(u64),
    /// The topic, source and id were confirmed within the window (or come
    /// earlier in the same batch): do not publish it; this is the first
    /// copy's `seq`.
    Duplicate(u64),
}

/// A publish the server confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    pub source: String,
    pub id: String,
    pub seq: u64,
}

#[async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// A claim per event, in order, in one round trip. Each `seq` is new in
    /// the scope for everyone sharing the ledger, and seqs grow in the
    /// order claims are made. Only a confirmed publish makes a later claim
    /// a duplicate: a claim whose publish never was confirmed swallows no
    /// republish.
    async fn claim(&self, scope: &str, topic: &str, claims: &[Claim]) -> Result<Vec<Claimed>>;

    /// Records publishes the server confirmed: a claim of the same topic,
    /// source and id within `window` from now is a duplicate of the first
    /// one confirmed. Durable when it returns.
    async fn confirm(&self, scope: &str, topic: &str, published: &[Confirmed], window: Duration) -> Result<()>;

    /// Forgets confirmed publishes whose window has passed; how many.
    async fn forget(&self, scope: &str) -> Result<u64>;

    /// Stores a subscription's definition (its `RawSubscription` as JSON),
    /// over any before it. Durable, and read by everyone, when it returns.
    async fn put_definition(&self, scope: &str, name: &str, spec: &str) -> Result<()>;

    /// Removes a definition; whether there was one. Its name is still
    /// among [`Ledger::names`].
    async fn delete_definition(&self, scope: &str, name: &str) -> Result<bool>;

    async fn definition(&self, scope: &str, name: &str) -> Result<Option<String>>;

    /// Every definition in the scope, by name.
    async fn definitions(&self, scope: &str) -> Result<Vec<(String, String)>>;

    /// Every name ever put in the scope, deleted or not: what removing the
    /// scope's queues must look for.
    async fn names(&self, scope: &str) -> Result<Vec<String>>;

    /// Forgets everything kept under the scope.
    async fn drop_scope(&self, scope: &str) -> Result<()>;
}
