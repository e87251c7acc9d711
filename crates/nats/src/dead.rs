//! Dead letters: events a subscription gave up on, kept in herald's own
//! stream `{prefix}-dead`, one subject per subscription, with every
//! attempt's error. herald writes them itself rather than reading the
//! server's max-deliveries advisories: the server's delivery count includes
//! the give-backs that are no attempts, and an advisory is a core message,
//! lost if nobody listens at that moment.

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use chrono::{DateTime, Utc};
use herald_broker::{CloudEvent, Subscription};
use herald_core::retry::AttemptError;
use serde::{Deserialize, Serialize};

use crate::{NatsBroker, ack_id::AckId, answer::Answer, storage};

type BResult<T> = herald_broker::Result<T>;

/// Dead letters listed at most in one call.
const LIST_MAX: usize = 1000;

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

impl NatsBroker {
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

    /// The subscription's dead letters, oldest first (at most a thousand).
    pub async fn dead_letters(&self, sub: &str) -> BResult<Vec<DeadLetter>> {
        let stream = self.js.get_stream_no_info(self.names.dead_stream()).await.map_err(storage)?;
        let subject = self.names.dead_subject(sub);
        let mut out = Vec::new();
        let mut from = 1;
        while out.len() < LIST_MAX {
            let m = match stream.raw_message_builder().sequence(from).next_by_subject(subject.clone()).send().await {
                Ok(m) => m,
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(storage(e)),
            };
            from = m.sequence + 1;
            out.push(serde_json::from_slice(&m.payload).map_err(storage)?);
        }
        Ok(out)
    }
}
