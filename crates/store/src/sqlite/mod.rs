//! The embedded backend: one SQLite file in WAL mode, fsync'd on commit.
//!
//! - [`writer`] — the group-commit writer thread; [`checkpoint`] — copying
//!   the write-ahead log into the database, beside it.
//! - [`tx`] — the policy's transaction ([`crate::tx::Tx`]) on the writer's
//!   connection; [`rows`] — the statements behind it; [`codec`] — how times
//!   and JSON are kept.
//! - [`read`] — the read pool and queries.
//! - [`schema`] — tables and migrations.
//! - [`broker`] — the embedded broker: [`crate::policy::broker`] run on the
//!   writer over [`topics_tx`] (the broker's transaction), whose statements
//!   are in [`topics`] (events, subscriptions, kept in memory too) and
//!   [`deliveries`] (what each subscription owes).
//! - [`dead`] — dead letters of every kind.
//! - [`instances`] — service instances registered at run time.
//! - [`ledger`] — what a broker on a server of its own keeps here.
//! - [`files`] — the data directory and its files, private to herald's user.
//!
//! One herald process owns a data directory (a lock file says so), so at
//! start every task lease left by a crashed process is taken back at once.

mod broker;
mod checkpoint;
mod codec;
mod dead;
mod deliveries;
mod files;
mod gauges;
mod instances;
mod ledger;
mod read;
mod rows;
mod schema;
mod topics;
mod topics_tx;
mod tx;
mod writer;

use std::{ops::Range, path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use herald_broker::{Claim, Claimed, Confirmed};
use herald_core::{
    Event, Operation, OperationId, Time,
    notify::{InboxChange, Notification},
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    Accepted, DeadLetter, DeadLetterFilter, Error, Gauges, InboxPage, ListQuery, NewOperation, Node, Registered,
    RegisteredInstance, Result, Store, Task, TaskId, TransitionFn, TransitionResult, policy,
};
use codec::{ms, time};
use tx::{Rows, now};

/// SQLite's errors reach callers as the store's own, so no caller
/// depends on this backend's types.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Backend(e.to_string())
    }
}

pub struct SqliteStore {
    path: std::path::PathBuf,
    writer: writer::Writer,
    readers: Arc<read::Readers>,
    node: Node,
    broker: broker::State,
    /// How long a published event's source and id are remembered.
    dedupe_window: chrono::Duration,
    _lock: std::fs::File,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/herald.db`. Fails if another herald
    /// process holds the directory.
    pub fn open(dir: &Path, node: Node) -> Result<Self> {
        files::prepare_dir(dir)?;
        let lock = files::open_private(&dir.join("herald.lock"))?;
        lock.try_lock().map_err(|_| {
            Error::Locked(format!("another herald process is using the data directory {}", dir.display()))
        })?;
        let path = dir.join("herald.db");
        // Made 0600 before SQLite opens it: its -wal and -shm take its mode.
        drop(files::open_private(&path)?);
        let mut conn = Connection::open(&path)?;
        // Before anything is written: a file that is not herald's stays as it is.
        schema::claim(&conn, &path)?;
        schema::configure(&conn)?;
        files::tighten_files(dir)?;
        schema::migrate(&mut conn)?;
        // Checkpoints run on a thread of their own (see `checkpoint`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // Nobody else can hold leases on this file: take back a crashed run's.
        conn.execute("UPDATE tasks SET owner = NULL, lease_until = NULL WHERE owner IS NOT NULL", [])?;
        let subs = topics::load(&conn)?;
        // Likewise the events herald itself was delivering (push, and
        // those `await` steps wait for): they go out again now, not when
        // a lease nobody holds any more ends, which could be past an
        // await's timeout. A puller's lease is its own, and stays.
        for sub in subs.all().iter().filter(|s| s.dispatch_lease().is_some()) {
            deliveries::release_all(&conn, &sub.name, chrono::Utc::now())?;
        }
        let broker = broker::State::new(subs);
        let (writer, _thread) = writer::Writer::spawn(conn, checkpoint::Checkpointer::spawn(path.clone())?)?;
        Ok(SqliteStore {
            writer,
            readers: Arc::new(read::Readers::new(path.clone())),
            path,
            node,
            broker,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            _lock: lock,
        })
    }

    /// How long a re-publish of the same source and id is recognised.
    pub fn with_dedupe_window(mut self, window: Duration) -> Self {
        self.dedupe_window = chrono::Duration::from_std(window).unwrap_or(DEFAULT_DEDUPE_WINDOW);
        self
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn accept(&self, new: NewOperation) -> Result<Accepted> {
        let node = self.node.clone();
        self.writer.submit(move |conn| now(policy::accept(&mut Rows(conn), &node, new))).await
    }

    async fn transition(&self, id: &OperationId, consume: Option<TaskId>, f: TransitionFn) -> Result<TransitionResult> {
        let (node, id) = (self.node.clone(), id.clone());
        let run = move |conn: &Connection| now(policy::transition(&mut Rows(conn), &node, &id, consume, f));
        policy::answer(self.writer.submit(run).await)
    }

    async fn decide(
        &self,
        id: &OperationId,
        consume: Option<TaskId>,
        f: TransitionFn,
        supersede: crate::SupersedeFn,
    ) -> Result<TransitionResult> {
        let (node, id) = (self.node.clone(), id.clone());
        let run = move |conn: &Connection| now(policy::decide(&mut Rows(conn), &node, &id, consume, f, supersede));
        policy::answer(self.writer.submit(run).await)
    }

    async fn claim_due(&self, limit: usize) -> Result<Vec<Task>> {
        let node = self.node.clone();
        self.writer
            .submit(move |conn| {
                let now = chrono::Utc::now();
                let mut stmt = conn.prepare_cached(
                    "UPDATE tasks SET owner = ?1, lease_until = ?2, epoch = epoch + 1
                     WHERE id IN (SELECT id FROM tasks WHERE owner IS NULL AND due_at <= ?3 ORDER BY due_at LIMIT ?4)
                        OR id IN (SELECT id FROM tasks WHERE owner IS NOT NULL AND lease_until < ?3 LIMIT ?4)
                     RETURNING id, epoch, op_id, kind, due_at",
                )?;
                let rows = stmt.query_map(params![node.id, ms(now + node.lease), ms(now), limit as i64], |r| {
                    let id = TaskId { row: r.get(0)?, epoch: r.get(1)? };
                    Ok((id, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, i64>(4)?))
                })?;
                // One unreadable task must not stop every other: it is
                // reported, and left to its lease.
                read::readable(rows.map(|row| {
                    let (id, op, kind, due) = row?;
                    crate::codec::claimed_task(id, &op, &kind, due)
                }))
            })
            .await
    }

    async fn release(&self) -> Result<()> {
        let node = self.node.id.clone();
        self.writer
            .submit(move |conn| {
                conn.execute("UPDATE tasks SET owner = NULL, lease_until = NULL WHERE owner = ?1", [node])?;
                Ok(())
            })
            .await
    }

    async fn get(&self, id: &OperationId) -> Result<Option<Operation>> {
        let id = id.clone();
        self.readers.with(move |c| read::get(c, &id)).await
    }

    async fn events(&self, id: &OperationId, after: u64, limit: usize) -> Result<Vec<Event>> {
        let id = id.clone();
        self.readers.with(move |c| read::events(c, &id, after, limit)).await
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Operation>> {
        self.readers.with(move |c| read::list(c, &query)).await
    }

    async fn put_workflow(&self, name: &str, version: u32, source: &str) -> Result<bool> {
        let (name, source) = (name.to_string(), source.to_string());
        self.writer
            .submit(move |conn| {
                let old: Option<String> = conn
                    .query_row(
                        "SELECT source FROM workflows WHERE name = ?1 AND version = ?2",
                        params![name, version],
                        |r| r.get(0),
                    )
                    .optional()?;
                if old.as_deref() == Some(source.as_str()) {
                    return Ok(false);
                }
                conn.execute(
                    "INSERT INTO workflows (name, version, source) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name, version) DO UPDATE SET source = excluded.source",
                    params![name, version, source],
                )?;
                Ok(true)
            })
            .await
    }

    async fn workflows(&self) -> Result<Vec<(String, u32, String)>> {
        self.readers
            .with(|c| {
                let mut stmt =
                    c.prepare_cached("SELECT name, version, source FROM workflows ORDER BY name, version")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>> {
        self.writer
            .submit(move |conn| {
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?1)", [&candidate])?;
                Ok(conn.query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| r.get(0))?)
            })
            .await
    }

    async fn notifications(&self, subject: &str, page: InboxPage) -> Result<Vec<Notification>> {
        let subject = subject.to_string();
        self.readers.with(move |c| read::notifications(c, &subject, page)).await
    }

    async fn unread(&self, subject: &str) -> Result<u64> {
        let subject = subject.to_string();
        self.readers.with(move |c| rows::unread(c, &subject)).await
    }

    async fn notification(&self, subject: &str, id: &str) -> Result<Option<Notification>> {
        let (subject, id) = (subject.to_string(), id.to_string());
        self.readers.with(move |c| read::notification(c, Some(&subject), &id)).await
    }

    async fn erase_residue(&self) -> Result<()> {
        // The log still holds the pages as they were before the erasure;
        // copying it into the database and truncating it removes them.
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open(&path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Corrupt(e.to_string()))?
    }

    async fn finish_task(&self, id: TaskId) -> Result<bool> {
        let node = self.node.clone();
        self.writer.submit(move |c| rows::delete_task(c, id, &node.id)).await
    }

    async fn retry_task(&self, id: TaskId, kind: herald_core::TaskKind, due: Time) -> Result<bool> {
        let node = self.node.clone();
        self.writer.submit(move |c| rows::retry_task(c, id, &node.id, &kind, due)).await
    }

    async fn dead_letter(&self, id: TaskId, letter: DeadLetter) -> Result<bool> {
        let node = self.node.clone();
        self.writer.submit(move |c| now(policy::dead_letter(&mut Rows(c), &node, id, &letter))).await
    }

    async fn dead_letters(&self, filter: DeadLetterFilter) -> Result<Vec<DeadLetter>> {
        self.readers.with(move |c| dead::list(c, &filter)).await
    }

    async fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>> {
        self.readers.with(move |c| dead::get(c, id)).await
    }

    async fn delete_dead_letter(&self, id: i64) -> Result<bool> {
        self.writer.submit(move |c| dead::delete(c, id)).await
    }

    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<i64> {
        self.writer.submit(move |c| now(crate::tx::Tx::insert_dead_letter(&mut Rows(c), &letter))).await
    }

    async fn subscription_dead_letters(&self, subscription: &str) -> Result<u64> {
        let sub = subscription.to_owned();
        self.readers.with(move |c| dead::count_for_subscription(c, &sub)).await
    }

    async fn redrive_task(
        &self,
        dead_letter: i64,
        op: &OperationId,
        kind: herald_core::TaskKind,
    ) -> Result<Option<Task>> {
        let (node, op) = (self.node.clone(), op.clone());
        self.writer.submit(move |c| now(policy::redrive_task(&mut Rows(c), &node, dead_letter, &op, kind))).await
    }

    async fn mark_read(&self, subject: &str, id: Option<&str>) -> Result<Vec<InboxChange>> {
        let (subject, id) = (subject.to_string(), id.map(str::to_string));
        self.writer.submit(move |c| now(policy::mark_read(&mut Rows(c), &subject, id.as_deref()))).await
    }

    async fn put_instance(&self, instance: &RegisteredInstance) -> Result<Registered> {
        let instance = instance.clone();
        self.writer.submit(move |c| now(policy::put_instance(&mut Rows(c), &instance))).await
    }

    async fn delete_instance(&self, service: &str, id: &str) -> Result<bool> {
        let (service, id) = (service.to_string(), id.to_string());
        self.writer.submit(move |c| instances::delete(c, &service, &id)).await
    }

    async fn instances(&self, at: Time) -> Result<Vec<RegisteredInstance>> {
        self.readers.with(move |c| instances::list(c, ms(at))).await
    }

    async fn prune_instances(&self, at: Time) -> Result<u64> {
        self.writer.submit(move |c| instances::prune(c, ms(at))).await
    }

    async fn claim_seqs(&self, scope: &str, topic: &str, claims: &[Claim], now: Time) -> Result<Vec<Claimed>> {
        let (scope, topic, claims) = (scope.to_string(), topic.to_string(), claims.to_vec());
        self.writer.submit(move |c| ledger::claim(c, &scope, &topic, &claims, ms(now))).await
    }

    async fn confirm_publishes(&self, scope: &str, topic: &str, done: &[Confirmed], during: Range<Time>) -> Result<()> {
        let (scope, topic, done) = (scope.to_string(), topic.to_string(), done.to_vec());
        let during = ms(during.start)..ms(during.end);
        self.writer.submit(move |c| ledger::confirm(c, &scope, &topic, &done, during)).await
    }

    async fn forget_publishes(&self, scope: &str, now: Time) -> Result<u64> {
        let scope = scope.to_string();
        self.writer.submit(move |c| ledger::forget(c, &scope, ms(now))).await
    }

    async fn put_definition(&self, scope: &str, name: &str, spec: &str) -> Result<()> {
        let (scope, name, spec) = (scope.to_string(), name.to_string(), spec.to_string());
        self.writer.submit(move |c| ledger::put_definition(c, &scope, &name, &spec)).await
    }

    async fn delete_definition(&self, scope: &str, name: &str) -> Result<bool> {
        let (scope, name) = (scope.to_string(), name.to_string());
        self.writer.submit(move |c| ledger::delete_definition(c, &scope, &name)).await
    }

    async fn definition(&self, scope: &str, name: &str) -> Result<Option<String>> {
        let (scope, name) = (scope.to_string(), name.to_string());
        self.readers.with(move |c| ledger::definition(c, &scope, &name)).await
    }

    async fn definitions(&self, scope: &str) -> Result<Vec<(String, Option<String>)>> {
        let scope = scope.to_string();
        self.readers.with(move |c| ledger::definitions(c, &scope)).await
    }

    async fn drop_ledger(&self, scope: &str) -> Result<()> {
        let scope = scope.to_string();
        self.writer.submit(move |c| ledger::drop_scope(c, &scope)).await
    }

    async fn gauges(&self, now: Time) -> Result<Gauges> {
        self.readers.with(move |c| gauges::read(c, now)).await
    }

    async fn next_due(&self) -> Result<Option<Time>> {
        self.readers
            .with(|c| {
                let due: Option<i64> =
                    c.query_row("SELECT MIN(due_at) FROM tasks WHERE owner IS NULL", [], |r| r.get(0))?;
                due.map(time).transpose()
            })
            .await
    }
}

pub use crate::policy::broker::DEFAULT_DEDUPE_WINDOW;
