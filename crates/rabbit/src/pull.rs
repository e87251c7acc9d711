//! Leasing events to a puller, from what this process holds and, for
//! keyless events, from the keyless queue (drawn in one go, as many as
//! still wanted).
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
//!
//! Keyless events are drawn, not got one by one: `basic.get` is a round
//! trip per event (measured: herald on RabbitMQ pulled at a fraction of
//! what raw consumers take, with 256 sequential gets a pull). A draw asks
//! how many wait, then consumes with a prefetch of what the pull still
//! wants (no more than wait), and cancels the consumer once that many
//! came or none came for [`QUIET`] (another process took the rest): four
//! round trips whatever the count, three when the prefetch is the last
//! draw's. Nothing is taken beyond what the pull asked for and what the
//! pulls of this process waiting for their turn to draw will ask for
//! (taken for them in the same draw: the draws of one channel take turns,
//! and each costs its round trips whatever its size), so no process sits
//! on keyless events nobody pulls from it; what arrives between the end of
//! the wait and the cancel is held here, due, for the next pull (as a
//! keyed partition's event is).

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use herald_broker::{Message, Subscription};
use lapin::{
    message::Delivery,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicQosOptions, QueueDeclareOptions},
    types::FieldTable,
};

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

/// How long a draw waits for its next delivery before it takes the queue
/// for drained (by another process) and cancels.
const QUIET: Duration = Duration::from_millis(20);

/// The most one draw takes: a prefetch count is 16 bits.
const MAX_DRAW: usize = 1000;

/// A pull's count in what the pulls waiting to draw want, taken off
/// again however the wait ends (a pull whose caller went away included:
/// a count left behind would have every later draw take events for
/// nobody).
struct Waiting<'a> {
    wanted: &'a AtomicUsize,
    max: usize,
}

impl<'a> Waiting<'a> {
    fn new(wanted: &'a AtomicUsize, max: usize) -> Self {
        wanted.fetch_add(max, Ordering::Relaxed);
        Waiting { wanted, max }
    }

    /// What the others waiting want.
    fn others(&self) -> usize {
        self.wanted.load(Ordering::Relaxed).saturating_sub(self.max)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.wanted.fetch_sub(self.max, Ordering::Relaxed);
    }
}

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
        // What is held here goes first; the keyless queue fills the rest.
        let due_here = || rt.held.lock().expect("held").items.values().filter(|i| i.due(now)).count();
        // A standing consumer brings keyless events by itself. A draw that
        // waited its turn may find that the one before drew for it.
        let mut turn = None;
        let mut drawn = Vec::new();
        if rt.standing.is_none() && due_here() < max {
            let waiting = Waiting::new(&rt.draw_wanted, max);
            let one = rt.drawing.lock().await;
            let behind = waiting.others();
            drop(waiting);
            let want = max.saturating_sub(due_here());
            if want > 0 {
                drawn = self.draw_keyless(sub, rt, want + behind).await?;
            }
            // Kept until what was drawn is held, for the next in turn to find.
            turn = Some(one);
        }
        let mut out = Vec::new();
        let (mut pass, mut bury) = (Vec::new(), Vec::new());
        {
            let mut held = rt.held.lock().expect("held");
            // Held and handed out under one lock: another pull of this
            // process does not take what this one drew (it may take what
            // this one's turn left over).
            for d in drawn {
                match held::item(&d, Part::Keyless, now) {
                    Some(item) => drop(held.insert(item)),
                    None => {
                        tracing::error!(queue = %self.names.queue(&sub.name, Part::Keyless), "a message that is not a CloudEvent; dropped");
                        pass.push(d.delivery_tag);
                    }
                }
            }
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
        drop(turn);
        rt.ack_all(&pass).await?;
        let buried = !bury.is_empty();
        for item in bury {
            self.bury(sub, rt, item, now).await?;
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

    /// Up to `want` deliveries from the keyless queue, in one go (see the
    /// module's doc): none when it holds nothing ready. Not-CloudEvents
    /// included, for the caller to drop; every delivery answered is this
    /// process's to acknowledge. The caller holds `rt.drawing`: one draw
    /// at a time on the channel, whose prefetch is set for the consumer
    /// that follows.
    async fn draw_keyless(&self, sub: &Subscription, rt: &Runtime, want: usize) -> BResult<Vec<Delivery>> {
        let queue = self.names.queue(&sub.name, Part::Keyless);
        // A missing queue closes the channel, as any use of it would: the
        // subscription went, and the runtime with it.
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let ready = rt.channel.queue_declare(&queue, passive, FieldTable::default()).await.map_err(storage)?;
        let want = want.min(ready.message_count() as usize).min(MAX_DRAW);
        if want == 0 {
            return Ok(Vec::new());
        }
        // Per consumer (not `global`): the keyed consumers keep their one.
        // Set when it changes only (draws take turns on the channel).
        let prefetch = u16::try_from(want).unwrap_or(u16::MAX);
        if rt.prefetch.load(Ordering::Relaxed) != prefetch {
            rt.channel.basic_qos(prefetch, BasicQosOptions { global: false }).await.map_err(storage)?;
            rt.prefetch.store(prefetch, Ordering::Relaxed);
        }
        let options = BasicConsumeOptions::default();
        let mut consumer =
            rt.channel.basic_consume(&queue, "", options, FieldTable::default()).await.map_err(storage)?;
        let mut got = Vec::with_capacity(want);
        let mut failed = None;
        while got.len() < want {
            match tokio::time::timeout(QUIET, consumer.next()).await {
                Ok(Some(Ok(d))) => got.push(d),
                Ok(Some(Err(e))) => {
                    failed = Some(storage(e));
                    break;
                }
                // Cancelled by the server: the queue went.
                Ok(None) => {
                    failed = Some(storage(format!("{queue} was deleted")));
                    break;
                }
                // Quiet: another process took the rest.
                Err(_) => break,
            }
        }
        if failed.is_none()
            && let Err(e) = rt.channel.basic_cancel(consumer.tag().as_str(), BasicCancelOptions::default()).await
        {
            failed = Some(storage(e));
        }
        if let Some(e) = failed {
            // The channel or the queue failed: the next use starts over,
            // and what this channel held goes back to the queues.
            rt.broken.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(e);
        }
        // What came before the cancel took effect is this process's too;
        // the stream ends at the cancel.
        while let Some(Ok(d)) = consumer.next().await {
            got.push(d);
        }
        Ok(got)
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
