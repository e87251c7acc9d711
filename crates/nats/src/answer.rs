//! Answers to leased events (acks and nacks), burial in the dead letters,
//! and redrives.
//!
//! Every answer to the server is a request (a "double ack"): it returns
//! once the server has applied it, so a key's next event is free when an
//! ack or a burial returns, and no answer is lost silently.
//!
//! Dead letters go to herald's own stream `{prefix}-dead`, one subject per
//! subscription, with every attempt's error; herald writes them itself
//! rather than reading the server's max-deliveries advisories, because the
//! server's delivery count includes the give-backs that are no attempts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_broker::{CloudEvent, Nacked, Redelivery, Subscription};
use herald_core::retry::AttemptError;
use serde::{Deserialize, Serialize};

use crate::{NatsBroker, ack_id::AckId, pull::FOR_HEADER, storage};

type BResult<T> = herald_broker::Result<T>;

/// What a consumer gets when its lease ran out without an answer.
const LEASE_ENDED: &str = "not acknowledged before its lease ended";

/// An event a subscription gave up on, as kept in the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub subscription: String,
    pub topic: String,
    /// Its place in the topic's stream.
    pub seq: u64,
    pub attempts: u32,
    /// The last attempt's error.
    pub error: String,
    pub errors: Vec<AttemptError>,
    pub event: CloudEvent,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Ack,
    /// Again after this long.
    Nak(Duration),
    /// Never again.
    Term,
}

impl Answer {
    fn body(self) -> bytes::Bytes {
        match self {
            Answer::Ack => bytes::Bytes::from_static(b"+ACK"),
            Answer::Nak(d) if d.is_zero() => bytes::Bytes::from_static(b"-NAK"),
            Answer::Nak(d) => format!("-NAK {{\"delay\":{}}}", d.as_nanos()).into(),
            Answer::Term => bytes::Bytes::from_static(b"+TERM"),
        }
    }
}

impl NatsBroker {
    /// Sends `answer` for the delivery and waits until the server applied it.
    pub(crate) async fn answer(&self, id: &AckId, answer: Answer) -> BResult<()> {
        self.client.request(id.reply.clone(), answer.body()).await.map(drop).map_err(storage)
    }

    /// The ack id, if it is the subscription's and its lease still runs.
    fn held(&self, sub: &Subscription, ack_id: &str, now: DateTime<Utc>) -> Option<AckId> {
        let id = AckId::parse(ack_id)?;
        let ours = id.stream == self.names.stream(&sub.topic) && self.names.is_consumer_of(&id.consumer, &sub.name);
        (ours && id.held(now)).then_some(id)
    }

    /// Acknowledges; answers the ack ids that held no lease, and whether a
    /// key's next event is now free.
    pub(crate) async fn acknowledge(&self, sub: &Subscription, ack_ids: &[String]) -> BResult<(Vec<String>, bool)> {
        let now = Utc::now();
        let mut unknown = Vec::new();
        let mut held = Vec::new();
        for ack_id in ack_ids {
            match self.held(sub, ack_id, now) {
                Some(id) => held.push(id),
                None => unknown.push(ack_id.clone()),
            }
        }
        let acks = held.iter().map(|id| async move {
            self.answer(id, Answer::Ack).await?;
            let key = self.names.attempts_key(&sub.name, &sub.topic, id.seq);
            self.records.forget(&key, id.delivered).await
        });
        futures::future::try_join_all(acks).await?;
        let keyed = held.iter().any(|id| !id.consumer.ends_with("-u"));
        Ok((unknown, keyed))
    }

    pub(crate) async fn give_back(
        &self,
        sub: &Subscription,
        ack_ids: &[String],
        redelivery: Redelivery,
        error: &str,
    ) -> BResult<Nacked> {
        let now = Utc::now();
        let sample = rand::random::<f64>();
        let mut out = Nacked::default();
        for ack_id in ack_ids {
            let Some(id) = self.held(sub, ack_id, now) else {
                out.unknown.push(ack_id.clone());
                continue;
            };
            let key = self.names.attempts_key(&sub.name, &sub.topic, id.seq);
            let mut record = self.records.get(&key, id.delivered).await?;
            if let Redelivery::Unsent(wait) = redelivery {
                // Never reached the consumer: the delivery does not count.
                record.unsent += 1;
                self.records.put(&key, &record).await?;
                self.answer(&id, Answer::Nak(wait)).await?;
                self.wakeups.due_at(&sub.name, now + chrono::Duration::from_std(wait).unwrap_or_default());
                out.retrying += 1;
                continue;
            }
            let attempt = record.made_before(id.delivered) + 1;
            record.errors.push(AttemptError { attempt, at: now, error: error.to_string() });
            let wait = match redelivery {
                _ if sub.retry.exhausted(attempt) => None,
                Redelivery::Never => None,
                Redelivery::After(d) | Redelivery::Unsent(d) => Some(d),
                Redelivery::Backoff => Some(sub.retry.delay_before(attempt + 1, sample)),
            };
            let Some(wait) = wait else {
                let stream = self.js.get_stream_no_info(&id.stream).await.map_err(storage)?;
                let stored = stream.get_raw_message(id.seq).await.map_err(storage)?;
                let event: CloudEvent = serde_json::from_slice(&stored.payload).map_err(storage)?;
                self.bury(sub, &id, event, attempt, record.errors, now).await?;
                out.dead_lettered += 1;
                continue;
            };
            self.records.put(&key, &record).await?;
            self.answer(&id, Answer::Nak(wait)).await?;
            self.wakeups.due_at(&sub.name, now + chrono::Duration::from_std(wait).unwrap_or_default());
            out.retrying += 1;
        }
        Ok(out)
    }

    /// Gives up on a delivery: its dead letter is stored first, then the
    /// server told never to send it again. A crash in between sends it
    /// once more, and it is buried again: a dead letter may be doubled,
    /// never lost.
    pub(crate) async fn bury(
        &self,
        sub: &Subscription,
        id: &AckId,
        event: CloudEvent,
        attempts: u32,
        mut errors: Vec<AttemptError>,
        now: DateTime<Utc>,
    ) -> BResult<()> {
        // Attempts whose lease ended unanswered left no error of their own.
        for attempt in 1..=attempts {
            if !errors.iter().any(|e| e.attempt == attempt) {
                errors.push(AttemptError { attempt, at: now, error: LEASE_ENDED.into() });
            }
        }
        errors.sort_by_key(|e| e.attempt);
        let letter = DeadLetter {
            subscription: sub.name.clone(),
            topic: sub.topic.clone(),
            seq: id.seq,
            attempts,
            error: errors.last().map(|e| e.error.clone()).unwrap_or_default(),
            errors,
            event,
            created_at: now,
        };
        let body = serde_json::to_vec(&letter).map_err(storage)?;
        self.js
            .publish(self.names.dead_subject(&sub.name), body.into())
            .await
            .map_err(storage)?
            .await
            .map_err(storage)?;
        self.answer(id, Answer::Term).await?;
        let key = self.names.attempts_key(&sub.name, &sub.topic, id.seq);
        self.records.forget(&key, id.delivered).await
    }

    /// A redriven event: published again to the topic, marked for this
    /// subscription only (the others' consumers pass over it), without a
    /// message id so the dedupe window does not swallow it.
    pub(crate) async fn redrive(&self, sub: &Subscription, event: &CloudEvent) -> BResult<()> {
        self.ensure_stream(&sub.topic).await?;
        let subject = self.names.subject(&sub.topic, self.names.part(event.ordering_key()));
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(FOR_HEADER, sub.name.as_str());
        let body = serde_json::to_vec(event).map_err(storage)?;
        self.js.publish_with_headers(subject, headers, body.into()).await.map_err(storage)?.await.map_err(storage)?;
        Ok(())
    }

    /// How many dead letters the subscription has.
    pub(crate) async fn dead_letter_count(&self, sub: &str) -> BResult<u64> {
        use futures::TryStreamExt;
        let stream = self.js.get_stream_no_info(self.names.dead_stream()).await.map_err(storage)?;
        let mut subjects = stream.info_with_subjects(self.names.dead_subject(sub)).await.map_err(storage)?;
        let mut count = 0;
        while let Some((_, n)) = subjects.try_next().await.map_err(storage)? {
            count += n as u64;
        }
        Ok(count)
    }
}
