//! The embedded broker: herald's topics on the same SQLite file as its
//! operations, through the same group-commit writer, so a publish is
//! durable when it answers and costs a share of one fsync. The decisions
//! are [`policy::broker`]'s, run on the writer over [`Rows`].

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use async_trait::async_trait;
use chrono::Utc;
use herald_broker::{Broker, CloudEvent, Message, Nacked, Published, Put, Redelivery, Stats, Subscription};
use herald_core::Time;
use tokio::sync::Notify;

use super::{
    SqliteStore, topics,
    tx::{Rows, now},
};
use crate::{policy::broker as policy, tx::TopicsTx, wakeups::Wakeups};

type BResult<T> = herald_broker::Result<T>;

/// The broker's share of the store: subscriptions in memory, and who is
/// waiting for what.
pub struct State {
    subs: Arc<RwLock<topics::Subs>>,
    wakeups: Wakeups,
}

impl State {
    pub fn new(subs: topics::Subs) -> Self {
        State { subs: Arc::new(RwLock::new(subs)), wakeups: Wakeups::default() }
    }

    fn sub(&self, name: &str) -> BResult<Arc<Subscription>> {
        self.subs
            .read()
            .expect("subscriptions")
            .get(name)
            .ok_or_else(|| herald_broker::Error::UnknownSubscription(name.to_string()))
    }
}

fn storage(e: crate::Error) -> herald_broker::Error {
    herald_broker::Error::Storage(e.to_string())
}

#[async_trait]
impl Broker for SqliteStore {
    async fn publish(&self, topic: &str, events: Vec<CloudEvent>) -> BResult<Vec<Published>> {
        let (subs, topic, window) = (self.broker.subs.clone(), topic.to_string(), self.dedupe_window);
        let (published, woken) = self
            .writer
            .submit(move |c| {
                let subs = subs.read().expect("subscriptions");
                let targets: Vec<&Subscription> = subs.for_topic(&topic).collect();
                now(policy::publish(&mut Rows(c), &targets, &topic, &events, window, Utc::now()))
            })
            .await
            .map_err(storage)?;
        self.broker.wakeups.wake(&woken);
        Ok(published)
    }

    async fn put_subscription(&self, sub: &Subscription) -> BResult<Put> {
        let (subs, sub) = (self.broker.subs.clone(), sub.clone());
        let name = sub.name.clone();
        let put = self
            .writer
            .submit(move |c| {
                let put = now(policy::put(&mut Rows(c), &sub, Utc::now()))?;
                if put != Put::Unchanged {
                    subs.write().expect("subscriptions").insert(sub);
                }
                Ok(put)
            })
            .await
            .map_err(storage)?;
        self.broker.wakeups.wake(&[name]);
        Ok(put)
    }

    async fn delete_subscription(&self, name: &str) -> BResult<bool> {
        let (subs, name) = (self.broker.subs.clone(), name.to_string());
        let woken = [name.clone()];
        let gone = self
            .writer
            .submit(move |c| {
                let gone = now(policy::delete(&mut Rows(c), &name))?;
                subs.write().expect("subscriptions").remove(&name);
                Ok(gone)
            })
            .await
            .map_err(storage)?;
        // Whoever waits on it looks again and finds it gone.
        self.broker.wakeups.wake(&woken);
        Ok(gone)
    }

    async fn subscription(&self, name: &str) -> BResult<Option<Subscription>> {
        Ok(self.broker.subs.read().expect("subscriptions").get(name).map(|s| (*s).clone()))
    }

    async fn subscriptions(&self) -> BResult<Vec<Subscription>> {
        Ok(self.broker.subs.read().expect("subscriptions").all().into_iter().map(|s| (*s).clone()).collect())
    }

    async fn pull(&self, sub: &str, max: usize, lease: Duration) -> BResult<Vec<Message>> {
        let s = self.broker.sub(sub)?;
        let name = s.name.clone();
        let (messages, moved) = self
            .writer
            .submit(move |c| now(policy::pull(&mut Rows(c), &s, max, lease, Utc::now())))
            .await
            .map_err(storage)?;
        if moved {
            self.broker.wakeups.wake(&[name]);
        }
        Ok(messages)
    }

    async fn ack(&self, sub: &str, ack_ids: &[String]) -> BResult<Vec<String>> {
        let s = self.broker.sub(sub)?;
        let (name, ids) = (s.name.clone(), ack_ids.to_vec());
        let (unknown, moved) =
            self.writer.submit(move |c| now(policy::ack(&mut Rows(c), &name, &ids))).await.map_err(storage)?;
        if moved {
            self.broker.wakeups.wake(std::slice::from_ref(&s.name));
        }
        Ok(unknown)
    }

    async fn nack(&self, sub: &str, ack_ids: &[String], redelivery: Redelivery, error: &str) -> BResult<Nacked> {
        let s = self.broker.sub(sub)?;
        let (name, ids, error) = (s.name.clone(), ack_ids.to_vec(), error.to_string());
        let nacked = self
            .writer
            .submit(move |c| now(policy::nack(&mut Rows(c), &s, &ids, redelivery, &error, Utc::now())))
            .await
            .map_err(storage)?;
        // A dead letter lets its key's next event go; a retry may be due at once.
        self.broker.wakeups.wake(&[name]);
        Ok(nacked)
    }

    async fn redeliver(&self, sub: &str, event: CloudEvent) -> BResult<()> {
        let s = self.broker.sub(sub)?;
        let name = s.name.clone();
        self.writer
            .submit(move |c| now(policy::redeliver(&mut Rows(c), &s, &event, Utc::now())))
            .await
            .map_err(storage)?;
        self.broker.wakeups.wake(&[name]);
        Ok(())
    }

    async fn stats(&self, sub: &str) -> BResult<Stats> {
        let name = self.broker.sub(sub)?.name.clone();
        self.readers.with(move |c| now(policy::stats(&mut Rows(c), &name, Utc::now()))).await.map_err(storage)
    }

    async fn next_due(&self, sub: &str) -> BResult<Option<Time>> {
        let name = self.broker.sub(sub)?.name.clone();
        self.readers.with(move |c| now(Rows(c).next_due(&name))).await.map_err(storage)
    }

    fn wakeup(&self, sub: &str) -> Arc<Notify> {
        self.broker.wakeups.get(sub)
    }

    async fn maintain(&self) -> BResult<()> {
        self.writer.submit(|c| now(policy::prune(&mut Rows(c), Utc::now()))).await.map(drop).map_err(storage)
    }
}
