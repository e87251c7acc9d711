//! Publishing, subscription definitions, and forgetting what nobody needs.

use herald_broker::{CloudEvent, Published, Put, RawSubscription, Subscription, subscription::INTERNAL_PREFIX};
use herald_core::Time;

use crate::{Error, Result, codec::json, tx::TopicsTx};

/// How long a published event's source and id are remembered by default.
pub const DEFAULT_DEDUPE_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// Rows pruned per call, so housekeeping never holds a writer long.
const PRUNE_BATCH: usize = 5000;

/// A stored definition as a subscription: herald's own by their name.
pub fn subscription(name: &str, spec: &str) -> Result<Subscription> {
    let raw: RawSubscription =
        serde_json::from_str(spec).map_err(|e| Error::Corrupt(format!("subscription {name}: {e}")))?;
    if name.starts_with(INTERNAL_PREFIX) {
        return Ok(Subscription::internal(&raw.topic, raw.filter.map(|f| f.types).unwrap_or_default()));
    }
    Subscription::parse(name, raw).map_err(|e| Error::Corrupt(e.to_string()))
}

/// Appends the events to `topic` and queues each for the `targets` (the
/// topic's subscriptions) whose filter lets it through. Answers what each
/// did and which subscriptions got something to deliver.
pub async fn publish<T: TopicsTx>(
    tx: &mut T,
    targets: &[&Subscription],
    topic: &str,
    events: &[CloudEvent],
    window: chrono::Duration,
    now: Time,
) -> Result<(Vec<Published>, Vec<String>)> {
    let mut out = Vec::with_capacity(events.len());
    let mut woken: Vec<String> = Vec::new();
    for e in events {
        let published =
            |seq: i64, duplicate| Published { id: e.id.clone(), source: e.source.clone(), seq: seq as u64, duplicate };
        if let Some(seq) = tx.seen_event(topic, &e.source, &e.id, now).await? {
            out.push(published(seq, true));
            continue;
        }
        let subs: Vec<&Subscription> = targets.iter().copied().filter(|s| s.filter.matches(e)).collect();
        let key = e.ordering_key();
        if let Some(k) = key {
            // Before the event takes its place: a key's rows then follow
            // publish order whoever else publishes to it.
            for s in &subs {
                tx.lock_key(&s.name, k).await?;
            }
        }
        let seq = tx.insert_event(topic, &json(e)?, now).await?;
        tx.remember_event(topic, &e.source, &e.id, seq, now + window).await?;
        for s in subs {
            queue(tx, &s.name, seq, key, now).await?;
            if !woken.contains(&s.name) {
                woken.push(s.name.clone());
            }
        }
        out.push(published(seq, false));
    }
    Ok((out, woken))
}

/// One delivery, due now: ready unless its key still has one waiting
/// (the caller holds the key).
pub(super) async fn queue<T: TopicsTx>(tx: &mut T, sub: &str, seq: i64, key: Option<&str>, now: Time) -> Result<()> {
    let ready = match key {
        None => true,
        Some(k) => !tx.key_waiting(sub, k).await?,
    };
    tx.insert_delivery(sub, seq, key, ready, now).await
}

pub async fn put<T: TopicsTx>(tx: &mut T, sub: &Subscription, now: Time) -> Result<Put> {
    let spec = json(&sub.raw)?;
    let put = match tx.subscription_spec(&sub.name).await? {
        Some(old) if old == spec => return Ok(Put::Unchanged),
        Some(_) => Put::Updated,
        None => Put::Created,
    };
    tx.upsert_subscription(&sub.name, &sub.topic, &spec, now).await?;
    Ok(put)
}

/// Removes a subscription and what it still owes.
pub async fn delete<T: TopicsTx>(tx: &mut T, name: &str) -> Result<bool> {
    // The definition first: where publishes on other connections read it
    // under a lock, this waits for them, and what they queued is then
    // there for the next statement to drop.
    let gone = tx.delete_subscription(name).await?;
    tx.delete_deliveries(name).await?;
    Ok(gone)
}

/// Forgets event ids past their window and events no subscription still
/// owes (kept a minute, so a publish answered moments ago stays readable).
pub async fn prune<T: TopicsTx>(tx: &mut T, now: Time) -> Result<usize> {
    let ids = tx.forget_event_ids(now, PRUNE_BATCH).await?;
    let events = tx.drop_unowed_events(now - chrono::Duration::minutes(1), PRUNE_BATCH).await?;
    Ok(ids + events)
}
