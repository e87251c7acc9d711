//! The single writer: one thread owns the write connection and commits
//! whatever jobs are waiting as one transaction, so many callers share one
//! fsync (group commit). Each job runs in its own savepoint, so one job's
//! error rolls back only that job; every caller is answered after COMMIT.

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Checkpointer;
use crate::{Error, Result};

/// Runs inside the transaction; returns what to tell its caller once the
/// commit's fate is known.
type Job = Box<dyn FnOnce(&Connection) -> Box<dyn FnOnce(Result<(), String>) + Send> + Send>;

/// At most this many jobs share one commit, to bound a batch's latency.
const MAX_BATCH: usize = 1024;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    pub fn spawn(
        conn: Connection,
        checkpoints: Checkpointer,
    ) -> std::io::Result<(Writer, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("herald-sqlite-writer".into())
            .spawn(move || run(conn, rx, checkpoints))?;
        Ok((Writer { jobs: tx }, handle))
    }

    /// Runs `f` in the next batch and answers once that batch is durable.
    pub async fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &Connection| {
            let result = in_savepoint(conn, f);
            Box::new(move |commit: Result<(), String>| {
                let answer = match commit {
                    Ok(()) => result,
                    Err(e) => Err(Error::Backend(format!("commit failed: {e}"))),
                };
                let _ = tx.send(answer);
            })
        });
        self.jobs.send(job).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    // Cached statements: these run twice per job, on the writer's hot path.
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(drop);
    run("SAVEPOINT job")?;
    match f(conn) {
        Ok(v) => {
            run("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            run("ROLLBACK TO job")?;
            run("RELEASE job")?;
            Err(e)
        }
    }
}

fn run(conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>, mut checkpoints: Checkpointer) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit_batch(&conn, &mut batch) {
            Ok(()) => checkpoints.committed(),
            Err(e) => tracing::error!(error = %e, "a storage commit failed; its callers are told"),
        }
    }
    tracing::debug!("storage writer stopped");
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Job>) -> Result<(), String> {
    let began = conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| e.to_string());
    let answers: Vec<_> = match &began {
        Ok(()) => batch.drain(..).map(|job| job(conn)).collect(),
        Err(e) => {
            let e = e.clone();
            for _ in batch.drain(..) {}
            return Err(e);
        }
    };
    let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for answer in answers {
        answer(commit.clone());
    }
    commit
}
