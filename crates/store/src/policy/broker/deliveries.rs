//! What subscriptions owe their consumers: one row per (subscription,
//! event) from publish until acknowledged or dead-lettered.
//!
//! Per-key order: only the first row of an ordering key is `ready`; when it
//! leaves (acknowledged or dead-lettered) the next one of its key becomes
//! ready, under the key's lock. Keyless rows are always ready.

use std::time::Duration;

use herald_broker::{CloudEvent, Message, Nacked, Redelivery, Stats, Subscription};
use herald_core::{Time, retry::AttemptError};

use super::topics::queue;
use crate::{DeadLetter, DeadLetterKind, Error, Result, codec::json, tx::DeliveryRow, tx::TopicsTx};

/// What a consumer gets when its lease ran out without an answer.
const LEASE_ENDED: &str = "not acknowledged before its lease ended";

/// Burying rows can make others ready: a pull looks again this many times.
const PULL_ROUNDS: usize = 8;

fn after(now: Time, wait: Duration) -> Time {
    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

fn event_of(body: &str) -> Result<CloudEvent> {
    serde_json::from_str(body).map_err(|e| Error::Corrupt(format!("a stored event: {e}")))
}

/// An ack id's parts: the delivery row and its lease token.
fn parse_ack_id(ack_id: &str) -> Option<(i64, i64)> {
    let (id, token) = ack_id.split_once('.')?;
    Some((id.parse().ok()?, i64::from_str_radix(token, 16).ok()?))
}

/// The key's next row becomes ready, now that its first has left.
async fn release_key<T: TopicsTx>(tx: &mut T, sub: &str, key: &str) -> Result<()> {
    tx.lock_key(sub, key).await?;
    tx.next_of_key(sub, key).await
}

/// Gives up on a row: it leaves the subscription for the dead letters.
async fn bury<T: TopicsTx>(tx: &mut T, sub: &Subscription, row: DeliveryRow, now: Time) -> Result<()> {
    let payload = serde_json::from_str(&row.body).map_err(|e| Error::Corrupt(format!("a stored event: {e}")))?;
    let letter = DeadLetter {
        id: 0,
        kind: DeadLetterKind::Event,
        subscription: Some(sub.name.clone()),
        topic: Some(sub.topic.clone()),
        workflow: None,
        operation_id: None,
        step: None,
        attempts: row.attempts,
        error: row.errors.last().map(|e| e.error.clone()).unwrap_or_default(),
        errors: row.errors,
        payload,
        created_at: now,
    };
    tx.insert_dead_letter(&letter).await?;
    tx.delete_delivery(row.id).await?;
    match row.key {
        Some(k) => release_key(tx, &sub.name, &k).await,
        None => Ok(()),
    }
}

/// Leases up to `max` due rows. Rows whose lease ran out count that as a
/// failed attempt; rows out of attempts are buried instead of leased.
/// Answers the messages and whether a key moved on (others may want to know).
pub async fn pull<T: TopicsTx>(
    tx: &mut T,
    sub: &Subscription,
    max: usize,
    lease: Duration,
    now: Time,
) -> Result<(Vec<Message>, bool)> {
    let max = max.max(1);
    let mut messages = Vec::new();
    let mut moved = false;
    let until = after(now, lease);
    for _ in 0..PULL_ROUNDS {
        let want = max - messages.len();
        let rows = tx.due_deliveries(&sub.name, want, now).await?;
        let fetched = rows.len();
        let mut buried = false;
        for mut row in rows {
            let lease_ended = row.leased;
            if lease_ended {
                row.errors.push(AttemptError { attempt: row.attempts, at: now, error: LEASE_ENDED.into() });
            }
            if sub.retry.exhausted(row.attempts) {
                bury(tx, sub, row, now).await?;
                buried = true;
                moved = true;
                continue;
            }
            let token = i64::from(rand::random::<u32>());
            tx.lease_delivery(row.id, token, until, lease_ended.then_some(row.errors.as_slice())).await?;
            messages.push(Message {
                ack_id: format!("{}.{token:x}", row.id),
                attempt: row.attempts + 1,
                seq: row.seq as u64,
                published_at: row.published_at,
                event: event_of(&row.body)?,
            });
        }
        if !buried || fetched < want || messages.len() >= max {
            break;
        }
    }
    Ok((messages, moved))
}

/// Answers the ack ids that held no lease, and whether a key moved on.
pub async fn ack<T: TopicsTx>(tx: &mut T, sub: &str, ack_ids: &[String]) -> Result<(Vec<String>, bool)> {
    let mut unknown = Vec::new();
    let mut moved = false;
    for ack_id in ack_ids {
        let gone = match parse_ack_id(ack_id) {
            Some((id, token)) => tx.ack_delivery(sub, id, token).await?,
            None => None,
        };
        match gone {
            Some(Some(key)) => {
                moved = true;
                release_key(tx, sub, &key).await?;
            }
            Some(None) => {}
            None => unknown.push(ack_id.clone()),
        }
    }
    Ok((unknown, moved))
}

pub async fn nack<T: TopicsTx>(
    tx: &mut T,
    sub: &Subscription,
    ack_ids: &[String],
    redelivery: Redelivery,
    error: &str,
    now: Time,
) -> Result<Nacked> {
    let sample = rand::random::<f64>();
    let mut out = Nacked::default();
    for ack_id in ack_ids {
        let row = match parse_ack_id(ack_id) {
            Some((id, token)) => tx.leased_delivery(&sub.name, id, token).await?,
            None => None,
        };
        let Some(mut row) = row else {
            out.unknown.push(ack_id.clone());
            continue;
        };
        if let Redelivery::Unsent(wait) = redelivery {
            // Never reached the consumer: its attempt does not count.
            tx.release_delivery(row.id, after(now, wait), None).await?;
            out.retrying += 1;
            continue;
        }
        row.errors.push(AttemptError { attempt: row.attempts, at: now, error: error.to_string() });
        let wait = match redelivery {
            _ if sub.retry.exhausted(row.attempts) => None,
            Redelivery::Never => None,
            Redelivery::After(d) | Redelivery::Unsent(d) => Some(d),
            Redelivery::Backoff => Some(sub.retry.delay_before(row.attempts + 1, sample)),
        };
        let Some(wait) = wait else {
            bury(tx, sub, row, now).await?;
            out.dead_lettered += 1;
            continue;
        };
        tx.release_delivery(row.id, after(now, wait), Some(row.errors.as_slice())).await?;
        out.retrying += 1;
    }
    Ok(out)
}

/// A redriven event: a copy of its own, owed to this subscription only.
pub async fn redeliver<T: TopicsTx>(tx: &mut T, sub: &Subscription, event: &CloudEvent, now: Time) -> Result<()> {
    let key = event.ordering_key();
    if let Some(k) = key {
        tx.lock_key(&sub.name, k).await?;
    }
    let seq = tx.insert_event(&sub.topic, &json(event)?, now).await?;
    queue(tx, &sub.name, seq, key, now).await
}

pub async fn stats<T: TopicsTx>(tx: &mut T, sub: &str, now: Time) -> Result<Stats> {
    let (total, in_flight, oldest) = tx.delivery_counts(sub, now).await?;
    Ok(Stats {
        pending: total.saturating_sub(in_flight),
        in_flight,
        lag_ms: oldest.map_or(0, |o| (now - o).num_milliseconds().max(0) as u64),
        dead_letters: tx.dead_letter_count(sub).await?,
    })
}
