//! Dead letters: events a subscription gave up on, with every attempt's
//! error, handed to herald's one dead-letter list (the store's), where
//! they are listed and redriven as on every backend. herald buries them
//! itself rather than reading the server's max-deliveries advisories: the
//! server's delivery count includes the give-backs that are no attempts,
//! and an advisory is a core message, lost if nobody listens at that
//! moment.

use chrono::{DateTime, Utc};
use herald_broker::{CloudEvent, DeadEvent, Subscription};
use herald_core::retry::AttemptError;

use crate::{NatsBroker, ack_id::AckId, answer::Answer};

type BResult<T> = herald_broker::Result<T>;

/// What a consumer gets when its lease ran out without an answer.
const LEASE_ENDED: &str = "not acknowledged before its lease ended";

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
        let letter =
            DeadEvent { subscription: sub.name.clone(), topic: sub.topic.clone(), attempts, errors, event, at: now };
        self.dead.add(letter).await?;
        self.answer(id, Answer::Term).await?;
        let key = self.names.attempts_key(&sub.name, &sub.topic, id.seq);
        self.records.forget(&key, id.delivered).await
    }
}
