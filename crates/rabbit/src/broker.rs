//! The broker trait on RabbitMQ: each method reads the subscription's
//! definition (see `defs`) and calls into the modules beside this one.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_broker::{
    Broker, CloudEvent, Delivery, Message, Nacked, Published, Put, RawSubscription, Redelivery, Stats, Subscription,
    subscription::INTERNAL_PREFIX,
};
use tokio::sync::Notify;

use crate::{Inner, RabbitBroker, held::Runtime, inbox, storage, topology};

type BResult<T> = herald_broker::Result<T>;

/// A stored definition as a subscription: herald's own by their name.
fn parse_spec(name: &str, spec: &str) -> BResult<Subscription> {
    let corrupt = |e: &dyn std::fmt::Display| herald_broker::Error::Storage(format!("subscription {name}: {e}"));
    let raw: RawSubscription = serde_json::from_str(spec).map_err(|e| corrupt(&e))?;
    if name.starts_with(INTERNAL_PREFIX) {
        return Ok(Subscription::internal(&raw.topic, raw.filter.map(|f| f.types).unwrap_or_default()));
    }
    Subscription::parse(name, raw).map_err(|e| corrupt(&e))
}

/// The prefetch of a standing consumer on the keyless queue, for a
/// subscription herald delivers itself (see `held`): what it may have in
/// flight. What it holds when its process stops goes back to the queue
/// counted as a return, as a keyed partition's one event does.
pub(crate) fn standing(sub: &Subscription) -> Option<u16> {
    let in_flight = match &sub.delivery {
        Delivery::Push { max_in_flight, .. } => *max_in_flight,
        Delivery::Internal => INTERNAL_PREFETCH,
        Delivery::Pull => return None,
    };
    Some(u16::try_from(in_flight).unwrap_or(u16::MAX))
}

/// A subscription whose queues this process deletes, until dropped.
struct Going<'a> {
    inner: &'a Inner,
    name: String,
}

impl Drop for Going<'_> {
    fn drop(&mut self) {
        self.inner.going.lock().expect("going").remove(&self.name);
    }
}

/// What an `await` steps' listener may hold: the engine matches 32 events
/// at once.
const INTERNAL_PREFETCH: usize = 32;

impl Inner {
    /// The definition as the store has it now, kept for the calls after.
    async fn read_def(&self, name: &str) -> BResult<Option<String>> {
        let spec = self.ledger.definition(self.scope(), name).await?;
        self.defs.keep(name, spec.as_deref());
        Ok(spec)
    }

    /// The subscription, as read from the store less than a moment ago,
    /// or as the store has it now (see `defs`).
    pub(crate) async fn find(&self, name: &str) -> BResult<Option<Subscription>> {
        let spec = match self.defs.recent(name) {
            Some(spec) => Some(spec),
            None => self.read_def(name).await?,
        };
        let Some(spec) = spec else {
            self.close_runtime(name).await;
            return Ok(None);
        };
        let sub = parse_spec(name, &spec)?;
        self.wakeups.set_topic(name, &sub.topic);
        Ok(Some(sub))
    }

    async fn sub(&self, name: &str) -> BResult<Subscription> {
        self.find(name).await?.ok_or_else(|| herald_broker::Error::UnknownSubscription(name.to_string()))
    }

    pub(crate) fn runtime_if_any(&self, name: &str) -> Option<Arc<Runtime>> {
        self.runtimes.lock().expect("runtimes").get(name).filter(|rt| rt.alive()).cloned()
    }

    /// Deletes the subscription's queues: its channel here closed first
    /// (see `held`), and none started again (see `runtime`) until the
    /// returned mark is dropped, once the definition says what is left.
    async fn delete_queues(&self, name: &str) -> BResult<Going<'_>> {
        self.going.lock().expect("going").insert(name.to_string());
        let going = Going { inner: self, name: name.to_string() };
        {
            // A start under way ends first, and is closed.
            let _one = self.starting.lock().await;
            self.close_runtime(name).await;
        }
        self.with_channel(async |ch| topology::delete_subscription(ch, &self.names, name).await).await?;
        Ok(going)
    }

    /// Closes the subscription's channel here, if it has one.
    async fn close_runtime(&self, name: &str) {
        let rt = self.runtimes.lock().expect("runtimes").remove(name);
        if let Some(rt) = rt {
            rt.close().await;
        }
    }

    /// The subscription's channel here, started (or started again, when
    /// its consumers ended) on first use.
    pub(crate) async fn runtime(&self, sub: &Subscription) -> BResult<Arc<Runtime>> {
        let standing = standing(sub);
        if let Some(rt) = self.runtime_if_any(&sub.name).filter(|rt| rt.standing == standing) {
            return Ok(rt);
        }
        let _one = self.starting.lock().await;
        if let Some(rt) = self.runtime_if_any(&sub.name).filter(|rt| rt.standing == standing) {
            return Ok(rt);
        }
        // Consumers started on queues being deleted meet RabbitMQ 3.10's
        // crash on a consumer's start crossing its channel's close (the
        // whole connection goes, with every call under way on it).
        if self.going.lock().expect("going").contains(&sub.name) {
            return Err(herald_broker::Error::UnknownSubscription(sub.name.clone()));
        }
        // A runtime of another kind (the definition changed) closes its
        // channel first: what it held returns to the queues, ahead of what
        // waits there, before the new channel consumes.
        self.close_runtime(&sub.name).await;
        let rt = Runtime::start(&self.conn, &self.names, &sub.name, standing, self.wakeups.get(&sub.name)).await?;
        self.runtimes.lock().expect("runtimes").insert(sub.name.clone(), rt.clone());
        Ok(rt)
    }

    async fn with_channel<T>(&self, f: impl AsyncFnOnce(&lapin::Channel) -> BResult<T>) -> BResult<T> {
        let ch = self.conn.create_channel().await.map_err(storage)?;
        let out = f(&ch).await;
        let _ = ch.close(200, "done").await;
        out
    }
}

#[async_trait]
impl Broker for RabbitBroker {
    async fn publish(&self, topic: &str, events: Vec<CloudEvent>) -> BResult<Vec<Published>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let i = &self.session().await?;
        let routes: Vec<(String, String)> = events
            .iter()
            .map(|e| (i.names.routing_key(topic, i.names.part(e.ordering_key())), topic.to_string()))
            .collect();
        let published = i.publish_to(&i.names.topics_exchange(), &routes, &events, false).await?;
        i.wakeups.wake_topic(topic);
        inbox::signal(&i.publisher, &i.names, topic).await;
        Ok(published)
    }

    async fn put_subscription(&self, sub: &Subscription) -> BResult<Put> {
        let i = &self.session().await?;
        let spec = serde_json::to_string(&sub.raw).map_err(storage)?;
        let old = i.read_def(&sub.name).await?;
        let put = match &old {
            Some(old) if *old == spec => return Ok(Put::Unchanged),
            Some(_) => Put::Updated,
            None => Put::Created,
        };
        let moved = match &old {
            Some(old) => parse_spec(&sub.name, old)?.topic != sub.topic,
            None => false,
        };
        // Queues first: a definition others can read always has them. A
        // subscription moved to another topic starts there afresh.
        let _going = if moved { Some(i.delete_queues(&sub.name).await?) } else { None };
        i.with_channel(async |ch| topology::declare_subscription(ch, &i.names, sub).await).await?;
        i.ledger.put_definition(i.scope(), &sub.name, &spec).await?;
        i.defs.keep(&sub.name, Some(&spec));
        i.wakeups.set_topic(&sub.name, &sub.topic);
        i.wakeups.wake(&sub.name);
        Ok(put)
    }

    async fn delete_subscription(&self, name: &str) -> BResult<bool> {
        let i = &self.session().await?;
        if i.read_def(name).await?.is_none() {
            return Ok(false);
        }
        // The queues first: should the definition's removal then fail, a
        // delete again finishes the work; the other way round, queues
        // nobody knows of would keep their events for ever.
        let _going = i.delete_queues(name).await?;
        i.ledger.delete_definition(i.scope(), name).await?;
        i.defs.keep(name, None);
        // Whoever waits on it looks again and finds it gone.
        i.wakeups.wake(name);
        Ok(true)
    }

    /// As the store has it now: needs no connection to RabbitMQ.
    async fn subscription(&self, name: &str) -> BResult<Option<Subscription>> {
        let spec = self.ledger.definition(self.scope(), name).await?;
        self.defs.keep(name, spec.as_deref());
        spec.map(|spec| parse_spec(name, &spec)).transpose()
    }

    /// As the store has them now: needs no connection to RabbitMQ.
    async fn subscriptions(&self) -> BResult<Vec<Subscription>> {
        let specs = self.ledger.definitions(self.scope()).await?;
        specs
            .iter()
            .map(|(name, spec)| {
                self.defs.keep(name, Some(spec));
                parse_spec(name, spec)
            })
            .collect()
    }

    async fn pull(&self, sub: &str, max: usize, lease: Duration) -> BResult<Vec<Message>> {
        let i = self.session().await?;
        let s = i.sub(sub).await?;
        i.lease(&s, max, lease).await
    }

    async fn ack(&self, sub: &str, ack_ids: &[String]) -> BResult<Vec<String>> {
        let i = self.session().await?;
        let s = i.sub(sub).await?;
        i.acknowledge(&s, ack_ids).await
    }

    async fn nack(&self, sub: &str, ack_ids: &[String], redelivery: Redelivery, error: &str) -> BResult<Nacked> {
        let i = self.session().await?;
        let s = i.sub(sub).await?;
        i.give_back(&s, ack_ids, redelivery, error).await
    }

    async fn redeliver(&self, sub: &str, event: CloudEvent) -> BResult<()> {
        let i = self.session().await?;
        let s = i.sub(sub).await?;
        i.redrive(&s, &event).await?;
        i.wakeups.wake(sub);
        inbox::signal(&i.publisher, &i.names, &s.topic).await;
        Ok(())
    }

    async fn stats(&self, sub: &str) -> BResult<Stats> {
        let i = self.session().await?;
        let s = i.sub(sub).await?;
        i.subscription_stats(&s).await
    }

    async fn next_due(&self, sub: &str) -> BResult<Option<DateTime<Utc>>> {
        let i = self.session().await?;
        let s = i.sub(sub).await?;
        i.subscription_next_due(&s).await
    }

    fn wakeup(&self, sub: &str) -> Arc<Notify> {
        self.wakeups.get(sub)
    }

    /// Forgets publishes past the dedupe window, in the store.
    async fn maintain(&self) -> BResult<()> {
        self.ledger.forget(self.scope()).await.map(drop)
    }
}

impl RabbitBroker {
    fn scope(&self) -> &str {
        &self.config.prefix
    }
}
