//! Answers to leased events (acks and nacks), burial in herald's dead
//! letters, and redrives.
//!
//! An ack id names the process holding its delivery: ids of this process
//! are answered here; others are forwarded to their process's inbox (see
//! `inbox`), and answered unknown when it does not reply (it ended, and
//! with it the lease).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_broker::{CloudEvent, DeadEvent, Nacked, Redelivery, Subscription};
use herald_core::retry::AttemptError;

use crate::{
    Inner,
    ack_id::AckId,
    held::{Item, Runtime, State},
    inbox::Call,
    storage,
};

type BResult<T> = herald_broker::Result<T>;

/// The error of an attempt whose lease ended with no answer.
pub const LEASE_ENDED: &str = "not acknowledged before its lease ended";

/// Ack ids sorted: unreadable ones, this process's, each other process's.
struct Sorted {
    unknown: Vec<String>,
    here: Vec<(String, AckId)>,
    elsewhere: BTreeMap<String, Vec<String>>,
}

impl Inner {
    fn sort(&self, ack_ids: &[String]) -> Sorted {
        let mut s = Sorted { unknown: Vec::new(), here: Vec::new(), elsewhere: BTreeMap::new() };
        for raw in ack_ids {
            match AckId::parse(raw) {
                None => s.unknown.push(raw.clone()),
                Some(id) if id.process == self.process => s.here.push((raw.clone(), id)),
                Some(id) => s.elsewhere.entry(id.process).or_default().push(raw.clone()),
            }
        }
        s
    }

    /// Acknowledges; answers the ack ids that held no lease.
    pub(crate) async fn acknowledge(&self, sub: &Subscription, ack_ids: &[String]) -> BResult<Vec<String>> {
        let sorted = self.sort(ack_ids);
        let mut unknown = sorted.unknown;
        unknown.extend(self.acknowledge_here(sub, &sorted.here).await?);
        for (process, ids) in sorted.elsewhere {
            let call = Call::Ack { sub: sub.name.clone(), ids: ids.clone() };
            match self.calls.call(&self.names, &process, &call).await? {
                Some(reply) => unknown.extend(serde_json::from_slice::<Vec<String>>(&reply).map_err(storage)?),
                None => unknown.extend(ids),
            }
        }
        Ok(unknown)
    }

    /// The held items the ids lease, taken out of `held` by `take`.
    fn leased<T>(
        &self,
        rt: &Runtime,
        ids: &[(String, AckId)],
        now: DateTime<Utc>,
        mut take: impl FnMut(&mut crate::held::Held, u64) -> T,
    ) -> (Vec<T>, Vec<String>) {
        let mut held = rt.held.lock().expect("held");
        let (mut found, mut unknown) = (Vec::new(), Vec::new());
        for (raw, id) in ids {
            let live = held
                .items
                .get(&id.item)
                .is_some_and(|i| matches!(i.state, State::Leased { until, token } if token == id.token && until > now));
            if live {
                found.push(take(&mut held, id.item));
            } else {
                unknown.push(raw.clone());
            }
        }
        (found, unknown)
    }

    pub(crate) async fn acknowledge_here(&self, sub: &Subscription, ids: &[(String, AckId)]) -> BResult<Vec<String>> {
        let Some(rt) = self.runtime_if_any(&sub.name) else {
            return Ok(ids.iter().map(|(raw, _)| raw.clone()).collect());
        };
        let (tags, unknown) =
            self.leased(&rt, ids, Utc::now(), |held, id| held.items.remove(&id).expect("a leased item").tag);
        rt.ack_all(&tags).await?;
        if !tags.is_empty() {
            // A key's next event is on its way.
            self.wakeups.wake(&sub.name);
        }
        Ok(unknown)
    }

    pub(crate) async fn give_back(
        &self,
        sub: &Subscription,
        ack_ids: &[String],
        redelivery: Redelivery,
        error: &str,
    ) -> BResult<Nacked> {
        let sorted = self.sort(ack_ids);
        let mut out = self.give_back_here(sub, &sorted.here, redelivery, error).await?;
        out.unknown.extend(sorted.unknown);
        for (process, ids) in sorted.elsewhere {
            let call = Call::Nack {
                sub: sub.name.clone(),
                ids: ids.clone(),
                redelivery: redelivery.into(),
                error: error.into(),
            };
            match self.calls.call(&self.names, &process, &call).await? {
                Some(reply) => {
                    let n: Nacked = serde_json::from_slice(&reply).map_err(storage)?;
                    out.retrying += n.retrying;
                    out.dead_lettered += n.dead_lettered;
                    out.unknown.extend(n.unknown);
                }
                None => out.unknown.extend(ids),
            }
        }
        Ok(out)
    }

    pub(crate) async fn give_back_here(
        &self,
        sub: &Subscription,
        ids: &[(String, AckId)],
        redelivery: Redelivery,
        error: &str,
    ) -> BResult<Nacked> {
        let Some(rt) = self.runtime_if_any(&sub.name) else {
            return Ok(Nacked { unknown: ids.iter().map(|(raw, _)| raw.clone()).collect(), ..Default::default() });
        };
        let now = Utc::now();
        let sample = rand::random::<f64>();
        let at = |d: std::time::Duration| now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let mut out = Nacked::default();
        let (buried, unknown) = self.leased(&rt, ids, now, |held, id| {
            let item = held.items.get_mut(&id).expect("a leased item");
            if let Redelivery::Unsent(wait) = redelivery {
                // It never reached its consumer: the same attempt again.
                item.state = State::Ready(at(wait));
                return None;
            }
            let attempt = item.made + 1;
            item.made = attempt;
            item.errors.push(AttemptError { attempt, at: now, error: error.to_string() });
            let wait = match redelivery {
                _ if sub.retry.exhausted(attempt) => None,
                Redelivery::Never => None,
                Redelivery::After(d) | Redelivery::Unsent(d) => Some(d),
                Redelivery::Backoff => Some(sub.retry.delay_before(attempt + 1, sample)),
            };
            match wait {
                Some(w) => {
                    item.state = State::Ready(at(w));
                    None
                }
                None => held.items.remove(&id),
            }
        });
        out.unknown = unknown;
        for item in buried {
            match item {
                Some(item) => {
                    self.bury(sub, &rt, item, now).await?;
                    out.dead_lettered += 1;
                }
                None => out.retrying += 1,
            }
        }
        self.wakeups.wake(&sub.name);
        Ok(out)
    }

    /// Gives up on a held event: its dead letter is kept first, then the
    /// delivery acknowledged. A crash in between returns it to the queue,
    /// to be buried again: a dead letter may be doubled, never lost. Should
    /// keeping it fail, it stays held, due again in a second.
    pub(crate) async fn bury(&self, sub: &Subscription, rt: &Runtime, item: Item, now: DateTime<Utc>) -> BResult<()> {
        let mut errors = item.errors.clone();
        // Attempts whose lease ended (or whose process died) left no error.
        for attempt in 1..=item.made {
            if !errors.iter().any(|e| e.attempt == attempt) {
                errors.push(AttemptError { attempt, at: now, error: LEASE_ENDED.into() });
            }
        }
        errors.sort_by_key(|e| e.attempt);
        let letter = DeadEvent {
            subscription: sub.name.clone(),
            topic: sub.topic.clone(),
            attempts: item.made,
            errors,
            event: item.event.clone(),
            at: now,
        };
        if let Err(e) = self.dead.add(letter).await {
            let mut item = item;
            item.state = State::Ready(now + chrono::Duration::seconds(1));
            rt.held.lock().expect("held").insert(item);
            return Err(e);
        }
        rt.ack(item.tag).await
    }

    /// A redriven event: straight to the subscription's own queue (of its
    /// key's partition), with a new `seq`, as a first attempt.
    pub(crate) async fn redrive(&self, sub: &Subscription, event: &CloudEvent) -> BResult<()> {
        let part = self.names.part(event.ordering_key());
        let queue = self.names.queue(&sub.name, part);
        self.publish_to("", &[(queue, sub.topic.clone())], std::slice::from_ref(event), true).await?;
        Ok(())
    }
}
