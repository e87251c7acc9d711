//! The broker on PostgreSQL: [`policy::broker`] run inside one
//! transaction per call, as the store's writes are. Nodes share the
//! tables; after a commit that may have made a subscription's events due,
//! a node wakes its own waiting consumers and hints the other nodes
//! ([`crate::hints::Hint::Subscription`]), whose engines wake theirs
//! (as [`PgStore::wake`] does).
//!
//! A deadlock between two nodes' writes (two batches taking the same
//! keys in another order) rolls one back; it runs again.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use herald_broker::{Broker, CloudEvent, Message, Nacked, Published, Put, Redelivery, Stats, Subscription};
use herald_core::Time;
use tokio::sync::Notify;

use super::{PgStore, RACES, topics, tx::PgTx};
use crate::{Error, hints::Hint, policy::broker as policy, tx::TopicsTx};

type BResult<T> = herald_broker::Result<T>;

fn storage(e: Error) -> herald_broker::Error {
    herald_broker::Error::Storage(e.to_string())
}

/// What a call on a subscription answers when it is not there.
fn known<T>(name: &str, found: Option<T>) -> BResult<T> {
    found.ok_or_else(|| herald_broker::Error::UnknownSubscription(name.to_string()))
}

/// Runs `$body` (a future over `$tx`, a [`PgTx`]) in a transaction of
/// `$store`'s, committed on `Ok`; again, if it lost a race to another
/// node. A macro: the body borrows the transaction, which a closure
/// handing back a `Send` future cannot say.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {
        async {
            let mut race = 0;
            loop {
                let mut open = $store.tx();
                let out = {
                    let $tx = &mut open;
                    $body.await
                };
                match open.end(out).await {
                    Err(Error::Raced(e)) if race < RACES => {
                        race += 1;
                        tracing::debug!(error = %e, "a broker write lost a race to another node; running it again");
                    }
                    out => break out,
                }
            }
        }
        .await
        .map_err(storage)
    };
}

impl PgStore {
    /// Wakes this node's consumers of these subscriptions: another node
    /// says they have events due.
    pub fn wake(&self, subs: &[String]) {
        self.wakeups.wake(subs);
    }

    /// After a commit: these subscriptions may have events due, here and
    /// for consumers on other nodes.
    fn woke(&self, subs: &[String]) {
        self.wakeups.wake(subs);
        self.hints.send(subs.iter().cloned().map(Hint::Subscription));
    }

    /// A connection of the pool, for reads.
    async fn conn(&self) -> BResult<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.pool.acquire().await.map_err(|e| storage(e.into()))
    }
}

#[async_trait]
impl Broker for PgStore {
    async fn publish(&self, topic: &str, events: Vec<CloudEvent>) -> BResult<Vec<Published>> {
        let window = self.dedupe_window;
        let (published, woken) = in_tx!(self, |tx| async {
            let subs = topics::for_topic(tx.conn().await?, topic).await?;
            let targets: Vec<&Subscription> = subs.iter().collect();
            policy::publish(tx, &targets, topic, &events, window, Utc::now()).await
        })?;
        self.woke(&woken);
        Ok(published)
    }

    async fn put_subscription(&self, sub: &Subscription) -> BResult<Put> {
        let put = in_tx!(self, |tx| policy::put(tx, sub, Utc::now()))?;
        self.woke(std::slice::from_ref(&sub.name));
        Ok(put)
    }

    async fn delete_subscription(&self, name: &str) -> BResult<bool> {
        let gone = in_tx!(self, |tx| policy::delete(tx, name))?;
        // Whoever waits on it looks again and finds it gone.
        self.woke(&[name.to_string()]);
        Ok(gone)
    }

    async fn subscription(&self, name: &str) -> BResult<Option<Subscription>> {
        topics::by_name(&mut *self.conn().await?, name).await.map_err(storage)
    }

    async fn subscriptions(&self) -> BResult<Vec<Subscription>> {
        topics::all(&mut *self.conn().await?).await.map_err(storage)
    }

    async fn pull(&self, sub: &str, max: usize, lease: Duration) -> BResult<Vec<Message>> {
        let pulled = in_tx!(self, |tx| async {
            let Some(s) = topics::by_name(tx.conn().await?, sub).await? else { return Ok(None) };
            policy::pull(tx, &s, max, lease, Utc::now()).await.map(Some)
        })?;
        let (messages, moved) = known(sub, pulled)?;
        if moved {
            self.woke(&[sub.to_string()]);
        }
        Ok(messages)
    }

    async fn ack(&self, sub: &str, ack_ids: &[String]) -> BResult<Vec<String>> {
        let acked = in_tx!(self, |tx| async {
            let Some(s) = topics::by_name(tx.conn().await?, sub).await? else { return Ok(None) };
            policy::ack(tx, &s.name, ack_ids).await.map(Some)
        })?;
        let (unknown, moved) = known(sub, acked)?;
        if moved {
            self.woke(&[sub.to_string()]);
        }
        Ok(unknown)
    }

    async fn nack(&self, sub: &str, ack_ids: &[String], redelivery: Redelivery, error: &str) -> BResult<Nacked> {
        let nacked = in_tx!(self, |tx| async {
            let Some(s) = topics::by_name(tx.conn().await?, sub).await? else { return Ok(None) };
            policy::nack(tx, &s, ack_ids, redelivery, error, Utc::now()).await.map(Some)
        })?;
        let nacked = known(sub, nacked)?;
        // A dead letter lets its key's next event go; a retry may be due at once.
        self.woke(&[sub.to_string()]);
        Ok(nacked)
    }

    async fn redeliver(&self, sub: &str, event: CloudEvent) -> BResult<()> {
        let done = in_tx!(self, |tx| async {
            let Some(s) = topics::by_name(tx.conn().await?, sub).await? else { return Ok(None) };
            policy::redeliver(tx, &s, &event, Utc::now()).await.map(Some)
        })?;
        known(sub, done)?;
        self.woke(&[sub.to_string()]);
        Ok(())
    }

    async fn stats(&self, sub: &str) -> BResult<Stats> {
        let mut conn = self.conn().await?;
        let c = &mut *conn;
        let s = known(sub, topics::by_name(c, sub).await.map_err(storage)?)?;
        policy::stats(&mut PgTx::on(c, &self.task_ids), &s.name, Utc::now()).await.map_err(storage)
    }

    async fn next_due(&self, sub: &str) -> BResult<Option<Time>> {
        let mut conn = self.conn().await?;
        let c = &mut *conn;
        let s = known(sub, topics::by_name(c, sub).await.map_err(storage)?)?;
        PgTx::on(c, &self.task_ids).next_due(&s.name).await.map_err(storage)
    }

    fn wakeup(&self, sub: &str) -> Arc<Notify> {
        self.wakeups.get(sub)
    }

    async fn maintain(&self) -> BResult<()> {
        in_tx!(self, |tx| policy::prune(tx, Utc::now())).map(drop)
    }
}
