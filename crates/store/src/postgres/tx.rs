//! The policy's [`Tx`] on PostgreSQL: the statements of one transaction,
//! on one pooled connection. The store makes one per write, runs a policy
//! function over it, and [`PgTx::end`]s it: commit on `Ok`, roll back on
//! `Err` ([`super::PgStore`]).
//!
//! Fewer round trips, the same transaction:
//! - it begins (takes a connection, `BEGIN`) at the first statement that
//!   must run, not before;
//! - rows of operations, events and tasks are held ([`Pending`]) and sent
//!   as one statement before the next statement that runs, or at the end;
//!   a new task's id is taken from the sequence beforehand ([`TaskIds`]);
//! - so a write that is only such rows (an accept with no key) is one
//!   statement with no `BEGIN` or `COMMIT`: a statement alone is atomic;
//! - a transition's load and its task's removal are one statement
//!   ([`tasks::load_consuming`]).
//!
//! The transaction is READ COMMITTED; what the policy reads and then
//! writes is kept from racing another node by locks taken as it reads: an
//! operation it loads is locked (`FOR UPDATE`), a concurrency key's
//! holders are read under an advisory lock, an inbox's counter row is
//! locked by its increment, and an idempotency key is a primary key.

use herald_core::{Event, Operation, OperationId, TaskKind, Time, concurrency::Active, notify::Notification};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{instances, pending::Pending, read, rows, tasks, tasks::TaskIds};
use crate::{
    DeadLetter, DeadLetterKind, IdempotencyKey, RegisteredInstance, Result, TaskId,
    tx::{Lease, Tx},
};

/// Where a [`PgTx`]'s statements run.
enum Conn<'c> {
    /// A transaction on the pool, begun when a statement must run.
    Lazy { pool: &'c PgPool, open: Option<Transaction<'static, Postgres>> },
    /// A connection the caller holds, in a transaction of its own or none:
    /// held rows go at once.
    On(&'c mut PgConnection),
}

/// One write transaction of the store (or statements on a caller's
/// connection).
pub struct PgTx<'c> {
    conn: Conn<'c>,
    pending: Pending,
    ids: &'c TaskIds,
}

impl<'c> PgTx<'c> {
    /// A transaction on `pool`, begun when a statement needs it.
    pub fn new(pool: &'c PgPool, ids: &'c TaskIds) -> Self {
        PgTx { conn: Conn::Lazy { pool, open: None }, pending: Pending::default(), ids }
    }

    /// Statements on a connection the caller holds (and commits, if it
    /// began a transaction on it).
    pub fn on(c: &'c mut PgConnection, ids: &'c TaskIds) -> Self {
        PgTx { conn: Conn::On(c), pending: Pending::default(), ids }
    }

    /// The connection, in the transaction (begun now if need be), with
    /// the held rows written: for a statement that must run now.
    pub async fn conn(&mut self) -> Result<&mut PgConnection> {
        let c: &mut PgConnection = match &mut self.conn {
            Conn::Lazy { pool, open } => {
                let tx = match open.take() {
                    Some(tx) => tx,
                    None => pool.begin().await?,
                };
                open.insert(tx)
            }
            Conn::On(c) => c,
        };
        self.pending.send(c).await?;
        Ok(c)
    }

    /// After a row write was held: on a connection the caller holds, it
    /// goes at once.
    async fn held(&mut self) -> Result<()> {
        if let Conn::On(c) = &mut self.conn {
            self.pending.send(c).await?;
        }
        Ok(())
    }

    /// Makes way for a write of `op`'s row: one statement writes a row
    /// once at most, so a write of it that is held goes first.
    async fn before_writing(&mut self, op: &OperationId) -> Result<()> {
        if self.pending.touches(op) {
            self.conn().await?;
        }
        Ok(())
    }

    /// Commits what the policy function wrote if it succeeded (as one
    /// statement alone, if no transaction was needed), and rolls back if
    /// it failed.
    pub async fn end<T>(self, out: Result<T>) -> Result<T> {
        let PgTx { conn, mut pending, .. } = self;
        match (out, conn) {
            (Ok(v), Conn::Lazy { open: Some(mut tx), .. }) => match pending.send(&mut tx).await {
                Ok(()) => {
                    tx.commit().await?;
                    Ok(v)
                }
                Err(e) => {
                    rollback(tx).await;
                    Err(e)
                }
            },
            (Ok(v), Conn::Lazy { pool, open: None }) => {
                if !pending.is_empty() {
                    pending.send(&mut *pool.acquire().await?).await?;
                }
                Ok(v)
            }
            (Ok(v), Conn::On(c)) => pending.send(c).await.map(|()| v),
            (Err(e), Conn::Lazy { open: Some(tx), .. }) => {
                rollback(tx).await;
                Err(e)
            }
            (Err(e), _) => Err(e),
        }
    }
}

async fn rollback(tx: Transaction<'static, Postgres>) {
    if let Err(e) = tx.rollback().await {
        tracing::warn!(error = %e, "a rollback failed; the connection is dropped instead");
    }
}

impl Tx for PgTx<'_> {
    async fn load(&mut self, id: &OperationId) -> Result<Option<Operation>> {
        rows::load(self.conn().await?, id).await
    }

    async fn load_consuming(
        &mut self,
        id: &OperationId,
        consume: Option<(TaskId, &str)>,
    ) -> Result<Option<(Operation, bool)>> {
        let c = self.conn().await?;
        match consume {
            Some((task, owner)) => tasks::load_consuming(c, id, task, owner).await,
            None => Ok(rows::load(c, id).await?.map(|op| (op, true))),
        }
    }

    async fn insert_op(&mut self, op: &Operation) -> Result<()> {
        self.before_writing(&op.id).await?;
        self.pending.insert_op(op)?;
        self.held().await
    }

    async fn update_op(&mut self, op: &Operation) -> Result<()> {
        self.before_writing(&op.id).await?;
        self.pending.update_op(op)?;
        self.held().await
    }

    async fn active_with_key(&mut self, workflow: &str, key: &str) -> Result<Vec<Active>> {
        rows::active_with_key(self.conn().await?, workflow, key).await
    }

    async fn idempotency(&mut self, workflow: &str, key: &str) -> Result<Option<(OperationId, String)>> {
        rows::idempotency(self.conn().await?, workflow, key).await
    }

    async fn insert_idempotency(
        &mut self,
        workflow: &str,
        key: &IdempotencyKey,
        op: &OperationId,
        at: Time,
    ) -> Result<()> {
        rows::insert_idempotency(self.conn().await?, workflow, key, op, at).await
    }

    async fn insert_events(&mut self, op: &OperationId, events: &[Event]) -> Result<()> {
        self.pending.insert_events(op, events)?;
        self.held().await
    }

    async fn events(&mut self, op: &OperationId, after: u64, limit: usize) -> Result<Vec<Event>> {
        read::events(self.conn().await?, op, after, limit).await
    }

    async fn insert_task(
        &mut self,
        op: &OperationId,
        kind: &TaskKind,
        due: Time,
        lease: Option<Lease<'_>>,
    ) -> Result<TaskId> {
        let row = match &mut self.conn {
            Conn::Lazy { open: Some(tx), .. } => self.ids.next(&mut **tx).await?,
            Conn::Lazy { pool, open: None } => self.ids.next(*pool).await?,
            Conn::On(c) => self.ids.next(&mut **c).await?,
        };
        let id = self.pending.insert_task(row, op, kind, due, lease)?;
        self.held().await?;
        Ok(id)
    }

    async fn delete_task(&mut self, id: TaskId, owner: &str) -> Result<bool> {
        tasks::delete(self.conn().await?, id, owner).await
    }

    async fn next_version(&mut self, subject: &str) -> Result<u64> {
        rows::next_version(self.conn().await?, subject).await
    }

    async fn upsert_notification(&mut self, subject: &str, n: &Notification) -> Result<()> {
        rows::upsert_notification(self.conn().await?, subject, n).await
    }

    async fn unread(&mut self, subject: &str) -> Result<u64> {
        read::unread(self.conn().await?, subject).await
    }

    async fn unread_ids(&mut self, subject: &str, only: Option<&str>) -> Result<Vec<String>> {
        rows::unread_ids(self.conn().await?, subject, only).await
    }

    async fn mark_notification_read(&mut self, id: &str, version: u64) -> Result<Option<Notification>> {
        rows::mark_read(self.conn().await?, id, version).await
    }

    async fn insert_dead_letter(&mut self, letter: &DeadLetter) -> Result<i64> {
        rows::insert_dead_letter(self.conn().await?, letter).await
    }

    async fn delete_dead_letter(&mut self, id: i64) -> Result<bool> {
        rows::delete_dead_letter(self.conn().await?, id).await
    }

    async fn delete_step_dead_letters(&mut self, op: &OperationId, step: &str, kind: DeadLetterKind) -> Result<()> {
        rows::delete_step_dead_letters(self.conn().await?, op, step, kind).await
    }

    async fn instance(&mut self, service: &str, id: &str) -> Result<Option<RegisteredInstance>> {
        instances::get(self.conn().await?, service, id).await
    }

    async fn upsert_instance(&mut self, instance: &RegisteredInstance) -> Result<()> {
        instances::upsert(self.conn().await?, instance).await
    }
}
