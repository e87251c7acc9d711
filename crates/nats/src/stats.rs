//! How a subscription keeps up, and when it next has something due, from
//! what the server says of its consumers.

use chrono::{DateTime, Utc};
use herald_broker::{Stats, Subscription};

use crate::{NatsBroker, names::Part};

type BResult<T> = herald_broker::Result<T>;

/// When events are out whose lease or delay another process set, herald
/// cannot know when they end: it looks again after this long at most.
const POLL: chrono::Duration = chrono::Duration::seconds(1);

impl NatsBroker {
    /// `pending` counts events not yet handed out; `in_flight` those out
    /// or given back and waiting for their delay (the server does not tell
    /// the two apart), but for those this process keeps for its next fetch
    /// (see `fetch`), which are pending. `lag_ms` is the age of the oldest
    /// unacknowledged event.
    pub(crate) async fn subscription_stats(&self, sub: &Subscription) -> BResult<Stats> {
        let infos = self.consumer_infos(sub).await?;
        let now = Utc::now();
        let stream = self.js.get_stream_no_info(self.names.stream(&sub.topic)).await.map_err(crate::storage)?;
        let mut stats = Stats::default();
        let mut oldest: Option<DateTime<Utc>> = None;
        for (part, info) in &infos {
            let kept = self.kept(sub, *part);
            stats.pending += info.num_pending + kept;
            stats.in_flight += (info.num_ack_pending as u64).saturating_sub(kept);
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                continue;
            }
            // The first event on the consumer's subject past what it has
            // acknowledged is its oldest unacknowledged one.
            let first = stream
                .raw_message_builder()
                .sequence(info.ack_floor.stream_sequence + 1)
                .next_by_subject(self.names.subject(&sub.topic, *part))
                .send()
                .await;
            if let Ok(m) = first {
                let at = DateTime::from_timestamp_nanos(m.time.unix_timestamp_nanos() as i64);
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
            }
        }
        stats.lag_ms = oldest.map_or(0, |o| (now - o).num_milliseconds().max(0) as u64);
        stats.dead_letters = self.dead.count(&sub.name).await?;
        Ok(stats)
    }

    pub(crate) async fn subscription_next_due(&self, sub: &Subscription) -> BResult<Option<DateTime<Utc>>> {
        let now = Utc::now();
        let mut out = false;
        // Consumers whose part holds no stored event have nothing waiting or out.
        let stored = self.stored_parts(&sub.topic).await?;
        if stored.is_empty() {
            return Ok(None);
        }
        for (part, info) in self.infos_of(sub, stored.into_iter()).await? {
            let free = part == Part::Keyless || info.num_ack_pending == 0;
            if (info.num_pending > 0 && free) || self.kept(sub, part) > 0 {
                return Ok(Some(now));
            }
            out |= info.num_ack_pending > 0;
        }
        if !out {
            return Ok(None);
        }
        let poll = now + POLL;
        Ok(Some(self.wakeups.next_due(&sub.name, now).map_or(poll, |d| d.min(poll))))
    }

    /// Events of the part's consumer this process keeps for its next fetch.
    fn kept(&self, sub: &Subscription, part: Part) -> u64 {
        let (stream, consumer) = (self.names.stream(&sub.topic), self.names.consumer(&sub.name, part));
        self.mailbox.kept(&stream, &consumer) as u64
    }
}
