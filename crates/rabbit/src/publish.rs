//! Publishing: a `seq` and a dedupe verdict for each event from the ids
//! log (see `ids`), then the event to RabbitMQ, confirmed, then its `done`
//! record, confirmed, before the publish answers.

use chrono::Utc;
use herald_broker::{CloudEvent, Published};
use lapin::options::BasicPublishOptions;

use crate::{Inner, confirmed, headers, ids::Record, storage};

type BResult<T> = herald_broker::Result<T>;

impl Inner {
    /// Publishes each event to `exchange` with its route (routing key,
    /// topic). `fresh` events are never duplicates (redrives).
    pub(crate) async fn publish_to(
        &self,
        exchange: &str,
        routes: &[(String, String)],
        events: &[CloudEvent],
        fresh: bool,
    ) -> BResult<Vec<Published>> {
        let claims = events
            .iter()
            .zip(routes)
            .map(|(e, (_, topic))| Record::Claim {
                topic: topic.clone(),
                source: e.source.clone(),
                id: e.id.clone(),
                fresh,
            })
            .collect();
        // From the claims until the events are sent: two publishes of this
        // process send their events in the order of their `seq`, so a key's
        // events reach its queue in publish order.
        let sending = self.publishing.lock().await;
        let claimed = self.ids.append(claims).await?;
        let now = Utc::now();
        let mut out = Vec::with_capacity(events.len());
        let mut confirms = Vec::new();
        let mut done = Vec::new();
        for ((e, (key, topic)), (offset, duplicate)) in events.iter().zip(routes).zip(claimed) {
            let published = |seq, duplicate| Published { id: e.id.clone(), source: e.source.clone(), seq, duplicate };
            if let Some(seq) = duplicate {
                out.push(published(seq, true));
                continue;
            }
            let seq = offset + 1;
            let body = serde_json::to_vec(e).map_err(storage)?;
            let props = headers::event_properties(seq, topic, now);
            let sent = self.publisher.basic_publish(exchange, key, BasicPublishOptions::default(), &body, props);
            confirms.push(sent.await.map_err(storage)?);
            done.push(Record::Done {
                topic: topic.clone(),
                source: e.source.clone(),
                id: e.id.clone(),
                seq,
                at_ms: now.timestamp_millis(),
            });
            out.push(published(seq, false));
        }
        drop(sending);
        for c in confirms {
            confirmed(c.await)?;
        }
        if !fresh && !done.is_empty() {
            self.ids.append(done).await?;
        }
        Ok(out)
    }
}
