//! The store as the dead-letter list of a broker on a server of its own
//! (NATS, RabbitMQ): its dead letters sit beside the steps' and the
//! notifications', listed and redriven through the same API.

use std::sync::Arc;

use async_trait::async_trait;
use herald_broker::{CloudEvent, DeadEvent, DeadLetters};

use crate::{DeadLetter, DeadLetterFilter, DeadLetterKind, Error, Store};

/// At most this many letters are listed by [`DeadLetters::list`].
const LIST_MAX: usize = 1000;

pub struct EventDeadLetters(pub Arc<dyn Store>);

fn broker_error(e: Error) -> herald_broker::Error {
    herald_broker::Error::Storage(e.to_string())
}

#[async_trait]
impl DeadLetters for EventDeadLetters {
    async fn add(&self, l: DeadEvent) -> herald_broker::Result<()> {
        let payload = l.event.to_json();
        let letter = DeadLetter {
            id: 0,
            kind: DeadLetterKind::Event,
            subscription: Some(l.subscription),
            topic: Some(l.topic),
            workflow: None,
            operation_id: None,
            step: None,
            attempts: l.attempts,
            error: l.errors.last().map(|e| e.error.clone()).unwrap_or_default(),
            errors: l.errors,
            payload,
            created_at: l.at,
        };
        self.0.add_dead_letter(letter).await.map(drop).map_err(broker_error)
    }

    async fn count(&self, subscription: &str) -> herald_broker::Result<u64> {
        self.0.subscription_dead_letters(subscription).await.map_err(broker_error)
    }

    async fn list(&self, subscription: &str) -> herald_broker::Result<Vec<DeadEvent>> {
        let filter = DeadLetterFilter {
            kind: Some(DeadLetterKind::Event),
            subscription: Some(subscription.to_owned()),
            limit: LIST_MAX,
            ..Default::default()
        };
        let mut letters = self.0.dead_letters(filter).await.map_err(broker_error)?;
        letters.reverse();
        letters
            .into_iter()
            .map(|l| {
                let event = CloudEvent::from_json(l.payload)
                    .map_err(|e| herald_broker::Error::Storage(format!("a stored dead letter: {e}")))?;
                Ok(DeadEvent {
                    subscription: l.subscription.unwrap_or_default(),
                    topic: l.topic.unwrap_or_default(),
                    attempts: l.attempts,
                    errors: l.errors,
                    event,
                    at: l.created_at,
                })
            })
            .collect()
    }
}
