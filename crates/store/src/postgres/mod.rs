//! The networked backend: PostgreSQL over a sqlx pool, for several herald
//! nodes sharing one database.
//!
//! - [`batch`] — group commit: the accepts and transitions asked for at
//!   one moment share a transaction, a load and a commit.
//! - [`tx`] — the policy's transaction ([`crate::tx::Tx`]) on one pooled
//!   connection, and why it needs no stronger isolation than READ
//!   COMMITTED; [`rows`] — the statements behind it; [`pending`] — the
//!   rows it holds back and sends as one statement.
//! - [`tasks`] — tasks and their leases: claims that skip each other's
//!   rows, and the owner check that fences a node whose lease was taken.
//! - [`read`] — the reads, on the pool.
//! - [`instances`] — service instances registered at run time.
//! - [`ledger`] — what a broker on a server of its own keeps here.
//! - [`schema`] — the embedded migrations, run at open.
//! - [`broker`] — the broker: [`crate::policy::broker`] in one transaction
//!   per call, over [`topics_tx`] (the broker's transaction), whose
//!   statements are in [`topics`] (events, their ids, subscriptions) and
//!   [`deliveries`] (leases that skip each other's rows, per-key order
//!   under advisory locks).
//! - `hints` — telling the other nodes what a commit changed
//!   (`LISTEN`/`NOTIFY`, gathered and sent beside the writes).
//!
//! Each write runs the policy inside a transaction on one connection,
//! awaiting each statement that it reads from; it commits on `Ok` and
//! rolls back on `Err`. The rows it only writes go together, in one
//! statement, and a write that is only such rows is that one statement,
//! with no `BEGIN` or `COMMIT` (see [`tx`]). Accepts and transitions asked
//! for at the same moment share one such transaction ([`batch`]), each
//! kept from the others' failures. Unlike SQLite, no node owns the data:
//! a crashed node's leases are not taken back at open but run out, and
//! any node then claims its tasks.

mod batch;
mod broker;
mod deliveries;
mod gauges;
mod hints;
mod instances;
mod ledger;
mod pending;
mod read;
mod rows;
mod schema;
mod tasks;
mod topics;
mod topics_tx;
mod tx;

use std::{ops::Range, str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use herald_broker::{Claim, Claimed, Confirmed};
use herald_core::{
    Event, Operation, OperationId, Time,
    notify::{InboxChange, Notification},
};
use sqlx::{
    ConnectOptions, Connection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{
    Accepted, Applied, DeadLetter, DeadLetterFilter, Error, Gauges, InboxPage, ListQuery, NewOperation, Node,
    Registered, RegisteredInstance, Result, Store, Task, TaskId, TransitionFn, TransitionResult, policy,
};
use crate::{codec::ms, hints::Hint};
pub use batch::GroupCommits;
use tx::PgTx;

/// sqlx's errors reach callers as the store's own, so no caller depends on
/// this backend's types. A value that cannot be decoded is stored data
/// that cannot be read back.
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => Error::Corrupt(e.to_string()),
            // A deadlock or a serialization failure: run again, it succeeds.
            sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")) => {
                Error::Raced(d.to_string())
            }
            e => Error::Backend(e.to_string()),
        }
    }
}

/// `url` with its connections' `search_path` set to `schema`: a store URL
/// that keeps herald's tables in that schema (tests and benchmarks give
/// each run one of its own).
pub fn in_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// Connections a node keeps to the database unless told otherwise (one of
/// them listens for the other nodes' hints).
pub const POOL: u32 = 16;

/// How often an accept runs again after losing a race to another node.
const RACES: usize = 2;

pub struct PgStore {
    pool: PgPool,
    node: Node,
    /// This node's consumers waiting for their subscriptions.
    wakeups: crate::wakeups::Wakeups,
    /// How long a published event's source and id are remembered.
    dedupe_window: chrono::Duration,
    hints: hints::Hints,
    /// New tasks' ids, taken ahead.
    task_ids: Arc<tasks::TaskIds>,
    /// Accepts and transitions, committed in batches.
    batches: batch::Batches,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and brings its schema up to date.
    ///
    /// The connections are named `herald-<node id>` (`application_name`,
    /// unless the URL names one), so an operator can tell a node's
    /// connections apart in `pg_stat_activity`. A server that cannot be
    /// reached, or refuses the connection, fails the open at once, saying
    /// what to start or fix, and never with the URL: it may hold a password.
    pub async fn open(url: &str, node: Node, pool: u32) -> Result<Self> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::Unsupported(format!("the store URL is not a PostgreSQL URL: {e}")))?;
        if options.get_application_name().is_none() {
            options = options.application_name(&format!("herald-{}", node.id));
        }
        // One connection first: the pool would retry a refused connection
        // until its timeout and then say only that it timed out.
        let first = options.connect().await.map_err(|e| cannot_connect(&options, e))?;
        first.close().await.map_err(|e| cannot_connect(&options, e))?;
        let pool = PgPoolOptions::new()
            .max_connections(pool)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(|e| cannot_connect(&options, e))?;
        Self::on(pool, node).await
    }

    /// The store on a pool made elsewhere (its connect options, its size),
    /// its schema brought up to date.
    pub async fn on(pool: PgPool, node: Node) -> Result<Self> {
        schema::migrate(&pool).await?;
        let hints = hints::Hints::start(&pool, &node.id).await?;
        let dedupe_window = policy::broker::DEFAULT_DEDUPE_WINDOW;
        let task_ids = Arc::new(tasks::TaskIds::default());
        let batches = batch::Batches::start(pool.clone(), node.clone(), task_ids.clone());
        Ok(PgStore { pool, node, hints, wakeups: Default::default(), dedupe_window, task_ids, batches })
    }

    /// How long a re-publish of the same source and id is recognised.
    pub fn with_dedupe_window(mut self, window: Duration) -> Self {
        self.dedupe_window = chrono::Duration::from_std(window).unwrap_or(policy::broker::DEFAULT_DEDUPE_WINDOW);
        self
    }

    /// How many accepts and transitions shared how many commits.
    pub fn group_commits(&self) -> GroupCommits {
        self.batches.counts()
    }

    /// Tells other nodes what a commit changed.
    fn announce(&self, applied: &Applied) {
        let mut out = Vec::new();
        Hint::of(applied, chrono::Utc::now(), &mut out);
        self.hints.send(out);
    }

    /// A write transaction, begun at its first statement.
    fn tx(&self) -> PgTx<'_> {
        PgTx::new(&self.pool, &self.task_ids)
    }
}

/// Why the server at `options` took no connection, and what to do about
/// it; the server's address, user and database, never its password.
fn cannot_connect(options: &PgConnectOptions, e: sqlx::Error) -> Error {
    let at = format!("{}:{}", options.get_host(), options.get_port());
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    let code = match &e {
        sqlx::Error::Database(d) => d.code().map(|c| c.to_string()),
        _ => None,
    };
    Error::Backend(match (&e, code.as_deref()) {
        (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut, _) => {
            format!("cannot reach PostgreSQL at {at}: is it running, and listening there? ({e})")
        }
        (_, Some("3D000")) => format!(
            "PostgreSQL at {at} has no database `{database}`: create it (`createdb {database}`) or name another in \
             the store URL"
        ),
        (_, Some("28000" | "28P01")) => {
            format!("PostgreSQL at {at} refused user `{user}`: check the user and password in the store URL ({e})")
        }
        _ => format!("cannot connect to PostgreSQL at {at} (database `{database}`, user `{user}`): {e}"),
    })
}

/// A second copy of a new operation, to run its accept again.
fn copy(new: &NewOperation) -> NewOperation {
    NewOperation {
        op: new.op.clone(),
        transition: new.transition.clone(),
        idempotency: new.idempotency.clone(),
        workflow: new.workflow.clone(),
        supersede: new.supersede.clone(),
    }
}

#[async_trait]
impl Store for PgStore {
    /// Two nodes accepting one idempotency key at once: the second waits
    /// on the key's lock and answers as a replay (see `rows::idempotency`).
    /// Should a second write of the key get past that, the key's primary
    /// key fails it ([`Error::Raced`]); so does a deadlock between a
    /// superseding accept and a transition of the operation it supersedes.
    /// The accept then rolls back and runs again, and the policy answers
    /// as it answers once the other node's write is there.
    async fn accept(&self, new: NewOperation) -> Result<Accepted> {
        let new = Arc::new(new);
        let contended = new.idempotency.is_some() || new.workflow.concurrency.is_some();
        let (mut races, mut alone) = (0, false);
        loop {
            let out = match self.batches.run(batch::Work::Accept(new.clone()), alone).await {
                batch::Reply::Done(out) => out,
                batch::Reply::Again(_) if !alone => {
                    alone = true;
                    continue;
                }
                batch::Reply::Again(e) => Err(e),
            };
            let out = out.and_then(|done| match done {
                batch::Done::Accepted(a) => Ok(a),
                batch::Done::Transitioned(_) => Err(Error::Internal("an accept answered as a transition".into())),
            });
            match out {
                Err(Error::Raced(e)) if contended && races < RACES => {
                    tracing::debug!(error = %e, "an accept lost a race to another node; running it again");
                    races += 1;
                }
                Ok(Accepted::Created(applied)) => {
                    self.announce(&applied);
                    return Ok(Accepted::Created(applied));
                }
                out => return out,
            }
        }
    }

    async fn transition(&self, id: &OperationId, consume: Option<TaskId>, f: TransitionFn) -> Result<TransitionResult> {
        let f = Arc::new(f);
        let mut alone = false;
        let out = loop {
            let work = batch::Work::Transition { id: id.clone(), consume, f: f.clone() };
            match self.batches.run(work, alone).await {
                batch::Reply::Done(out) => break out,
                batch::Reply::Again(_) if !alone => alone = true,
                batch::Reply::Again(e) => break Err(e),
            }
        };
        let out = out.and_then(|done| match done {
            batch::Done::Transitioned(t) => Ok(t),
            batch::Done::Accepted(_) => Err(Error::Internal("a transition answered as an accept".into())),
        });
        if let Ok(TransitionResult::Applied(applied)) = &out {
            self.announce(applied);
        }
        out
    }

    async fn decide(
        &self,
        id: &OperationId,
        consume: Option<TaskId>,
        f: TransitionFn,
        supersede: crate::SupersedeFn,
    ) -> Result<TransitionResult> {
        // Rare (a person's choice, or its default): outside the batches.
        let mut tx = self.tx();
        let out = policy::decide(&mut tx, &self.node, id, consume, f, supersede).await;
        let out = policy::answer(tx.end(out).await);
        if let Ok(TransitionResult::Applied(applied)) = &out {
            self.announce(applied);
            for other in &applied.others {
                self.announce(other);
            }
        }
        out
    }

    async fn claim_due(&self, limit: usize) -> Result<Vec<Task>> {
        tasks::claim(&self.pool, &self.node, limit).await
    }

    async fn release(&self) -> Result<()> {
        tasks::release(&self.pool, &self.node.id).await?;
        // This node is stopping: the others take its tasks now, not at
        // their next poll.
        self.hints.send_now(&self.pool, vec![Hint::Tasks]).await
    }

    async fn get(&self, id: &OperationId) -> Result<Option<Operation>> {
        read::operation(&mut *self.pool.acquire().await?, id, false).await
    }

    async fn events(&self, id: &OperationId, after: u64, limit: usize) -> Result<Vec<Event>> {
        read::events(&mut *self.pool.acquire().await?, id, after, limit).await
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Operation>> {
        read::list(&mut *self.pool.acquire().await?, &query).await
    }

    async fn put_workflow(&self, name: &str, version: u32, source: &str) -> Result<bool> {
        let written = sqlx::query(
            "INSERT INTO workflows (name, version, source) VALUES ($1, $2, $3)
             ON CONFLICT (name, version) DO UPDATE SET source = excluded.source
             WHERE workflows.source IS DISTINCT FROM excluded.source",
        )
        .bind(name)
        .bind(i64::from(version))
        .bind(source)
        .execute(&self.pool)
        .await?;
        Ok(written.rows_affected() == 1)
    }

    async fn workflows(&self) -> Result<Vec<(String, u32, String)>> {
        read::workflows(&mut *self.pool.acquire().await?).await
    }

    /// The first node to start stores its candidate; every other node,
    /// then and later, gets that one.
    async fn secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ('secret', $1) ON CONFLICT (key) DO NOTHING")
            .bind(candidate)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = 'secret'").fetch_one(&self.pool).await?)
    }

    async fn next_due(&self) -> Result<Option<Time>> {
        tasks::next_due(&self.pool).await
    }

    async fn gauges(&self, now: Time) -> Result<Gauges> {
        gauges::read(&self.pool, now).await
    }

    fn hints(&self) -> Option<tokio::sync::broadcast::Receiver<Hint>> {
        Some(self.hints.subscribe())
    }

    async fn notifications(&self, subject: &str, page: InboxPage) -> Result<Vec<Notification>> {
        read::notifications(&mut *self.pool.acquire().await?, subject, page).await
    }

    async fn unread(&self, subject: &str) -> Result<u64> {
        read::unread(&mut *self.pool.acquire().await?, subject).await
    }

    async fn notification(&self, subject: &str, id: &str) -> Result<Option<Notification>> {
        read::notification(&mut *self.pool.acquire().await?, Some(subject), id).await
    }

    /// `VACUUM` of the tables personal data is erased from: the dead row
    /// versions that still held it are removed from their tables and
    /// indexes, so no query, and no reuse of the pages, can reach them.
    /// Unlike SQLite's checkpoint it cannot promise the bytes are gone from
    /// disk: PostgreSQL's write-ahead log (until recycled), its archive,
    /// replicas and backups are the database operator's to age out.
    async fn erase_residue(&self) -> Result<()> {
        sqlx::query("VACUUM operations, events, notifications, dead_letters").execute(&self.pool).await?;
        Ok(())
    }

    async fn finish_task(&self, id: TaskId) -> Result<bool> {
        tasks::delete(&mut *self.pool.acquire().await?, id, &self.node.id).await
    }

    async fn retry_task(&self, id: TaskId, kind: herald_core::TaskKind, due: Time) -> Result<bool> {
        tasks::retry(&self.pool, id, &self.node.id, &kind, due).await
    }

    async fn dead_letter(&self, id: TaskId, letter: DeadLetter) -> Result<bool> {
        let mut tx = self.tx();
        let out = policy::dead_letter(&mut tx, &self.node, id, &letter).await;
        tx.end(out).await
    }

    async fn dead_letters(&self, filter: DeadLetterFilter) -> Result<Vec<DeadLetter>> {
        read::dead_letters(&mut *self.pool.acquire().await?, &filter).await
    }

    async fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>> {
        read::dead_letter(&mut *self.pool.acquire().await?, id).await
    }

    async fn delete_dead_letter(&self, id: i64) -> Result<bool> {
        rows::delete_dead_letter(&mut *self.pool.acquire().await?, id).await
    }

    async fn add_dead_letter(&self, letter: DeadLetter) -> Result<i64> {
        let mut tx = self.tx();
        let out = crate::tx::Tx::insert_dead_letter(&mut tx, &letter).await;
        tx.end(out).await
    }

    async fn subscription_dead_letters(&self, subscription: &str) -> Result<u64> {
        deliveries::dead_letters(&mut *self.pool.acquire().await?, subscription).await
    }

    async fn redrive_task(
        &self,
        dead_letter: i64,
        op: &OperationId,
        kind: herald_core::TaskKind,
    ) -> Result<Option<Task>> {
        let mut tx = self.tx();
        let out = policy::redrive_task(&mut tx, &self.node, dead_letter, op, kind).await;
        tx.end(out).await
    }

    async fn mark_read(&self, subject: &str, id: Option<&str>) -> Result<Vec<InboxChange>> {
        let mut tx = self.tx();
        let out = policy::mark_read(&mut tx, subject, id).await;
        let changes = tx.end(out).await?;
        if !changes.is_empty() {
            self.hints.send([Hint::Inbox(subject.to_string())]);
        }
        Ok(changes)
    }

    async fn put_instance(&self, instance: &RegisteredInstance) -> Result<Registered> {
        let mut tx = self.tx();
        let out = policy::put_instance(&mut tx, instance).await;
        let registered = tx.end(out).await?;
        // A heartbeat only moves the expiry on: other nodes read it at
        // their next refresh.
        if registered != Registered::Renewed {
            self.hints.send([Hint::Services]);
        }
        Ok(registered)
    }

    async fn delete_instance(&self, service: &str, id: &str) -> Result<bool> {
        let gone = instances::delete(&self.pool, service, id).await?;
        if gone {
            self.hints.send([Hint::Services]);
        }
        Ok(gone)
    }

    async fn instances(&self, now: Time) -> Result<Vec<RegisteredInstance>> {
        instances::list(&self.pool, now).await
    }

    async fn prune_instances(&self, now: Time) -> Result<u64> {
        instances::prune(&self.pool, now).await
    }

    async fn claim_seqs(&self, scope: &str, topic: &str, claims: &[Claim], now: Time) -> Result<Vec<Claimed>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        ledger::claim(&self.pool, scope, topic, claims, ms(now)).await
    }

    async fn confirm_publishes(&self, scope: &str, topic: &str, done: &[Confirmed], during: Range<Time>) -> Result<()> {
        ledger::confirm(&self.pool, scope, topic, done, ms(during.start)..ms(during.end)).await
    }

    async fn forget_publishes(&self, scope: &str, now: Time) -> Result<u64> {
        ledger::forget(&self.pool, scope, ms(now)).await
    }

    async fn put_definition(&self, scope: &str, name: &str, spec: &str) -> Result<()> {
        ledger::put_definition(&self.pool, scope, name, spec).await
    }

    async fn delete_definition(&self, scope: &str, name: &str) -> Result<bool> {
        ledger::delete_definition(&self.pool, scope, name).await
    }

    async fn definition(&self, scope: &str, name: &str) -> Result<Option<String>> {
        ledger::definition(&self.pool, scope, name).await
    }

    async fn definitions(&self, scope: &str) -> Result<Vec<(String, Option<String>)>> {
        ledger::definitions(&self.pool, scope).await
    }

    async fn drop_ledger(&self, scope: &str) -> Result<()> {
        ledger::drop_scope(&self.pool, scope).await
    }
}
