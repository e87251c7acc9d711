//! Leasing events to a puller, from what this process holds and, for
//! keyless events, from the keyless queue (`basic.get`, as many as still
//! wanted).
//!
//! Per-key order needs nothing here: a keyed partition has at most one
//! event in this process (its consumer's prefetch is one, and a single
//! active consumer among the processes), and the next comes only once
//! that one is acknowledged or buried. What herald adds:
//!
//! - the subscription's filter: an event it does not let through is
//!   acknowledged and passed over;
//! - leases: one that ended unanswered counts its attempt, and its event
//!   goes out again, or to the dead letters when that was its last;
//! - a short wait when nothing is here: deliveries to a consumer are
//!   asynchronous, so a publish confirmed a moment ago, or a key's next
//!   event after an ack, may still be on its way.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_broker::{Message, Subscription};
use lapin::options::BasicGetOptions;

use crate::{
    Inner,
    ack_id::AckId,
    held::{self, Item, Runtime, State},
    names::Part,
    storage,
};

type BResult<T> = herald_broker::Result<T>;

/// How long a pull that finds nothing waits for a delivery on its way.
const GRACE: Duration = Duration::from_millis(100);

impl Inner {
    pub(crate) async fn lease(&self, sub: &Subscription, max: usize, lease: Duration) -> BResult<Vec<Message>> {
        let max = max.max(1);
        let wake = self.wakeups.get(&sub.name);
        let rt = self.runtime(sub).await?;
        let arrived = wake.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        let out = self.take(sub, &rt, max, lease).await?;
        if !out.is_empty() {
            return Ok(out);
        }
        let _ = tokio::time::timeout(GRACE, arrived).await;
        self.take(sub, &rt, max, lease).await
    }

    async fn take(&self, sub: &Subscription, rt: &Runtime, max: usize, lease: Duration) -> BResult<Vec<Message>> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut out = Vec::new();
        let (mut pass, mut bury) = (Vec::new(), Vec::new());
        {
            let mut held = rt.held.lock().expect("held");
            for item in held.items.values_mut() {
                if let State::Leased { until: ends, .. } = item.state
                    && ends <= now
                {
                    // Its lease ended unanswered: that was an attempt.
                    item.made += 1;
                    item.state = State::Ready(now);
                }
            }
            let due: Vec<u64> = held
                .items
                .iter()
                .filter(|(_, i)| matches!(i.state, State::Ready(at) if at <= now))
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                if out.len() >= max {
                    break;
                }
                let item = held.items.get_mut(&id).expect("a due item");
                if !sub.filter.matches(&item.event) {
                    pass.push(held.items.remove(&id).expect("a due item").tag);
                } else if sub.retry.exhausted(item.made) {
                    bury.push(held.items.remove(&id).expect("a due item"));
                } else {
                    out.push(self.hand_out(id, item, until));
                }
            }
        }
        for tag in pass {
            rt.ack(tag).await?;
        }
        let buried = !bury.is_empty();
        for item in bury {
            self.bury(sub, rt, item, now).await?;
        }
        while out.len() < max {
            let Some(item) = self.get_keyless(sub, rt, now).await? else { break };
            let mut held = rt.held.lock().expect("held");
            let id = held.insert(item);
            let item = held.items.get_mut(&id).expect("just held");
            out.push(self.hand_out(id, item, until));
        }
        if buried {
            self.wakeups.wake(&sub.name);
        }
        Ok(out)
    }

    fn hand_out(&self, id: u64, item: &mut Item, until: DateTime<Utc>) -> Message {
        let token = rand::random::<u64>();
        item.state = State::Leased { until, token };
        Message {
            ack_id: AckId { process: self.process.clone(), item: id, token }.encode(),
            attempt: item.made + 1,
            seq: item.seq,
            published_at: item.published_at,
            event: item.event.clone(),
        }
    }

    /// The keyless queue's next event for the subscription, passing over
    /// (acknowledging) what its filter refuses and burying what is out of
    /// attempts; `None` once the queue is empty.
    pub(crate) async fn get_keyless(
        &self,
        sub: &Subscription,
        rt: &Runtime,
        now: DateTime<Utc>,
    ) -> BResult<Option<Item>> {
        let queue = self.names.queue(&sub.name, Part::Keyless);
        loop {
            let got = rt.channel.basic_get(&queue, BasicGetOptions { no_ack: false }).await.map_err(storage)?;
            let Some(got) = got else { return Ok(None) };
            let d = got.delivery;
            match held::item(&d, Part::Keyless, now) {
                None => {
                    tracing::error!(queue, "a message that is not a CloudEvent; dropped");
                    rt.ack(d.delivery_tag).await?;
                }
                Some(item) if !sub.filter.matches(&item.event) => rt.ack(item.tag).await?,
                Some(item) if sub.retry.exhausted(item.made) => self.bury(sub, rt, item, now).await?,
                Some(item) => return Ok(Some(item)),
            }
        }
    }
}
