//! Answers to leased events (acks and nacks), burial in the dead letters,
//! and redrives.
//!
//! Every answer to the server is a request (a "double ack"): it returns
//! once the server has applied it, so a key's next event is free when an
//! ack or a burial returns, and no answer is lost silently.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_broker::{CloudEvent, Nacked, Redelivery, Subscription};
use herald_core::retry::AttemptError;

use crate::{NatsBroker, ack_id::AckId, pull::FOR_HEADER, storage};

type BResult<T> = herald_broker::Result<T>;

/// What giving one delivery back did.
enum Given {
    Retrying,
    Buried,
}

#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Ack,
    /// Again after this long.
    Nak(Duration),
    /// Never again.
    Term,
    /// Still being worked on: the server's `ack_wait` starts again.
    Progress,
}

impl Answer {
    pub(crate) fn body(self) -> bytes::Bytes {
        match self {
            Answer::Ack => bytes::Bytes::from_static(b"+ACK"),
            Answer::Nak(d) if d.is_zero() => bytes::Bytes::from_static(b"-NAK"),
            Answer::Nak(d) => format!("-NAK {{\"delay\":{}}}", d.as_nanos()).into(),
            Answer::Term => bytes::Bytes::from_static(b"+TERM"),
            Answer::Progress => bytes::Bytes::from_static(b"+WPI"),
        }
    }
}

/// How long the server has to confirm an answer (async-nats's request default).
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Whether the server confirmed an answer: an empty reply, not a status.
fn confirmed(reply: Option<async_nats::Message>) -> BResult<()> {
    match reply.map(|m| m.status) {
        None => Err(storage("the server did not confirm an answer in time")),
        Some(None | Some(async_nats::StatusCode::OK)) => Ok(()),
        Some(Some(status)) => Err(storage(format!("an answer was refused: {status}"))),
    }
}

impl NatsBroker {
    /// Sends `answer` for the delivery and waits until the server applied it.
    pub(crate) async fn answer(&self, id: &AckId, answer: Answer) -> BResult<()> {
        self.client.request(id.reply.clone(), answer.body()).await.map(drop).map_err(storage)
    }

    /// Gives a delivery back, to go out again after `wait` as the same
    /// attempt: it never reached the consumer, so the delivery does not count.
    pub(crate) async fn unsend(&self, sub: &Subscription, id: &AckId, wait: Duration) -> BResult<()> {
        let key = self.names.attempts_key(&sub.name, &sub.topic, id.seq);
        let record = self.records.get(&key, id.delivered).await?;
        self.records.unsent(&key, record, id).await?;
        self.answer(id, Answer::Nak(wait)).await
    }

    /// The ack id, if it is the subscription's, its lease still runs and it
    /// was not answered yet; its one answer is claimed.
    fn held(&self, sub: &Subscription, stream: &str, ack_id: &str, now: DateTime<Utc>) -> Option<AckId> {
        let id = AckId::parse(ack_id)?;
        let ours = id.stream == stream && self.names.is_consumer_of(&id.consumer, &sub.name);
        (ours && id.held(now) && self.answered.claim(&id, now.timestamp_millis())).then_some(id)
    }

    /// Acknowledges; answers the ack ids that held no lease, and whether a
    /// key's next event is now free.
    pub(crate) async fn acknowledge(&self, sub: &Subscription, ack_ids: &[String]) -> BResult<(Vec<String>, bool)> {
        let now = Utc::now();
        let stream = self.names.stream(&sub.topic);
        let mut unknown = Vec::new();
        let mut held = Vec::new();
        for ack_id in ack_ids {
            match self.held(sub, &stream, ack_id, now) {
                Some(id) => held.push(id),
                None => unknown.push(ack_id.clone()),
            }
        }
        self.ack_all(sub, &held).await?;
        let keyed = held.iter().any(|id| !id.consumer.ends_with("-u"));
        Ok((unknown, keyed))
    }

    /// Acks each held delivery, all sent before any answer is awaited.
    /// A delivery whose ack the server did not confirm may be answered
    /// again; so may those not sent when sending failed.
    async fn ack_all(&self, sub: &Subscription, held: &[AckId]) -> BResult<()> {
        let mut batch = self.replies.batch();
        for (i, id) in held.iter().enumerate() {
            let sent = self.client.publish_with_reply(id.reply.clone(), batch.reply_to(i), Answer::Ack.body()).await;
            if let Err(e) = sent {
                // Those sent may have been applied: their claims stay.
                held[i..].iter().for_each(|id| self.answered.release(id));
                return Err(storage(e));
            }
        }
        let mut failed = None;
        let mut done = Vec::with_capacity(held.len());
        for (id, answer) in held.iter().zip(batch.collect(held.len(), ANSWER_WAIT).await) {
            match confirmed(answer) {
                Ok(()) => done.push(id),
                Err(e) => {
                    self.answered.release(id);
                    failed.get_or_insert(e);
                }
            }
        }
        // A first delivery has no record.
        let forgotten = done.into_iter().filter(|id| id.delivered > 1).map(|id| {
            let key = self.names.attempts_key(&sub.name, &sub.topic, id.seq);
            async move { self.records.forget(&key, id.delivered).await }
        });
        futures::future::try_join_all(forgotten).await?;
        failed.map_or(Ok(()), Err)
    }

    pub(crate) async fn give_back(
        &self,
        sub: &Subscription,
        ack_ids: &[String],
        redelivery: Redelivery,
        error: &str,
    ) -> BResult<Nacked> {
        let now = Utc::now();
        let stream = self.names.stream(&sub.topic);
        let sample = rand::random::<f64>();
        let mut out = Nacked::default();
        for ack_id in ack_ids {
            let Some(id) = self.held(sub, &stream, ack_id, now) else {
                out.unknown.push(ack_id.clone());
                continue;
            };
            match self.give_one_back(sub, &id, redelivery, error, now, sample).await {
                Ok(Given::Retrying) => out.retrying += 1,
                Ok(Given::Buried) => out.dead_lettered += 1,
                Err(e) => {
                    self.answered.release(&id);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// One held delivery given back.
    async fn give_one_back(
        &self,
        sub: &Subscription,
        id: &AckId,
        redelivery: Redelivery,
        error: &str,
        now: DateTime<Utc>,
        sample: f64,
    ) -> BResult<Given> {
        if let Redelivery::Unsent(wait) = redelivery {
            self.unsend(sub, id, wait).await?;
            self.wakeups.due_at(&sub.name, now + chrono::Duration::from_std(wait).unwrap_or_default());
            return Ok(Given::Retrying);
        }
        let key = self.names.attempts_key(&sub.name, &sub.topic, id.seq);
        let mut record = self.records.get(&key, id.delivered).await?;
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
            self.bury(sub, id, event, attempt, record.errors, now).await?;
            return Ok(Given::Buried);
        };
        self.records.put(&key, &mut record, id).await?;
        self.answer(id, Answer::Nak(wait)).await?;
        self.wakeups.due_at(&sub.name, now + chrono::Duration::from_std(wait).unwrap_or_default());
        Ok(Given::Retrying)
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
}
