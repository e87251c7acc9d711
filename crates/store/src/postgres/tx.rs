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
//!   ([`tasks::load_consuming`]);
//! - in a batch (`super::batch`), several callers' writes share the
//!   transaction, each a job: the batch loads every job's operation at
//!   once ([`Loaded`]), a job that fails drops what it held and rolls back
//!   to a savepoint taken before its first statement (none if it ran
//!   none), and the others commit.
//!
//! The transaction is READ COMMITTED; what the policy reads and then
//! writes is kept from racing another node by locks taken as it reads: an
//! operation it loads is locked (`FOR UPDATE`), a concurrency key's
//! holders are read under an advisory lock, an inbox's counter row is
//! locked by its increment, and an idempotency key is a primary key.

use std::collections::HashSet;

use herald_core::{Event, Operation, OperationId, TaskKind, Time, concurrency::Active, notify::Notification};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{
    instances,
    pending::{Mark, Pending},
    read, rows, tasks,
    tasks::{Loaded, TaskIds},
};
use crate::{
    DeadLetter, DeadLetterKind, Error, IdempotencyKey, RegisteredInstance, Result, TaskId,
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
    /// The job running, in a batch.
    job: Option<Job>,
    /// The current job's operation, as the batch loaded it.
    loaded: Option<Loaded>,
    /// Operations written in this transaction: a job's operation that an
    /// earlier job wrote is loaded again, not taken as the batch loaded it.
    written: HashSet<OperationId>,
    /// A statement failed where no savepoint covers it: the transaction
    /// can only roll back.
    broken: bool,
}

/// One job of a batch: what was held when it began, and whether it took
/// its savepoint (before its first statement).
struct Job {
    mark: Mark,
    savepoint: bool,
}

/// The connection of `conn`, in its transaction if it has one.
fn connection<'a>(conn: &'a mut Conn<'_>) -> Result<&'a mut PgConnection> {
    match conn {
        Conn::Lazy { open: Some(tx), .. } => Ok(&mut **tx),
        Conn::On(c) => Ok(c),
        Conn::Lazy { open: None, .. } => Err(Error::Internal("a statement before the transaction began".into())),
    }
}

impl<'c> PgTx<'c> {
    /// A transaction on `pool`, begun when a statement needs it.
    pub fn new(pool: &'c PgPool, ids: &'c TaskIds) -> Self {
        Self::with(Conn::Lazy { pool, open: None }, ids)
    }

    fn with(conn: Conn<'c>, ids: &'c TaskIds) -> Self {
        PgTx { conn, pending: Pending::default(), ids, job: None, loaded: None, written: HashSet::new(), broken: false }
    }

    /// Statements on a connection the caller holds (and commits, if it
    /// began a transaction on it).
    pub fn on(c: &'c mut PgConnection, ids: &'c TaskIds) -> Self {
        Self::with(Conn::On(c), ids)
    }

    /// The connection, in the transaction (begun now if need be), with
    /// the held rows written: for a statement that must run now.
    pub async fn conn(&mut self) -> Result<&mut PgConnection> {
        if let Err(e) = self.ready().await {
            self.broken = true;
            return Err(e);
        }
        connection(&mut self.conn)
    }

    /// Begins the transaction if need be, takes the running job's
    /// savepoint before its first statement (sending what earlier jobs
    /// held first: a rollback to it must not undo theirs), and sends what
    /// is held.
    async fn ready(&mut self) -> Result<()> {
        if let Conn::Lazy { pool, open: open @ None } = &mut self.conn {
            *open = Some(pool.begin().await?);
        }
        let c = connection(&mut self.conn)?;
        if let Some(job) = &mut self.job
            && !job.savepoint
        {
            let own = self.pending.split_off(job.mark);
            self.pending.send(c).await?;
            sqlx::query("SAVEPOINT job").execute(&mut *c).await?;
            self.pending = own;
            *job = Job { mark: Pending::default().mark(), savepoint: true };
        }
        self.pending.send(c).await
    }

    /// In a batch: the next job begins, with its operation as the batch
    /// loaded it.
    pub fn begin_job(&mut self, loaded: Option<Loaded>) {
        self.job = Some(Job { mark: self.pending.mark(), savepoint: false });
        self.loaded = loaded;
    }

    /// The job ended: if it failed (`ok` false), nothing it wrote stays.
    /// An `Err` when the transaction is lost, for every job in it.
    pub async fn end_job(&mut self, ok: bool) -> Result<()> {
        self.loaded = None;
        let job = self.job.take();
        if self.broken {
            return Err(Error::Backend("a statement failed outside any job's savepoint".into()));
        }
        match job {
            Some(Job { mark, savepoint }) if !ok => {
                if savepoint {
                    let rolled = match connection(&mut self.conn) {
                        Ok(c) => sqlx::query("ROLLBACK TO SAVEPOINT job").execute(c).await.map_err(Error::from),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = rolled {
                        self.broken = true;
                        return Err(e);
                    }
                }
                self.pending.truncate(mark);
                Ok(())
            }
            _ => Ok(()),
        }
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
        match out {
            Ok(v) => self.commit().await.map(|()| v).map_err(|(e, _)| e),
            Err(e) => {
                self.abandon().await;
                Err(e)
            }
        }
    }

    /// Rolls back all it wrote.
    pub async fn abandon(self) {
        if let Conn::Lazy { open: Some(tx), .. } = self.conn {
            rollback(tx).await;
        }
    }

    /// Sends what is held and commits. On failure, whether it failed at
    /// the `COMMIT` itself: then whether the writes took effect is not
    /// known; before it, nothing took effect.
    pub async fn commit(self) -> Result<(), (Error, bool)> {
        let PgTx { conn, mut pending, .. } = self;
        match conn {
            Conn::Lazy { open: Some(mut tx), .. } => {
                if let Err(e) = pending.send(&mut tx).await {
                    rollback(tx).await;
                    return Err((e, false));
                }
                tx.commit().await.map_err(|e| (e.into(), true))
            }
            Conn::Lazy { pool, open: None } => {
                if pending.is_empty() {
                    return Ok(());
                }
                let mut c = pool.acquire().await.map_err(|e| (e.into(), false))?;
                pending.send(&mut c).await.map_err(|e| (e, false))
            }
            Conn::On(c) => pending.send(c).await.map_err(|e| (e, false)),
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
        if let Some(loaded) = self.loaded.take_if(|l| l.id == *id && !self.written.contains(id))
            && let Some(answer) = loaded.answer(consume.map(|(task, _)| task))
        {
            if let (Some((_, true)), Some((task, _))) = (&answer, consume) {
                self.pending.consume_task(task.row);
            }
            return Ok(answer);
        }
        let c = self.conn().await?;
        match consume {
            Some((task, owner)) => tasks::load_consuming(c, id, task, owner).await,
            None => Ok(rows::load(c, id).await?.map(|op| (op, true))),
        }
    }

    async fn insert_op(&mut self, op: &Operation) -> Result<()> {
        self.before_writing(&op.id).await?;
        self.written.insert(op.id.clone());
        self.pending.insert_op(op)?;
        self.held().await
    }

    async fn update_op(&mut self, op: &Operation) -> Result<()> {
        self.before_writing(&op.id).await?;
        self.written.insert(op.id.clone());
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
            Conn::Lazy { open: Some(tx), .. } => self.ids.next(&mut **tx).await,
            Conn::Lazy { pool, open: None } => self.ids.next(*pool).await,
            Conn::On(c) => self.ids.next(&mut **c).await,
        };
        // On the transaction's connection, outside any savepoint.
        let row = row.inspect_err(|_| self.broken = true)?;
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
