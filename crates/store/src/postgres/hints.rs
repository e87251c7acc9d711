//! Hints between the nodes of one database, over `LISTEN`/`NOTIFY`.
//!
//! Kept out of the write path: a `NOTIFY` inside a write transaction would
//! take PostgreSQL's global notify lock at every commit, serializing them.
//! Instead a commit only puts its hints in a set; a flusher sends what
//! gathered as one `pg_notify` of its own (a repeated hint goes once), at
//! once after a quiet spell, else at most every few milliseconds.
//!
//! A listener, on one more connection, hands other nodes' hints to
//! [`Hints::subscribe`]rs. When that connection drops, hints sent meanwhile
//! are lost: once it is back, the listener sends [`Hint::Resync`], and
//! everyone looks at the store. Hints are per schema, so nodes (and tests)
//! on other schemas of the same database do not hear each other.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use sqlx::{PgPool, postgres::PgListener};
use tokio::{
    sync::{Notify, broadcast},
    task::AbortHandle,
};

use crate::{Result, hints::Hint};

/// The least time between two sends: how long hints gather while busy.
const GATHER: Duration = Duration::from_millis(2);

/// A `NOTIFY` payload must stay under 8000 bytes.
const PAYLOAD: usize = 7000;

/// Hints buffered for a listener that falls behind (it then resyncs).
const BACKLOG: usize = 4096;

/// Waits between tries to listen again after the database went away.
const RELISTEN: Duration = Duration::from_millis(500);

/// One `NOTIFY`: who sent it, and what to look at.
#[derive(Serialize, Deserialize)]
struct Payload<'a> {
    #[serde(rename = "n", borrow)]
    node: std::borrow::Cow<'a, str>,
    #[serde(rename = "h")]
    hints: Vec<Hint>,
}

struct Shared {
    node: String,
    channel: String,
    pending: Mutex<HashSet<Hint>>,
    gathered: Notify,
    heard: broadcast::Sender<Hint>,
}

/// This node's end of the hints; its tasks end when it is dropped.
pub struct Hints {
    shared: Arc<Shared>,
    tasks: [AbortHandle; 2],
}

impl Hints {
    /// Starts sending and listening on `pool`'s database, on the channel of
    /// its current schema.
    pub async fn start(pool: &PgPool, node: &str) -> Result<Hints> {
        let schema: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(pool).await?;
        // Channel names are identifiers: at most 63 bytes.
        let channel: String = format!("herald.{schema}").chars().take(63).collect();
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(&channel).await?;
        let shared = Arc::new(Shared {
            node: node.to_string(),
            channel,
            pending: Mutex::default(),
            gathered: Notify::new(),
            heard: broadcast::channel(BACKLOG).0,
        });
        let flush = tokio::spawn(flush(shared.clone(), pool.clone())).abort_handle();
        let listen = tokio::spawn(listen(shared.clone(), pool.clone(), listener)).abort_handle();
        Ok(Hints { shared, tasks: [flush, listen] })
    }

    /// Tells the other nodes, soon.
    pub fn send(&self, hints: impl IntoIterator<Item = Hint>) {
        let mut pending = self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.extend(hints);
        drop(pending);
        self.shared.gathered.notify_one();
    }

    /// Tells the other nodes now, and waits until it is sent: for a node
    /// about to exit, whose gathered hints might never go out.
    pub async fn send_now(&self, pool: &PgPool, hints: Vec<Hint>) -> Result<()> {
        for payload in payloads(&self.shared.node, hints) {
            notify(&self.shared.channel, pool, &payload).await?;
        }
        Ok(())
    }

    /// Other nodes' hints, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Hint> {
        self.shared.heard.subscribe()
    }
}

impl Drop for Hints {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn flush(shared: Arc<Shared>, pool: PgPool) {
    let mut last = tokio::time::Instant::now();
    loop {
        shared.gathered.notified().await;
        // After a quiet spell a hint goes at once; while commits keep
        // coming, they gather for what is left of `GATHER` since the last
        // send, so a busy node sends at most one `NOTIFY` per `GATHER`.
        tokio::time::sleep_until(last + GATHER).await;
        last = tokio::time::Instant::now();
        let batch: Vec<Hint> =
            std::mem::take(&mut *shared.pending.lock().unwrap_or_else(PoisonError::into_inner)).into_iter().collect();
        for payload in payloads(&shared.node, batch) {
            let sent =
                sqlx::query("SELECT pg_notify($1, $2)").bind(&shared.channel).bind(&payload).execute(&pool).await;
            if let Err(e) = sent {
                // Others find the change by polling, a little later.
                tracing::debug!(error = %e, "a hint to other nodes was not sent");
            }
        }
    }
}

async fn notify(channel: &str, pool: &PgPool, payload: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(pool).await?;
    Ok(())
}

/// The batch as payloads under the size limit; a hint too big for one on
/// its own becomes "look at everything".
fn payloads(node: &str, batch: Vec<Hint>) -> Vec<String> {
    let encode =
        |hints: Vec<Hint>| serde_json::to_string(&Payload { node: node.into(), hints }).expect("hints serialize");
    let budget = PAYLOAD.saturating_sub(node.len() + 32);
    let len = |h: &Hint| serde_json::to_string(h).map_or(usize::MAX, |s| s.len() + 1);
    let mut out = Vec::new();
    let mut current: Vec<Hint> = Vec::new();
    let mut size = 0;
    for hint in batch {
        let hint = if len(&hint) > budget { Hint::Resync } else { hint };
        let n = len(&hint);
        if size + n > budget && !current.is_empty() {
            out.push(encode(std::mem::take(&mut current)));
            size = 0;
        }
        size += n;
        current.push(hint);
    }
    if !current.is_empty() {
        out.push(encode(current));
    }
    out
}

async fn listen(shared: Arc<Shared>, pool: PgPool, mut listener: PgListener) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => match serde_json::from_str::<Payload>(n.payload()) {
                Ok(p) if p.node == shared.node => {}
                Ok(p) => {
                    for hint in p.hints {
                        let _ = shared.heard.send(hint);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a hint from another node could not be read"),
            },
            // The connection dropped and is back: what came meanwhile is lost.
            Ok(None) => {
                let _ = shared.heard.send(Hint::Resync);
            }
            Err(e) => {
                tracing::warn!(error = %e, "listening for other nodes' hints failed; trying again");
                listener = relisten(&shared.channel, &pool).await;
                let _ = shared.heard.send(Hint::Resync);
            }
        }
    }
}

async fn relisten(channel: &str, pool: &PgPool) -> PgListener {
    loop {
        tokio::time::sleep(RELISTEN).await;
        let Ok(mut listener) = PgListener::connect_with(pool).await else { continue };
        if listener.listen(channel).await.is_ok() {
            return listener;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_batch_goes_out_in_payloads_under_the_limit_and_loses_nothing() {
        let batch: Vec<Hint> = (0..2000).map(|i| Hint::Inbox(format!("user-{i:05}"))).collect();
        let out = payloads("node-1", batch.clone());
        assert!(out.len() > 1, "{} payloads", out.len());
        let mut back: Vec<Hint> = Vec::new();
        for p in &out {
            assert!(p.len() < 8000, "{} bytes", p.len());
            let payload: Payload = serde_json::from_str(p).unwrap();
            assert_eq!(payload.node, "node-1");
            back.extend(payload.hints);
        }
        assert_eq!(back, batch);
    }

    #[test]
    fn a_hint_too_big_for_a_payload_becomes_look_at_everything() {
        let out = payloads("n", vec![Hint::Inbox("x".repeat(9000)), Hint::Tasks]);
        let payload: Payload = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(payload.hints, vec![Hint::Resync, Hint::Tasks]);
    }
}
