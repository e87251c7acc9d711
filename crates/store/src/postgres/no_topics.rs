//! Topics are not on PostgreSQL yet: the broker half of a `postgres://`
//! store. Having no subscriptions and nothing to tidy is true of it, so a
//! server with no topics configured runs; anything that needs a topic is
//! refused with an error that says so.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_broker::{
    Broker, CloudEvent, Error, Message, Nacked, Published, Put, Redelivery, Result, Stats, Subscription,
};

pub struct NoTopics;

fn unsupported<T>() -> Result<T> {
    Err(Error::Storage(
        "topics on PostgreSQL come next (issue 15): run topics on the embedded store (sqlite://) for now".into(),
    ))
}

#[async_trait]
impl Broker for NoTopics {
    async fn publish(&self, _: &str, _: Vec<CloudEvent>) -> Result<Vec<Published>> {
        unsupported()
    }

    async fn put_subscription(&self, _: &Subscription) -> Result<Put> {
        unsupported()
    }

    async fn delete_subscription(&self, _: &str) -> Result<bool> {
        Ok(false)
    }

    async fn subscription(&self, _: &str) -> Result<Option<Subscription>> {
        Ok(None)
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>> {
        Ok(vec![])
    }

    async fn pull(&self, sub: &str, _: usize, _: Duration) -> Result<Vec<Message>> {
        Err(Error::UnknownSubscription(sub.into()))
    }

    async fn ack(&self, sub: &str, _: &[String]) -> Result<Vec<String>> {
        Err(Error::UnknownSubscription(sub.into()))
    }

    async fn nack(&self, sub: &str, _: &[String], _: Redelivery, _: &str) -> Result<Nacked> {
        Err(Error::UnknownSubscription(sub.into()))
    }

    async fn redeliver(&self, sub: &str, _: CloudEvent) -> Result<()> {
        Err(Error::UnknownSubscription(sub.into()))
    }

    async fn stats(&self, sub: &str) -> Result<Stats> {
        Err(Error::UnknownSubscription(sub.into()))
    }

    async fn next_due(&self, _: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(None)
    }

    fn wakeup(&self, _: &str) -> Arc<tokio::sync::Notify> {
        Arc::new(tokio::sync::Notify::new())
    }

    async fn maintain(&self) -> Result<()> {
        Ok(())
    }
}
