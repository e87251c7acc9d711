//! The transactional outbox: a service that owns a database writes the
//! events it means to publish into its own `herald_outbox` table, in the
//! same transaction as the change they announce; a relay publishes the
//! committed rows to herald, in order, and marks them sent.
//!
//! # What this guarantees
//!
//! - An event is published if and only if its transaction committed: a
//!   rolled-back transaction leaves no row, and a committed row survives
//!   any crash of the service, to be published by the next relay pass.
//! - At least once: a relay that dies after herald stored a batch but
//!   before marking it sent publishes it again. herald recognises the same
//!   `source` and `id` within its dedupe window and stores it once, so
//!   subscribers see each event once, provided the relay runs again within
//!   that window (10 minutes by default).
//! - In order: rows go out in the order their transactions inserted them
//!   (by `seq`), a batch at a time, the next only after herald answered the
//!   last. With PostgreSQL, several replicas may run relays: an advisory
//!   lock lets one publish at a time. With SQLite, run one relay per file.
//! - Nothing is lost while herald is down: the relay retries with backoff.
//!
//! ```no_run
//! # async fn run(pool: sqlx::SqlitePool, herald: herald_sdk::Client, event: herald_broker::CloudEvent) -> herald_sdk::Result<()> {
//! use herald_sdk::{Outbox, Relay};
//! Outbox::create_tables(&pool).await?;
//! let relay = Relay::new(pool.clone(), herald).spawn();
//!
//! let mut tx = pool.begin().await?;
//! sqlx::query("UPDATE stock SET held = held + 1 WHERE sku = 'tea'").execute(&mut *tx).await?;
//! Outbox::enqueue(&mut *tx, "inventory", &event).await?;
//! tx.commit().await?;
//! relay.wake(); // publish now rather than at the next poll
//! # Ok(()) }
//! ```

use std::{sync::Arc, time::Duration};

use herald_broker::CloudEvent;
use tokio::sync::Notify;

use crate::{
    Client, Result,
    db::{Conn, Pool},
};

/// Rows published per batch.
const BATCH: i64 = 100;
/// How often the relay looks without being woken.
const POLL: Duration = Duration::from_secs(1);
/// How long sent rows are kept.
const KEEP_SENT: Duration = Duration::from_secs(24 * 3600);

pub struct Outbox;

impl Outbox {
    /// Creates the `herald_outbox` and `herald_inbox` tables if they are missing.
    pub async fn create_tables(pool: &impl Pool) -> Result<()> {
        Ok(pool.create_tables().await?)
    }

    /// Adds an event to the outbox on `conn`, inside the caller's transaction.
    pub async fn enqueue(conn: &mut impl Conn, topic: &str, event: &CloudEvent) -> Result<()> {
        Self::enqueue_traced(conn, topic, event, None).await
    }

    /// As [`Outbox::enqueue`], the row keeping the span the event was
    /// made in (a step's `StepCall::traceparent`, say) as the event's
    /// `traceparent` extension, unless it has one: whenever the relay
    /// publishes it, its consumers' spans link to that span.
    pub async fn enqueue_traced(
        conn: &mut impl Conn,
        topic: &str,
        event: &CloudEvent,
        traceparent: Option<&str>,
    ) -> Result<()> {
        let made_in = traceparent.and_then(herald_core::trace::TraceParent::parse);
        let body = match made_in {
            Some(p) => {
                let mut event = event.clone();
                event.trace_from(p, None);
                serde_json::to_string(&event)
            }
            None => serde_json::to_string(event),
        };
        let body = body.map_err(|e| crate::Error::Decode(e.to_string()))?;
        Ok(conn.insert_outbox(topic, &body, now_ms()).await?)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Publishes committed outbox rows to herald.
pub struct Relay<P: Pool> {
    pool: P,
    client: Client,
}

/// A running relay: wake it after a commit; dropping it stops the relay.
pub struct RelayHandle {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl RelayHandle {
    /// Publish now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<P: Pool> Relay<P> {
    pub fn new(pool: P, client: Client) -> Self {
        Relay { pool, client }
    }

    /// Publishes every committed row not yet sent, in order; answers how many.
    pub async fn publish_pending(&self) -> Result<usize> {
        let client = self.client.clone();
        self.pool
            .exclusive(move |pool| async move {
                let mut total = 0;
                loop {
                    let rows = pool.pending(BATCH).await?;
                    if rows.is_empty() {
                        return Ok(total);
                    }
                    // Consecutive rows of one topic go out as one batch.
                    let mut start = 0;
                    while start < rows.len() {
                        let topic = &rows[start].1;
                        let end = rows[start..].iter().position(|r| &r.1 != topic).map_or(rows.len(), |n| start + n);
                        let events: Vec<CloudEvent> = rows[start..end]
                            .iter()
                            .map(|r| serde_json::from_str(&r.2).map_err(|e| crate::Error::Decode(e.to_string())))
                            .collect::<Result<_>>()?;
                        client.publish_batch(topic, &events).await?;
                        let seqs: Vec<i64> = rows[start..end].iter().map(|r| r.0).collect();
                        pool.mark_sent(&seqs, now_ms()).await?;
                        total += seqs.len();
                        start = end;
                    }
                }
            })
            .await
    }

    /// Runs the relay in the background: it publishes whenever woken, every
    /// second anyway, and backs off while herald cannot be reached.
    pub fn spawn(self) -> RelayHandle {
        let wake = Arc::new(Notify::new());
        let woken = wake.clone();
        let task = tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let wait = match self.publish_pending().await {
                    Ok(_) => {
                        failures = 0;
                        let _ = self.pool.prune(now_ms() - KEEP_SENT.as_millis() as i64).await;
                        POLL
                    }
                    Err(e) => {
                        failures = (failures + 1).min(6);
                        tracing::warn!(error = %e, "the outbox relay could not publish; it tries again");
                        Duration::from_millis(100 << failures)
                    }
                };
                tokio::select! {
                    _ = woken.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
        RelayHandle { wake, task }
    }
}
