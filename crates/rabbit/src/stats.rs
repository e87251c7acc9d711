//! How a subscription keeps up, and when it is next due: what RabbitMQ
//! says waits in its queues, and what this process holds.
//!
//! Another process's held events are not seen here: `pending` and
//! `in_flight` are this process's view. `lag_ms` is the age of the oldest
//! event held here; to see the keyless queue's oldest, this process takes
//! it (`basic.get`) when it holds none, and hands it out first.

use chrono::{DateTime, Utc};
use herald_broker::{Stats, Subscription};
use lapin::{options::QueueDeclareOptions, types::FieldTable};

use crate::{Inner, broker::standing, held::State, names::Part, storage};

type BResult<T> = herald_broker::Result<T>;

impl Inner {
    /// Messages ready in each of the subscription's queues.
    async fn ready(&self, sub: &str, parts: impl Iterator<Item = Part>) -> BResult<u64> {
        // A channel of its own: a failed passive declare closes it.
        let ch = self.conn.create_channel().await.map_err(storage)?;
        let mut ready = 0;
        for part in parts {
            let options = QueueDeclareOptions { passive: true, ..Default::default() };
            let q = ch.queue_declare(&self.names.queue(sub, part), options, FieldTable::default()).await;
            ready += u64::from(q.map_err(storage)?.message_count());
        }
        let _ = ch.close(200, "counted").await;
        Ok(ready)
    }

    pub(crate) async fn subscription_stats(&self, sub: &Subscription) -> BResult<Stats> {
        let now = Utc::now();
        let rt = match standing(sub) {
            // Only a pull starts a standing consumer: a process that
            // delivers nothing of the subscription holds none of it.
            Some(_) => self.runtime_if_any(&sub.name),
            None => {
                let rt = self.runtime(sub).await?;
                let holds_keyless = rt.held.lock().expect("held").items.values().any(|i| i.part == Part::Keyless);
                if !holds_keyless && let Some(item) = self.get_keyless(sub, &rt, now).await? {
                    rt.held.lock().expect("held").insert(item);
                }
                Some(rt)
            }
        };
        let mut stats = Stats { pending: self.ready(&sub.name, self.names.parts()).await?, ..Default::default() };
        let mut oldest: Option<DateTime<Utc>> = None;
        if let Some(rt) = &rt {
            for item in rt.held.lock().expect("held").items.values() {
                match item.state {
                    State::Leased { until, .. } if until > now => stats.in_flight += 1,
                    _ => stats.pending += 1,
                }
                oldest = Some(oldest.map_or(item.published_at, |o| o.min(item.published_at)));
            }
        }
        stats.lag_ms = oldest.map_or(0, |o| (now - o).num_milliseconds().max(0) as u64);
        stats.dead_letters = self.dead.count(&sub.name).await?;
        Ok(stats)
    }

    /// What this process holds decides; without anything held, the
    /// keyless queue (keyed events, and a standing consumer's, come to
    /// this process by themselves, and wake it).
    pub(crate) async fn subscription_next_due(&self, sub: &Subscription) -> BResult<Option<DateTime<Utc>>> {
        let now = Utc::now();
        if let Some(rt) = self.runtime_if_any(&sub.name) {
            let held = rt.held.lock().expect("held");
            let next = held
                .items
                .values()
                .map(|i| match i.state {
                    State::Ready(at) => at.max(now),
                    State::Leased { until, .. } => until.max(now),
                })
                .min();
            // A standing consumer's events come by themselves, and wake it;
            // what waits in the queue beyond its prefetch is not due here.
            if next.is_some() || rt.standing.is_some() {
                return Ok(next);
            }
        }
        let waiting = self.ready(&sub.name, std::iter::once(Part::Keyless)).await?;
        Ok((waiting > 0).then_some(now))
    }
}
