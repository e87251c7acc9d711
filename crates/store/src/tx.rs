//! What a backend does inside one write transaction: rows, and nothing
//! decided. [`crate::policy`] decides (idempotency replays, concurrency,
//! inbox rewrites, dead-letter histories) over these methods, once for
//! every backend.
//!
//! The methods return futures so a networked backend (PostgreSQL over sqlx)
//! can await its database. They are not `async_trait`: the policy is
//! generic over the backend's `Tx`, so no call boxes its future. Each
//! future is `Send`, so the policy's are too, as a `Store` method's must be.
//! A backend whose calls finish at once (SQLite, on its writer thread)
//! does the work before it returns and hands back a ready future.
//!
//! Ids are typed; text that cannot be read back as one is
//! [`crate::Error::Corrupt`], like any other unreadable row.

use std::future::Future;

use herald_core::{Event, Operation, OperationId, TaskKind, Time, concurrency::Active, notify::Notification};

use crate::{DeadLetter, DeadLetterKind, IdempotencyKey, RegisteredInstance, Result, TaskId};

/// A task's holder and until when, as it is written.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub until: Time,
}

/// One write transaction of a backend. An `Err` from a policy function
/// means the backend rolls back all this transaction wrote.
pub trait Tx {
    // Operations.

    fn load(&mut self, id: &OperationId) -> impl Future<Output = Result<Option<Operation>>> + Send;

    /// [`Tx::load`], then, only if the operation is there,
    /// [`Tx::delete_task`] of `consume`'s task and owner: the operation,
    /// and whether the task went (`true` with none to consume). One call,
    /// so a networked backend can do both in one round trip.
    fn load_consuming(
        &mut self,
        id: &OperationId,
        consume: Option<(TaskId, &str)>,
    ) -> impl Future<Output = Result<Option<(Operation, bool)>>> + Send;

    fn insert_op(&mut self, op: &Operation) -> impl Future<Output = Result<()>> + Send;

    /// Writes the operation's state over the stored one.
    fn update_op(&mut self, op: &Operation) -> impl Future<Output = Result<()>> + Send;

    /// Operations not final with this workflow and concurrency key, oldest
    /// (lowest id) first, each with [`Operation::is_queued`] as last written.
    fn active_with_key(&mut self, workflow: &str, key: &str) -> impl Future<Output = Result<Vec<Active>>> + Send;

    /// The operation an idempotency key was first used for, with that
    /// request's digest.
    fn idempotency(
        &mut self,
        workflow: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<(OperationId, String)>>> + Send;

    fn insert_idempotency(
        &mut self,
        workflow: &str,
        key: &IdempotencyKey,
        op: &OperationId,
        at: Time,
    ) -> impl Future<Output = Result<()>> + Send;

    // The timeline.

    fn insert_events(&mut self, op: &OperationId, events: &[Event]) -> impl Future<Output = Result<()>> + Send;

    /// Events with `seq > after`, oldest first; unreadable ones left out.
    fn events(&mut self, op: &OperationId, after: u64, limit: usize)
    -> impl Future<Output = Result<Vec<Event>>> + Send;

    // Tasks.

    /// A new task, held by `lease.owner` when a lease is given; its id.
    fn insert_task(
        &mut self,
        op: &OperationId,
        kind: &TaskKind,
        due: Time,
        lease: Option<Lease<'_>>,
    ) -> impl Future<Output = Result<TaskId>> + Send;

    /// Deletes the task if `owner` holds it; whether it did.
    fn delete_task(&mut self, id: TaskId, owner: &str) -> impl Future<Output = Result<bool>> + Send;

    // The inbox.

    /// The subject's next change number (a counter per subject, from 1).
    fn next_version(&mut self, subject: &str) -> impl Future<Output = Result<u64>> + Send;

    /// Writes the notification, or rewrites the one with its id: version,
    /// read, notice and `updated_at` change; the rest stays as first written.
    fn upsert_notification(&mut self, subject: &str, n: &Notification) -> impl Future<Output = Result<()>> + Send;

    fn unread(&mut self, subject: &str) -> impl Future<Output = Result<u64>> + Send;

    /// Ids of the subject's unread notifications (only `only`, if given),
    /// oldest change first.
    fn unread_ids(&mut self, subject: &str, only: Option<&str>) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Marks a notification read at change `version`; it as it now is.
    fn mark_notification_read(
        &mut self,
        id: &str,
        version: u64,
    ) -> impl Future<Output = Result<Option<Notification>>> + Send;

    // Dead letters.

    /// Stores a letter (its `id` is ignored); the id it got.
    fn insert_dead_letter(&mut self, letter: &DeadLetter) -> impl Future<Output = Result<i64>> + Send;

    fn delete_dead_letter(&mut self, id: i64) -> impl Future<Output = Result<bool>> + Send;

    /// Deletes the letters of one step (or its compensation) of an operation.
    fn delete_step_dead_letters(
        &mut self,
        op: &OperationId,
        step: &str,
        kind: DeadLetterKind,
    ) -> impl Future<Output = Result<()>> + Send;

    // Registered service instances.

    /// The stored instance, expired or not; locked to the end of the
    /// transaction where the backend locks rows.
    fn instance(&mut self, service: &str, id: &str) -> impl Future<Output = Result<Option<RegisteredInstance>>> + Send;

    /// Writes the instance, over the one with its service and id.
    fn upsert_instance(&mut self, instance: &RegisteredInstance) -> impl Future<Output = Result<()>> + Send;
}

mod topics;
pub use topics::{DeliveryRow, TopicsTx};
