//! Checkpoints off the writer's thread. SQLite's automatic checkpoint runs
//! inside the commit that crosses its threshold, so the writer (and every
//! caller waiting on that batch) would stop to copy the log into the
//! database. Here a thread of its own does it with its own connection, in
//! PASSIVE mode: it never blocks the writer or the readers.

use std::{path::PathBuf, sync::mpsc};

use rusqlite::Connection;

/// Batches committed between two checkpoint requests.
const BATCHES_PER_CHECKPOINT: u32 = 32;

/// At most one checkpoint this often: each one ends with an fsync of the
/// database file, which the writer's own fsyncs queue behind; fewer, larger
/// checkpoints copy each hot page once and keep commit latency even.
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    since: u32,
}

impl Checkpointer {
    pub fn spawn(path: PathBuf) -> std::io::Result<Self> {
        let (wake, asked) = mpsc::sync_channel(1);
        std::thread::Builder::new().name("herald-sqlite-checkpoint".into()).spawn(move || {
            let conn = match Connection::open(&path) {
                Ok(c) => c,
                Err(e) => return tracing::error!(error = %e, "the checkpoint thread cannot open the database"),
            };
            let mut last: Option<std::time::Instant> = None;
            while asked.recv().is_ok() {
                if last.is_some_and(|l| l.elapsed() < MIN_INTERVAL) {
                    continue; // the writer asks again after its next batches
                }
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "a checkpoint failed; the next one catches up");
                }
                last = Some(std::time::Instant::now());
            }
        })?;
        Ok(Checkpointer { wake, since: 0 })
    }

    /// Counts a committed batch, asking for a checkpoint every so often. A
    /// request while one runs is merged into the next.
    pub fn committed(&mut self) {
        self.since += 1;
        if self.since >= BATCHES_PER_CHECKPOINT {
            self.since = 0;
            let _ = self.wake.try_send(());
        }
    }
}
