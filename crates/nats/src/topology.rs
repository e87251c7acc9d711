//! A topic's stream and a subscription's consumers.
//!
//! The stream keeps events under interest retention: once every consumer
//! whose subject an event is on has acknowledged (or terminated) it, the
//! server drops it, as the embedded broker drops events nobody owes.
//!
//! A subscription has one consumer per partition, each with at most one
//! event out (`max_ack_pending = 1`): the server itself then keeps a key's
//! events in order and one at a time, through redeliveries, nack delays
//! and any number of herald processes pulling. Keyless events have a
//! consumer of their own with many out at once.

use async_nats::jetstream::{
    ErrorCode,
    consumer::{AckPolicy, DeliverPolicy, pull},
    stream::ConsumerErrorKind,
    stream::{self, RetentionPolicy, StorageType},
};
use herald_broker::Subscription;
use serde::Deserialize;

use crate::{
    NatsBroker,
    names::{Names, Part},
    storage,
};

type BResult<T> = herald_broker::Result<T>;

/// Keyless events out at once per subscription.
const KEYLESS_IN_FLIGHT: i64 = 10_000;

pub fn consumer_config(names: &Names, sub: &Subscription, part: Part) -> pull::Config {
    pull::Config {
        durable_name: Some(names.consumer(&sub.name, part)),
        description: Some(format!("herald subscription {} ({part})", sub.name)),
        deliver_policy: DeliverPolicy::New,
        ack_policy: AckPolicy::Explicit,
        // The lease herald's dispatcher pulls a push subscription's events
        // with, so those pulls need not move each event's lease (one more
        // request to the server per event); a pull with another lease moves
        // it (see `pull`).
        ack_wait: sub.dispatch_lease().unwrap_or(sub.lease),
        // herald counts attempts itself: give-backs unsent are not attempts.
        max_deliver: -1,
        filter_subject: names.subject(&sub.topic, part),
        max_ack_pending: match part {
            Part::Keyless => KEYLESS_IN_FLIGHT,
            Part::Key(_) => 1,
        },
        ..Default::default()
    }
}

impl NatsBroker {
    /// The topic's stream, made if this process has not seen it yet.
    pub(crate) async fn ensure_stream(&self, topic: &str) -> BResult<()> {
        if self.streams.lock().expect("streams").contains(topic) {
            return Ok(());
        }
        let config = stream::Config {
            name: self.names.stream(topic),
            subjects: vec![self.names.stream_subjects(topic)],
            retention: RetentionPolicy::Interest,
            storage: StorageType::File,
            duplicate_window: self.dedupe_window,
            ..Default::default()
        };
        let stream = self.js.get_or_create_stream(config).await.map_err(storage)?;
        let made = &stream.cached_info().config;
        // A topic made under another configured window takes this one.
        if made.duplicate_window != self.dedupe_window {
            let changed = stream::Config { duplicate_window: self.dedupe_window, ..made.clone() };
            self.js.update_stream(changed).await.map_err(storage)?;
        }
        self.streams.lock().expect("streams").insert(topic.to_string());
        Ok(())
    }

    /// The subscription's consumers, made or brought up to date.
    pub(crate) async fn put_consumers(&self, sub: &Subscription) -> BResult<()> {
        self.ensure_stream(&sub.topic).await?;
        let stream = self.names.stream(&sub.topic);
        let puts = self.names.parts().map(|part| {
            let config = consumer_config(&self.names, sub, part);
            let stream = stream.clone();
            async move { self.js.create_consumer_on_stream(config, stream).await.map(drop).map_err(storage) }
        });
        futures::future::try_join_all(puts).await.map(drop)
    }

    /// Deletes the subscription's consumers on `topic`; the server then
    /// drops the events only they still owed.
    pub(crate) async fn delete_consumers(&self, sub: &str, topic: &str) -> BResult<()> {
        let stream = self.names.stream(topic);
        let deletes = self.names.parts().map(|part| {
            let (name, stream) = (self.names.consumer(sub, part), stream.clone());
            async move {
                match self.js.delete_consumer_from_stream(&name, &stream).await {
                    Ok(_) => Ok(()),
                    // Already gone, or its stream is.
                    Err(e) if matches!(e.kind(), ConsumerErrorKind::JetStream(j)
                        if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND || j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(storage(e)),
                }
            }
        });
        futures::future::try_join_all(deletes).await.map(drop)
    }

    /// Each consumer of the subscription with what the server says of it.
    pub(crate) async fn consumer_infos(
        &self,
        sub: &Subscription,
    ) -> BResult<Vec<(Part, async_nats::jetstream::consumer::Info)>> {
        self.infos_of(sub, self.names.parts()).await
    }

    /// The topic's parts that hold stored events, in one request. Under
    /// interest retention an event stays stored while any consumer still
    /// owes it, so a consumer whose part holds none has nothing waiting
    /// and nothing out: no need to ask it.
    pub(crate) async fn stored_parts(&self, topic: &str) -> BResult<Vec<Part>> {
        #[derive(Deserialize)]
        struct Info {
            state: State,
        }
        #[derive(Deserialize)]
        struct State {
            #[serde(default)]
            subjects: Option<std::collections::HashMap<String, u64>>,
        }
        let request = serde_json::json!({"subjects_filter": self.names.stream_subjects(topic)});
        let reply: async_nats::jetstream::response::Response<Info> =
            self.js.request(format!("STREAM.INFO.{}", self.names.stream(topic)), &request).await.map_err(storage)?;
        let subjects = match reply {
            async_nats::jetstream::response::Response::Ok(info) => info.state.subjects.unwrap_or_default(),
            async_nats::jetstream::response::Response::Err { error } => return Err(storage(error)),
        };
        Ok(self
            .names
            .parts()
            .filter(|&p| subjects.get(&self.names.subject(topic, p)).is_some_and(|&n| n > 0))
            .collect())
    }

    /// What the server says of the subscription's consumers of `parts`.
    pub(crate) async fn infos_of(
        &self,
        sub: &Subscription,
        parts: impl Iterator<Item = Part>,
    ) -> BResult<Vec<(Part, async_nats::jetstream::consumer::Info)>> {
        let stream = self.js.get_stream_no_info(self.names.stream(&sub.topic)).await.map_err(storage)?;
        let infos = parts.map(|part| {
            let (name, stream) = (self.names.consumer(&sub.name, part), &stream);
            async move { stream.consumer_info(&name).await.map(|info| (part, info)).map_err(storage) }
        });
        futures::future::try_join_all(infos).await
    }
}
