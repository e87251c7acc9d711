//! The broker trait on JetStream: each method reads the subscription's
//! definition from the KV bucket (so every herald process sees every
//! other's puts and deletes) and calls into the modules beside this one.

use std::{sync::Arc, time::Duration};

use async_nats::Subject;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use herald_broker::{
    Broker, CloudEvent, Message, Nacked, Published, Put, RawSubscription, Redelivery, Stats, Subscription,
    subscription::INTERNAL_PREFIX,
};
use tokio::sync::Notify;

use crate::{NatsBroker, names::Part, storage, wake};

type BResult<T> = herald_broker::Result<T>;

/// The header JetStream dedupes publishes by.
const MSG_ID: &str = "Nats-Msg-Id";

/// A stored definition as a subscription: herald's own by their name.
fn parse_spec(name: &str, spec: &[u8]) -> BResult<Subscription> {
    let corrupt = |e: &dyn std::fmt::Display| herald_broker::Error::Storage(format!("subscription {name}: {e}"));
    let raw: RawSubscription = serde_json::from_slice(spec).map_err(|e| corrupt(&e))?;
    if name.starts_with(INTERNAL_PREFIX) {
        return Ok(Subscription::internal(&raw.topic, raw.filter.map(|f| f.types).unwrap_or_default()));
    }
    Subscription::parse(name, raw).map_err(|e| corrupt(&e))
}

/// The dedupe id of an event: its source and id, which may hold any
/// character, made one header value. The length prefix keeps
/// (`a:b`, `c`) and (`a`, `b:c`) apart.
fn msg_id(event: &CloudEvent) -> String {
    fn clean(s: &str) -> std::borrow::Cow<'_, str> {
        match s.contains(['\r', '\n']) {
            true => std::borrow::Cow::Owned(s.replace(['\r', '\n'], " ")),
            false => std::borrow::Cow::Borrowed(s),
        }
    }
    format!("{}:{}:{}", event.source.len(), clean(&event.source), clean(&event.id))
}

/// What the server answered for one event published.
struct Stored {
    seq: u64,
    duplicate: bool,
}

/// How long the server has to confirm a batch's events (async-nats's
/// JetStream default).
const CONFIRM_WAIT: Duration = Duration::from_secs(5);

/// The server's answer to one publish: where the event is stored, or why not.
#[derive(serde::Deserialize)]
struct PubAck {
    seq: Option<u64>,
    #[serde(default)]
    duplicate: bool,
    error: Option<PubAckError>,
}

#[derive(serde::Deserialize)]
struct PubAckError {
    #[serde(default)]
    description: String,
}

/// A publish's answer read, or the reason it failed.
fn stored(answer: Option<async_nats::Message>) -> BResult<Stored> {
    let m = answer.ok_or_else(|| storage("the server did not confirm a publish in time"))?;
    match m.status {
        None | Some(async_nats::StatusCode::OK) => {}
        Some(async_nats::StatusCode::NO_RESPONDERS) => return Err(storage("no stream takes the topic's subject")),
        Some(status) => return Err(storage(format!("a publish was answered {status}"))),
    }
    let ack: PubAck = serde_json::from_slice(&m.payload).map_err(storage)?;
    match (ack.seq, ack.error) {
        (_, Some(e)) => Err(storage(format!("a publish was refused: {}", e.description))),
        (Some(seq), None) => Ok(Stored { seq, duplicate: ack.duplicate }),
        (None, None) => Err(storage("a publish's answer named no sequence")),
    }
}

impl NatsBroker {
    async fn spec(&self, name: &str) -> BResult<Option<bytes::Bytes>> {
        self.subs.get(self.names.sub_key(name)).await.map_err(storage)
    }

    async fn find(&self, name: &str) -> BResult<Option<Subscription>> {
        let Some(spec) = self.spec(name).await? else { return Ok(None) };
        let sub = parse_spec(name, &spec)?;
        self.wakeups.set_topic(name, &sub.topic);
        Ok(Some(sub))
    }

    async fn sub(&self, name: &str) -> BResult<Subscription> {
        self.find(name).await?.ok_or_else(|| herald_broker::Error::UnknownSubscription(name.to_string()))
    }

    async fn publish_all(&self, topic: &str, events: &[CloudEvent]) -> BResult<Vec<Stored>> {
        let mut batch = self.replies.batch();
        // A batch's events mostly share a few parts: each subject made once.
        let mut subjects: Vec<(Part, Subject)> = Vec::new();
        // All sent before any answer is awaited: one round trip per batch.
        for (i, e) in events.iter().enumerate() {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(MSG_ID, msg_id(e).as_str());
            let part = self.names.part(e.ordering_key());
            let subject = match subjects.iter().find(|(p, _)| *p == part) {
                Some((_, s)) => s.clone(),
                None => {
                    let s = Subject::from(self.names.subject(topic, part));
                    subjects.push((part, s.clone()));
                    s
                }
            };
            let body = serde_json::to_vec(e).map_err(storage)?;
            self.client
                .publish_with_reply_and_headers(subject, batch.reply_to(i), headers, body.into())
                .await
                .map_err(storage)?;
        }
        batch.collect(events.len(), CONFIRM_WAIT).await.into_iter().map(stored).collect()
    }
}

#[async_trait]
impl Broker for NatsBroker {
    async fn publish(&self, topic: &str, events: Vec<CloudEvent>) -> BResult<Vec<Published>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_stream(topic).await?;
        let stored = match self.publish_all(topic, &events).await {
            Ok(p) => p,
            Err(first) => {
                // The stream may have been removed since this process saw
                // it: made again, the batch goes once more (what already
                // landed is recognised by its id and not stored twice).
                tracing::warn!(topic, error = %first, "publishing failed; making sure of the stream and trying once more");
                self.streams.lock().expect("streams").remove(topic);
                self.ensure_stream(topic).await?;
                self.publish_all(topic, &events).await?
            }
        };
        self.wakeups.wake_topic(topic);
        wake::signal(&self.client, &self.names, topic).await;
        let published = events.into_iter().zip(stored);
        Ok(published
            .map(|(e, s)| Published { id: e.id, source: e.source, seq: s.seq, duplicate: s.duplicate })
            .collect())
    }

    async fn put_subscription(&self, sub: &Subscription) -> BResult<Put> {
        let spec = serde_json::to_vec(&sub.raw).map_err(storage)?;
        let old = self.spec(&sub.name).await?;
        let put = match &old {
            Some(old) if old[..] == spec[..] => return Ok(Put::Unchanged),
            Some(_) => Put::Updated,
            None => Put::Created,
        };
        if let Some(old) = old.map(|o| parse_spec(&sub.name, &o)).transpose()?
            && old.topic != sub.topic
        {
            self.delete_consumers(&old.name, &old.topic).await?;
        }
        // Consumers first: a definition others can read always has them.
        self.put_consumers(sub).await?;
        self.subs.put(self.names.sub_key(&sub.name), spec.into()).await.map_err(storage)?;
        self.wakeups.set_topic(&sub.name, &sub.topic);
        self.wakeups.wake(&sub.name);
        Ok(put)
    }

    async fn delete_subscription(&self, name: &str) -> BResult<bool> {
        let Some(sub) = self.find(name).await? else { return Ok(false) };
        // The consumers first: should the definition's removal then fail,
        // a delete again finishes the work; the other way round, consumers
        // nobody knows of would keep their events on the server for ever.
        self.delete_consumers(name, &sub.topic).await?;
        self.subs.purge(self.names.sub_key(name)).await.map_err(storage)?;
        // Whoever waits on it looks again and finds it gone.
        self.wakeups.wake(name);
        Ok(true)
    }

    async fn subscription(&self, name: &str) -> BResult<Option<Subscription>> {
        self.find(name).await
    }

    async fn subscriptions(&self) -> BResult<Vec<Subscription>> {
        let mut keys = match self.subs.keys().await {
            Ok(keys) => keys,
            Err(e) => return Err(storage(e)),
        };
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let name = key.map_err(storage)?.replace('=', ".");
            if let Some(sub) = self.find(&name).await? {
                out.push(sub);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn pull(&self, sub: &str, max: usize, lease: Duration) -> BResult<Vec<Message>> {
        let s = self.sub(sub).await?;
        let (messages, moved) = self.lease(&s, max, lease).await?;
        if moved {
            self.wakeups.wake(sub);
            wake::signal(&self.client, &self.names, &s.topic).await;
        }
        Ok(messages)
    }

    async fn ack(&self, sub: &str, ack_ids: &[String]) -> BResult<Vec<String>> {
        let s = self.sub(sub).await?;
        let (unknown, keyed) = self.acknowledge(&s, ack_ids).await?;
        if keyed {
            // A key's next event is free, here or for another process.
            self.wakeups.wake(sub);
            wake::signal(&self.client, &self.names, &s.topic).await;
        }
        Ok(unknown)
    }

    async fn nack(&self, sub: &str, ack_ids: &[String], redelivery: Redelivery, error: &str) -> BResult<Nacked> {
        let s = self.sub(sub).await?;
        let nacked = self.give_back(&s, ack_ids, redelivery, error).await?;
        // A dead letter lets its key's next event go; a retry may be due at once.
        self.wakeups.wake(sub);
        if nacked.dead_lettered > 0 {
            wake::signal(&self.client, &self.names, &s.topic).await;
        }
        Ok(nacked)
    }

    async fn redeliver(&self, sub: &str, event: CloudEvent) -> BResult<()> {
        let s = self.sub(sub).await?;
        self.redrive(&s, &event).await?;
        self.wakeups.wake(sub);
        wake::signal(&self.client, &self.names, &s.topic).await;
        Ok(())
    }

    async fn stats(&self, sub: &str) -> BResult<Stats> {
        let s = self.sub(sub).await?;
        self.subscription_stats(&s).await
    }

    async fn next_due(&self, sub: &str) -> BResult<Option<DateTime<Utc>>> {
        let s = self.sub(sub).await?;
        self.subscription_next_due(&s).await
    }

    fn wakeup(&self, sub: &str) -> Arc<Notify> {
        self.wakeups.get(sub)
    }

    /// Nothing to do: the server forgets message ids past each stream's
    /// duplicate window, drops events every consumer has answered
    /// (interest retention), and expires delivery records by the bucket's age.
    async fn maintain(&self) -> BResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_ids_keep_source_and_id_apart() {
        let event = |source: &str, id: &str| {
            CloudEvent::from_json(serde_json::json!({"specversion": "1.0", "id": id, "source": source, "type": "T"}))
                .unwrap()
        };
        assert_ne!(msg_id(&event("a:b", "c")), msg_id(&event("a", "b:c")));
        assert_eq!(msg_id(&event("/s", "1")), msg_id(&event("/s", "1")));
    }
}
