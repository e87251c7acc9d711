//! Group commit on PostgreSQL: the accepts and transitions that callers on
//! this node ask for at the same moment share one transaction, as SQLite's
//! writer thread shares one fsync among them.
//!
//! A few runners ([`RUNNERS`]) each take what waits (up to [`MOST`]) and
//! run it as one batch: the operations of its transitions are loaded and
//! locked in one statement ([`tasks::load_batch`]), each job runs the same
//! policy function a write alone runs, the rows they wrote go in one
//! statement, and one commit makes them durable. Nobody waits for a batch
//! to fill: a runner takes what is there, so one caller alone costs what a
//! write alone costs, and many callers share the round trips and the
//! commit.
//!
//! A job that fails (a transition refused, a key another node took) drops
//! what it wrote, back to its savepoint (`super::tx::PgTx::end_job`), and
//! the others go on. A failure that loses the transaction before its
//! commit fails no one: every job in it runs again, alone ([`Reply::Again`]);
//! that is why a transition's function is a `Fn`. A failed commit is each
//! job's failure, as it would have been alone: whether it took effect is
//! not known, so nothing runs again.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use herald_core::OperationId;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{copy, tasks, tasks::TaskIds, tx::PgTx};
use crate::{Accepted, Error, NewOperation, Node, Result, TaskId, TransitionFn, TransitionResult, policy};

/// Batches run at once, each on a connection of its own.
pub const RUNNERS: usize = 4;

/// The most jobs in one batch. Each may take a savepoint, a
/// subtransaction: PostgreSQL keeps up to 64 of a transaction's in shared
/// memory, and past that every other session's snapshots get slower.
pub const MOST: usize = 48;

/// What a caller asks for.
pub enum Work {
    Accept(Arc<NewOperation>),
    Transition { id: OperationId, consume: Option<TaskId>, f: Arc<TransitionFn> },
}

/// What a job did.
pub enum Done {
    Accepted(Accepted),
    Transitioned(TransitionResult),
}

pub enum Reply {
    Done(Result<Done>),
    /// Its batch was lost before its commit (the error, as it reached the
    /// batch): nothing it wrote stays, and it may run again.
    Again(Error),
}

struct Job {
    work: Work,
    /// Runs in a batch of its own.
    alone: bool,
    reply: oneshot::Sender<Reply>,
}

/// The queue the runners take batches from.
pub struct Batches {
    queue: mpsc::UnboundedSender<Job>,
    counts: Arc<Counts>,
}

/// Batches run to their end, and the jobs they held, since the store
/// opened.
#[derive(Default)]
struct Counts {
    batches: AtomicU64,
    jobs: AtomicU64,
    again: AtomicU64,
}

/// How much group commit shared: `jobs` in `batches` transactions; and
/// how many batches were lost before their commit (`again`), their jobs
/// run again alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommits {
    pub batches: u64,
    pub jobs: u64,
    pub again: u64,
}

impl Batches {
    /// Starts the runners; they end when this is dropped.
    pub fn start(pool: PgPool, node: Node, ids: Arc<TaskIds>) -> Batches {
        let (queue, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let counts = Arc::new(Counts::default());
        for _ in 0..RUNNERS {
            let (pool, node, ids, rx, counts) = (pool.clone(), node.clone(), ids.clone(), rx.clone(), counts.clone());
            tokio::spawn(Runner { pool, node, ids, rx, counts }.run());
        }
        Batches { queue, counts }
    }

    pub fn counts(&self) -> GroupCommits {
        GroupCommits {
            batches: self.counts.batches.load(Ordering::Relaxed),
            jobs: self.counts.jobs.load(Ordering::Relaxed),
            again: self.counts.again.load(Ordering::Relaxed),
        }
    }

    /// Runs `work` in the next batch (or alone), and answers what it did.
    pub async fn run(&self, work: Work, alone: bool) -> Reply {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Job { work, alone, reply }).is_err() {
            return Reply::Done(Err(Error::Closed));
        }
        answer.await.unwrap_or(Reply::Done(Err(Error::Internal("a batch runner stopped".into()))))
    }
}

struct Runner {
    pool: PgPool,
    node: Node,
    ids: Arc<TaskIds>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    counts: Arc<Counts>,
}

impl Runner {
    async fn run(self) {
        // Jobs taken that could not join the last batch: first in the next.
        let mut held: Vec<Job> = Vec::new();
        loop {
            let mut taken = std::mem::take(&mut held);
            if taken.is_empty() {
                let mut rx = self.rx.lock().await;
                match rx.recv().await {
                    Some(job) => taken.push(job),
                    None => return,
                }
                more(&mut rx, &mut taken);
            } else if let Ok(mut rx) = self.rx.try_lock() {
                // Not waiting for the queue: another runner may be waiting
                // on it for work that only these held jobs' callers would
                // send.
                more(&mut rx, &mut taken);
            }
            let batch = split(taken, &mut held);
            self.batch(batch).await;
        }
    }

    /// Runs the jobs in one transaction and answers each.
    async fn batch(&self, jobs: Vec<Job>) {
        let mut tx = PgTx::new(&self.pool, &self.ids);
        if let [job] = &jobs[..] {
            // Alone: the transaction is the job's, as a write alone.
            let out = self.job(&mut tx, &job.work).await;
            let out = answer(tx.end(out).await);
            self.count(1);
            let [job] = <[Job; 1]>::try_from(jobs).unwrap_or_else(|_| unreachable!("one job"));
            let _ = job.reply.send(Reply::Done(out));
            return;
        }
        let wanted: Vec<(OperationId, Option<TaskId>)> = jobs
            .iter()
            .filter_map(|j| match &j.work {
                Work::Transition { id, consume, .. } => Some((id.clone(), *consume)),
                Work::Accept(_) => None,
            })
            .collect();
        let mut loaded = Vec::new();
        if !wanted.is_empty() {
            let read = match tx.conn().await {
                Ok(c) => tasks::load_batch(c, &wanted, &self.node.id).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(l) => loaded = l,
                Err(e) => {
                    tx.abandon().await;
                    return self.again(jobs, e);
                }
            }
        }
        let mut loaded = loaded.into_iter();
        let mut done = Vec::with_capacity(jobs.len());
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            let mine = match &job.work {
                Work::Transition { .. } => loaded.next(),
                Work::Accept(_) => None,
            };
            tx.begin_job(mine);
            let out = self.job(&mut tx, &job.work).await;
            if let Err(e) = tx.end_job(out.is_ok()).await {
                tx.abandon().await;
                let rest = done.into_iter().map(|(j, _)| j).chain([job]).chain(jobs).collect();
                return self.again(rest, e);
            }
            done.push((job, answer(out)));
        }
        match tx.commit().await {
            Ok(()) => {
                self.count(done.len());
                for (job, out) in done {
                    let _ = job.reply.send(Reply::Done(out));
                }
            }
            Err((e, false)) => {
                let jobs: Vec<Job> = done.into_iter().map(|(j, _)| j).collect();
                self.again(jobs, e);
            }
            Err((e, true)) => {
                for (job, _) in done {
                    let _ = job.reply.send(Reply::Done(Err(like(&e))));
                }
            }
        }
    }

    /// The batch was lost before its commit, and rolled back: every job
    /// in it is answered that it may run again.
    fn again(&self, jobs: Vec<Job>, e: Error) {
        tracing::debug!(error = %e, jobs = jobs.len(), "a batch failed before its commit; its jobs run again alone");
        self.counts.again.fetch_add(1, Ordering::Relaxed);
        for job in jobs {
            let _ = job.reply.send(Reply::Again(like(&e)));
        }
    }

    fn count(&self, jobs: usize) {
        self.counts.batches.fetch_add(1, Ordering::Relaxed);
        self.counts.jobs.fetch_add(jobs as u64, Ordering::Relaxed);
    }

    /// One job's policy function, on the batch's transaction.
    async fn job(&self, tx: &mut PgTx<'_>, work: &Work) -> Result<Done> {
        match work {
            Work::Accept(new) => policy::accept(tx, &self.node, copy(new)).await.map(Done::Accepted),
            Work::Transition { id, consume, f } => {
                policy::transition(tx, &self.node, id, *consume, |op| f(op)).await.map(Done::Transitioned)
            }
        }
    }
}

/// Whatever else waits, up to a batch's worth.
fn more(rx: &mut mpsc::UnboundedReceiver<Job>, taken: &mut Vec<Job>) {
    while taken.len() < MOST {
        match rx.try_recv() {
            Ok(job) => taken.push(job),
            Err(_) => break,
        }
    }
}

/// The jobs that can go in one batch, in the order taken: every other job
/// is held for the next. A job that runs alone goes alone, and an
/// operation is in a batch once at most (its second job must see what the
/// first wrote, and the batch loads it once, before either runs).
fn split(taken: Vec<Job>, held: &mut Vec<Job>) -> Vec<Job> {
    let mut batch: Vec<Job> = Vec::with_capacity(taken.len());
    let mut ops: HashSet<OperationId> = HashSet::new();
    for job in taken {
        let fits = match (&job.work, job.alone) {
            (_, true) => batch.is_empty(),
            (Work::Transition { id, .. }, false) => ops.insert(id.clone()),
            (Work::Accept(_), false) => true,
        };
        let alone_first = batch.first().is_some_and(|j| j.alone);
        if fits && !alone_first {
            batch.push(job);
        } else {
            held.push(job);
        }
    }
    batch
}

/// A refused transition, its writes dropped, is an answer, as
/// [`policy::answer`] makes it.
fn answer(out: Result<Done>) -> Result<Done> {
    match out {
        Err(e @ Error::Rejected(_)) => policy::answer(Err(e)).map(Done::Transitioned),
        other => other,
    }
}

/// The same failure for another caller (errors are not `Clone`).
fn like(e: &Error) -> Error {
    match e {
        Error::Raced(m) => Error::Raced(m.clone()),
        Error::Corrupt(m) => Error::Corrupt(m.clone()),
        Error::Closed => Error::Closed,
        e => Error::Backend(e.to_string()),
    }
}
