//! herald's durable storage.
//!
//! # Layout
//!
//! - [`Store`] — the one trait the engine and API use; every state change is
//!   one call and one transaction.
//! - [`open`] — the store and the broker for a URL (`sqlite://…`,
//!   `postgres://…`): the one way a server reaches a backend.
//! - [`policy`] — what every write decides, once for all backends:
//!   idempotency replays, reject/queue/supersede, inbox rewrites,
//!   dead-letter histories, which new tasks this node holds; and the
//!   broker's (`policy::broker`): dedupe, fan-out, per-key order, leases,
//!   retries, burial.
//! - [`tx`] — the rows a backend writes inside one transaction ([`tx::Tx`],
//!   and [`tx::TopicsTx`] for topics); the policy runs over them.
//! - `wakeups` — who waits for which subscription on this node.
//! - [`sqlite`] — the embedded backend: a single writer thread that commits
//!   many callers' transactions with one fsync (group commit), and a pool of
//!   read connections (WAL lets reads run beside the writer). It is also
//!   the embedded [`herald_broker::Broker`]: topics on the same file.
//! - [`postgres`] — the shared backend: several nodes on one PostgreSQL
//!   database, a sqlx pool; a node's accepts and transitions of one moment
//!   share a transaction (group commit, each in a savepoint of its own if
//!   it runs statements), other writes one transaction each; tasks leased
//!   with `FOR UPDATE SKIP LOCKED`, keys kept by constraints and advisory
//!   locks.
//!   It is a [`herald_broker::Broker`] too: topics in the same database,
//!   shared by every node.
//! - [`hints`] — "look now" between nodes sharing a store.
//! - [`EventDeadLetters`], [`BrokerLedger`] — the store as what a broker
//!   on a server of its own keeps here: its dead letters; its publish
//!   dedupe, `seq` and subscription definitions.
//! - `codec`, `filters` — what the SQL backends share: how values are kept
//!   and read back (unreadable rows are [`Error::Corrupt`]), and the
//!   conditions of filtered lists.
//! - `contract` (feature `contract`) — the tests every backend must pass,
//!   as the `contract_tests!` macro.
//!
//! A backend implements [`tx::Tx`] and the reads, and its [`Store`] runs
//! each write as one `policy` call inside one transaction. The operation
//! state machine lives in `herald-core`; the store runs the closure the
//! engine gives it inside the transaction, so a read-modify-write of an
//! operation can never interleave with another.

mod codec;
#[cfg(feature = "contract")]
pub mod contract;
mod dead_events;
mod filters;
pub mod hints;
mod ledger;
mod open;
pub mod policy;
pub mod postgres;
pub mod sqlite;
pub mod tx;
mod types;
mod wakeups;

pub use dead_events::EventDeadLetters;
pub use ledger::BrokerLedger;
pub use open::{Opened, StoreConfig, open};
pub use types::*;

use async_trait::async_trait;
use herald_core::{
    Event, Operation, OperationId,
    notify::{InboxChange, Notification},
};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who this node is and how long its claims on tasks last: any backend's.
#[derive(Clone)]
pub struct Node {
    pub id: String,
    pub lease: chrono::Duration,
}

/// How long a node's claim on a task lasts before another may take it.
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backend failed (a full disk, a lost connection); what it said.
    #[error("storage: {0}")]
    Backend(String),
    /// Stored data that cannot be read back: reported, and the row skipped
    /// where a list or a loop can go on without it.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// A store URL no backend serves.
    #[error("{0}")]
    Unsupported(String),
    /// herald's own fault: a storage thread that failed, or a call the
    /// store cannot honour.
    #[error("storage: {0}")]
    Internal(String),
    #[error("storage is closed")]
    Closed,
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Locked(String),
    /// A database file herald did not make, or one a newer herald wrote:
    /// refused before anything in it is changed.
    #[error("{0}")]
    NotOurs(String),
    /// Another node's commit took a unique key this write needed (an
    /// idempotency key): the write was rolled back, and run again it
    /// answers as the policy answers once the key is taken.
    #[error("storage: {0}")]
    Raced(String),
    /// A transition the state machine refused; never leaves the store.
    #[error("refused: {0}")]
    Rejected(herald_core::Rejection),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Persists a new operation with its first events and tasks, honouring
    /// its idempotency key and concurrency policy. Durable when it returns.
    async fn accept(&self, new: NewOperation) -> Result<Accepted>;

    /// Runs `f` on the operation inside one transaction and persists what it
    /// returns. With `consume`, the task is deleted in the same transaction,
    /// and nothing happens if this node no longer holds it.
    async fn transition(&self, id: &OperationId, consume: Option<TaskId>, f: TransitionFn) -> Result<TransitionResult>;

    /// A choice for an `awaiting_decision` operation: [`Store::transition`],
    /// and when `f` chose to replace the running one, every other active
    /// operation with its key superseded (by `supersede`) in the same
    /// transaction.
    async fn decide(
        &self,
        id: &OperationId,
        consume: Option<TaskId>,
        f: TransitionFn,
        supersede: SupersedeFn,
    ) -> Result<TransitionResult>;

    /// Leases up to `limit` due tasks to this node.
    async fn claim_due(&self, limit: usize) -> Result<Vec<Task>>;

    /// Gives back every task this node holds (graceful shutdown).
    async fn release(&self) -> Result<()>;

    async fn get(&self, id: &OperationId) -> Result<Option<Operation>>;

    /// Timeline events with `seq > after`, oldest first.
    async fn events(&self, id: &OperationId, after: u64, limit: usize) -> Result<Vec<Event>>;

    async fn list(&self, query: ListQuery) -> Result<Vec<Operation>>;

    /// Records a workflow definition; answers whether it was new or changed.
    async fn put_workflow(&self, name: &str, version: u32, source: &str) -> Result<bool>;

    /// Every stored workflow definition: (name, version, source JSON).
    async fn workflows(&self) -> Result<Vec<(String, u32, String)>>;

    /// The secret kept with the data (it signs callback tokens): the stored
    /// one, or `candidate` if none was stored yet.
    async fn secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>>;

    /// The earliest due time of any task nobody holds, to know when to look again.
    async fn next_due(&self) -> Result<Option<herald_core::Time>>;

    /// What waits at `now`: flagged operations, due tasks, dead letters
    /// by kind. Read at each scrape of `/metrics`: counts over indexes,
    /// never a scan of every operation.
    async fn gauges(&self, now: herald_core::Time) -> Result<Gauges>;

    /// What other nodes sharing this store changed, as hints to look at
    /// the store now; `None` where no other node can share it.
    fn hints(&self) -> Option<tokio::sync::broadcast::Receiver<hints::Hint>> {
        None
    }

    /// A subject's notifications: newest change first (`before` a version,
    /// for pages), or oldest first `after` a version (for a stream's resume).
    async fn notifications(&self, subject: &str, page: InboxPage) -> Result<Vec<Notification>>;

    async fn unread(&self, subject: &str) -> Result<u64>;

    /// One of a subject's notifications.
    async fn notification(&self, subject: &str, id: &str) -> Result<Option<Notification>>;

    /// After personal data was erased: make sure no older copy of it is
    /// left on disk (write-ahead log, freed pages).
    async fn erase_residue(&self) -> Result<()>;

    /// Deletes a task this node holds, its work done.
    async fn finish_task(&self, id: TaskId) -> Result<bool>;

    /// Gives a held task back, changed, to run again at `due`.
    async fn retry_task(&self, id: TaskId, kind: herald_core::TaskKind, due: herald_core::Time) -> Result<bool>;

    /// Moves a held task that ran out of attempts to the dead letters.
    async fn dead_letter(&self, id: TaskId, letter: DeadLetter) -> Result<bool>;

    /// Adds a dead letter that no task held (an event a broker on a server
    /// of its own gave up on); its id.
    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<i64>;

    /// How many dead letters a subscription has.
    async fn subscription_dead_letters(&self, subscription: &str) -> Result<u64>;

    /// Dead letters, newest first.
    async fn dead_letters(&self, filter: DeadLetterFilter) -> Result<Vec<DeadLetter>>;

    async fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>>;

    /// Drops a dead letter (a person dealt with it, or it was redriven).
    async fn delete_dead_letter(&self, id: i64) -> Result<bool>;

    /// Turns a notification's dead letter back into work: the letter goes
    /// and the task comes, in one transaction. `None` if the letter is gone.
    async fn redrive_task(
        &self,
        dead_letter: i64,
        op: &OperationId,
        kind: herald_core::TaskKind,
    ) -> Result<Option<Task>>;

    /// Marks one notification (or, with `None`, all) of a subject read;
    /// answers each change, for the live streams. Unknown id: empty.
    async fn mark_read(&self, subject: &str, id: Option<&str>) -> Result<Vec<InboxChange>>;

    // Service instances registered at run time, shared by every node on
    // the store.

    /// Stores a registration or its heartbeat; what it was against the one
    /// stored before it ([`RegisteredInstance::against`]). A heartbeat
    /// keeps the first `registered_at`.
    async fn put_instance(&self, instance: &RegisteredInstance) -> Result<Registered>;

    /// Removes a registered instance; whether one was stored.
    async fn delete_instance(&self, service: &str, id: &str) -> Result<bool>;

    /// Every registered instance whose expiry is after `now`, by service
    /// and id.
    async fn instances(&self, now: herald_core::Time) -> Result<Vec<RegisteredInstance>>;

    /// Deletes the instances whose expiry is at or before `now`; how many.
    async fn prune_instances(&self, now: herald_core::Time) -> Result<u64>;

    // What a broker on a server of its own keeps here, under a scope (its
    // prefix): see [`herald_broker::Ledger`], which [`BrokerLedger`]
    // implements with these.

    /// A new `seq` in the scope for each claim, or the `seq` its topic,
    /// source and id were confirmed with if that is still recognised at
    /// `now` (never for a fresh claim), in one transaction. Repeats within
    /// `claims` are the caller's to fold.
    async fn claim_seqs(
        &self,
        scope: &str,
        topic: &str,
        claims: &[herald_broker::Claim],
        now: herald_core::Time,
    ) -> Result<Vec<herald_broker::Claimed>>;

    /// Records confirmed publishes (no two of one source and id), each
    /// recognised from `during.start` (now) until `during.end`; one
    /// already recognised now stays as it is.
    async fn confirm_publishes(
        &self,
        scope: &str,
        topic: &str,
        published: &[herald_broker::Confirmed],
        during: std::ops::Range<herald_core::Time>,
    ) -> Result<()>;

    /// Forgets confirmed publishes no longer recognised at `now`; how many.
    async fn forget_publishes(&self, scope: &str, now: herald_core::Time) -> Result<u64>;

    async fn put_definition(&self, scope: &str, name: &str, spec: &str) -> Result<()>;

    /// Removes a definition, keeping its name; whether there was one.
    async fn delete_definition(&self, scope: &str, name: &str) -> Result<bool>;

    async fn definition(&self, scope: &str, name: &str) -> Result<Option<String>>;

    /// Every name ever put in the scope, by name, with its definition
    /// (`None` once deleted).
    async fn definitions(&self, scope: &str) -> Result<Vec<(String, Option<String>)>>;

    /// Forgets the scope: its seqs, publishes and definitions.
    async fn drop_ledger(&self, scope: &str) -> Result<()>;
}

#[derive(Debug, Clone, Copy)]
pub enum InboxPage {
    Before { version: Option<u64>, limit: usize },
    After { version: u64, limit: usize },
}
