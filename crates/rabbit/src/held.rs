//! What this process holds of a subscription: RabbitMQ delivered it and
//! waits for an ack on this process's channel, while herald leases it to
//! pullers.
//!
//! Leases, delays and attempts are herald's, in memory: an event stays
//! unacknowledged on the channel while it is out with a puller, or given
//! back and waiting for its delay, and goes out again from here when due.
//! Only an ack or a burial acknowledges it to RabbitMQ. Should the process
//! die, its channel closes and RabbitMQ gives what it held to another
//! process, counting the return (`x-delivery-count`), which herald counts
//! as an attempt.
//!
//! Each subscription has a channel of its own in each process that uses
//! it: a consumer per keyed queue with a prefetch of one (so a partition
//! has at most one event here, and the next comes only once it is
//! acknowledged). The keyless queue of a subscription pulled over HTTP is
//! drawn from as pullers ask (see `pull`): no process sits on events
//! nobody pulls from it. One that herald delivers itself (push, and the
//! `await` steps' listeners), whose every process pulls without pause,
//! has a standing consumer there too, with a prefetch of what it may have
//! in flight: RabbitMQ sends its events ahead, as it would to any
//! consumer, and no pull waits on a draw's round trips.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use herald_broker::CloudEvent;
use herald_core::retry::AttemptError;
use lapin::{
    Channel, Connection,
    message::Delivery,
    options::{BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use tokio::sync::Notify;

use crate::{
    headers,
    names::{Names, Part},
    storage,
};

type BResult<T> = herald_broker::Result<T>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Goes out at this time (now, or after a nack's delay).
    Ready(DateTime<Utc>),
    /// Out with a puller until then; `token` is in its ack id, so the ack
    /// id of an earlier lease no longer answers it.
    Leased { until: DateTime<Utc>, token: u64 },
}

pub struct Item {
    /// The channel's delivery tag.
    pub tag: u64,
    pub part: Part,
    pub event: CloudEvent,
    pub seq: u64,
    pub published_at: DateTime<Utc>,
    /// Attempts made so far.
    pub made: u32,
    /// Errors of the attempts made, oldest first.
    pub errors: Vec<AttemptError>,
    pub state: State,
}

impl Item {
    /// Could go out now: due, or its lease ended.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            State::Ready(at) => at <= now,
            State::Leased { until, .. } => until <= now,
        }
    }
}

#[derive(Default)]
pub struct Held {
    next: u64,
    /// By arrival: keyless events come in queue order.
    pub items: BTreeMap<u64, Item>,
}

impl Held {
    pub fn insert(&mut self, item: Item) -> u64 {
        self.next += 1;
        self.items.insert(self.next, item);
        self.next
    }
}

/// A subscription's channel in this process, and what it holds.
pub struct Runtime {
    pub channel: Channel,
    pub held: Mutex<Held>,
    /// A consumer ended (the queue was deleted, the channel closed): what
    /// is held here is no longer this process's, and the next use starts
    /// over on a new channel.
    pub broken: AtomicBool,
    consumers: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Held by a pull drawing from the keyless queue (see `pull`).
    pub drawing: tokio::sync::Mutex<()>,
    /// How many events the pulls waiting for their turn to draw want.
    pub draw_wanted: std::sync::atomic::AtomicUsize,
    /// The prefetch of a standing consumer on the keyless queue; `None`:
    /// it is drawn from.
    pub standing: Option<u16>,
    /// The prefetch the channel gives the next consumer it starts, as last
    /// set (draws set it only when they need another).
    pub prefetch: std::sync::atomic::AtomicU16,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let consumers = self.take_consumers();
        let ch = self.channel.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn(close_then_end(ch, consumers))),
            Err(_) => consumers.iter().for_each(|c| c.abort()),
        }
    }
}

/// Closes the channel, which returns whatever it held to the queues, and
/// only then ends its consumers' tasks. The other way round, each consumer
/// dropped while its channel is open is cancelled by the client; should
/// its queue be deleted at that moment, the server's cancel crosses the
/// client's, and RabbitMQ 3.10's channel process crashes on it, closing
/// the whole connection (INTERNAL_ERROR) with every call under way on it.
async fn close_then_end(ch: Channel, consumers: Vec<tokio::task::AbortHandle>) {
    let _ = ch.close(200, "done").await;
    for c in consumers {
        c.abort();
    }
}

/// A delivery made an item: not herald's (not a CloudEvent) when `None`.
pub fn item(d: &Delivery, part: Part, now: DateTime<Utc>) -> Option<Item> {
    let event: CloudEvent = serde_json::from_slice(&d.data).ok()?;
    let stamp = headers::stamp(&d.properties);
    Some(Item {
        tag: d.delivery_tag,
        part,
        event,
        seq: stamp.seq,
        published_at: stamp.at,
        made: stamp.returned,
        errors: Vec::new(),
        state: State::Ready(now),
    })
}

impl Runtime {
    /// Closes the channel now (see [`close_then_end`]): for a subscription
    /// whose queues are about to go.
    pub async fn close(&self) {
        self.broken.store(true, Ordering::Relaxed);
        close_then_end(self.channel.clone(), self.take_consumers()).await;
    }

    fn take_consumers(&self) -> Vec<tokio::task::AbortHandle> {
        self.consumers.lock().expect("consumers").drain(..).collect()
    }

    pub fn alive(&self) -> bool {
        !self.broken.load(Ordering::Relaxed) && self.channel.status().connected()
    }

    /// A channel for the subscription, consuming its keyed queues, and its
    /// keyless queue too with a prefetch of `standing`, if given.
    pub async fn start(
        conn: &Connection,
        names: &Names,
        sub: &str,
        standing: Option<u16>,
        wake: Arc<Notify>,
    ) -> BResult<Arc<Runtime>> {
        let channel = conn.create_channel().await.map_err(storage)?;
        // Per consumer: one event at a time per partition.
        channel.basic_qos(1, BasicQosOptions { global: false }).await.map_err(storage)?;
        let rt = Arc::new(Runtime {
            channel: channel.clone(),
            held: Mutex::new(Held::default()),
            broken: AtomicBool::new(false),
            consumers: Mutex::new(Vec::new()),
            drawing: tokio::sync::Mutex::new(()),
            draw_wanted: std::sync::atomic::AtomicUsize::new(0),
            standing,
            prefetch: std::sync::atomic::AtomicU16::new(standing.unwrap_or(1)),
        });
        for part in names.parts().filter(|p| *p != Part::Keyless || standing.is_some()) {
            if part == Part::Keyless
                && let Some(prefetch) = standing
            {
                // Per consumer: for the one that follows.
                channel.basic_qos(prefetch, BasicQosOptions { global: false }).await.map_err(storage)?;
            }
            let consumer = channel
                .basic_consume(&names.queue(sub, part), "", BasicConsumeOptions::default(), FieldTable::default())
                .await
                .map_err(storage)?;
            let task = tokio::spawn(consume(Arc::downgrade(&rt), consumer, part, wake.clone()));
            rt.consumers.lock().expect("consumers").push(task.abort_handle());
        }
        Ok(rt)
    }

    /// Acknowledges a delivery: RabbitMQ forgets it.
    pub async fn ack(&self, tag: u64) -> BResult<()> {
        self.channel.basic_ack(tag, Default::default()).await.map_err(storage)
    }

    /// Acknowledges deliveries, each on its own (not `multiple`: other
    /// deliveries of the channel below these may be out), all written in
    /// one go rather than one after the other.
    pub async fn ack_all(&self, tags: &[u64]) -> BResult<()> {
        futures::future::try_join_all(tags.iter().map(|t| self.ack(*t))).await.map(drop)
    }
}

async fn consume(rt: Weak<Runtime>, mut consumer: lapin::Consumer, part: Part, wake: Arc<Notify>) {
    while let Some(delivery) = consumer.next().await {
        // The runtime went, and its channel is closing, which ends this
        // stream and returns what came; ending here first would drop the
        // consumer while its channel is open (see `close_then_end`).
        let Some(rt) = rt.upgrade() else { continue };
        let Ok(d) = delivery else { break };
        match item(&d, part, Utc::now()) {
            Some(item) => {
                rt.held.lock().expect("held").insert(item);
                wake.notify_waiters();
            }
            None => {
                // Nobody can process it, and it must not hold its partition.
                tracing::error!(queue = %consumer.queue(), "a message that is not a CloudEvent; dropped");
                let _ = rt.ack(d.delivery_tag).await;
            }
        }
    }
    if let Some(rt) = rt.upgrade() {
        rt.broken.store(true, Ordering::Relaxed);
    }
    wake.notify_waiters();
}
