//! Publishing: a `seq` and a dedupe verdict for each event from the ledger
//! in herald's store (one round trip per batch), then the new events to
//! RabbitMQ, confirmed, then recorded as published in the ledger (one more)
//! before the publish answers.
//!
//! Only a confirmed publish is recorded, so only it makes a later one of
//! the same topic, source and id a duplicate: a claim whose publish was
//! never confirmed (refused, or its process died) swallows no republish,
//! and an acknowledged publish is never lost. Two republishes racing may
//! both go out, which at-least-once allows; the first recorded stays.

use chrono::Utc;
use herald_broker::{Claim, Claimed, CloudEvent, Confirmed, Published};
use lapin::options::BasicPublishOptions;

use crate::{Inner, confirmed, headers, storage};

type BResult<T> = herald_broker::Result<T>;

impl Inner {
    /// Publishes each event to `exchange` with its route (routing key,
    /// topic; one topic for all). `fresh` events are never duplicates, and
    /// not recorded (redrives).
    pub(crate) async fn publish_to(
        &self,
        exchange: &str,
        routes: &[(String, String)],
        events: &[CloudEvent],
        fresh: bool,
    ) -> BResult<Vec<Published>> {
        let Some((_, topic)) = routes.first() else { return Ok(Vec::new()) };
        if routes.iter().any(|(_, t)| t != topic) {
            return Err(herald_broker::Error::Storage("a publish of events to more than one topic".into()));
        }
        let claims: Vec<Claim> =
            events.iter().map(|e| Claim { source: e.source.clone(), id: e.id.clone(), fresh }).collect();
        // From the claims until the events are sent: two publishes of this
        // process send their events in the order of their `seq`, so a key's
        // events reach its queue in publish order.
        let sending = self.publishing.lock().await;
        let claimed = self.ledger.claim(self.scope(), topic, &claims).await?;
        if claimed.len() != events.len() {
            return Err(storage("the ledger answered another number of claims"));
        }
        let now = Utc::now();
        let mut out = Vec::with_capacity(events.len());
        let mut sends = Vec::new();
        let mut done = Vec::new();
        for ((e, (key, _)), claim) in events.iter().zip(routes).zip(claimed) {
            let published = |seq, duplicate| Published { id: e.id.clone(), source: e.source.clone(), seq, duplicate };
            let seq = match claim {
                Claimed::Duplicate(seq) => {
                    out.push(published(seq, true));
                    continue;
                }
                Claimed::New(seq) => seq,
            };
            let body = serde_json::to_vec(e).map_err(storage)?;
            let props = headers::event_properties(seq, topic, now);
            sends.push(async move {
                self.publisher.basic_publish(exchange, key, BasicPublishOptions::default(), &body, props).await
            });
            done.push(Confirmed { source: e.source.clone(), id: e.id.clone(), seq });
            out.push(published(seq, false));
        }
        // Written together: lapin queues a publish's frames when it is
        // first polled, and the futures are first polled in this order,
        // so the events go out in the order of their `seq` while lapin's
        // I/O thread writes them in one go (awaited one by one, each
        // publish waited on that thread's turn).
        let confirms = futures::future::try_join_all(sends).await.map_err(storage)?;
        drop(sending);
        for c in confirms {
            confirmed(c.await)?;
        }
        if !fresh && !done.is_empty() {
            self.ledger.confirm(self.scope(), topic, &done, self.dedupe_window).await?;
        }
        Ok(out)
    }
}
