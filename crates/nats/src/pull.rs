//! Leasing events to a puller.
//!
//! The server keeps each partition to one event out and hands out events
//! no one else holds; herald adds what it does not know of:
//!
//! - which consumers are worth asking: a request to a consumer with
//!   nothing waits out its `expires`. One stream info names the topic's
//!   parts with events stored (interest retention keeps every event some
//!   consumer still owes); of those, the keyed partitions' consumers are
//!   asked for their info, and the keyless consumer is fetched from;
//! - never more than `max` events (a partition gives one at most, so no
//!   more partitions are asked at once than events are still wanted: an
//!   event fetched and then given back would count as a delivery);
//! - the subscription's filter, and redriven events meant for another
//!   subscription: acknowledged and passed over;
//! - attempts, counted without the unsent give-backs: an event out of
//!   attempts when it comes back (its last lease ended unanswered) is
//!   buried here instead of going out;
//! - the lease: when it is not the consumers' `ack_wait` (as the server
//!   has it, so consumers made before their `ack_wait` changed are still
//!   right; read again when the definition asks for another, and every
//!   10 s), a nak with the lease as its delay moves the server's
//!   redelivery to the lease's end.

use std::{
    collections::VecDeque,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use async_nats::Message as NatsMessage;
use chrono::{DateTime, Utc};
use herald_broker::{CloudEvent, Message, Subscription};

use crate::{
    NatsBroker,
    ack_id::AckId,
    answer::Answer,
    fetch::{Fetched, Received},
    names::Part,
    storage,
    topology::consumer_config,
};

type BResult<T> = herald_broker::Result<T>;

/// How often one partition is asked again after what it gave was passed
/// over or buried, or the server left its request unanswered, within one
/// pull.
const ROUNDS: u32 = 8;

/// How long the consumers' `ack_wait` as read from the server is trusted.
const ACK_WAIT_KEPT: Duration = Duration::from_secs(10);

/// A subscription's consumers' `ack_wait`, as last read from the server.
#[derive(Clone, Copy)]
pub(crate) struct KnownAckWait {
    /// What the definition asked for when it was read.
    expected: Duration,
    /// What the consumers have (`None`: they differ).
    actual: Option<Duration>,
    read: Instant,
}

/// The header that sends a redriven event to one subscription only.
pub const FOR_HEADER: &str = "Herald-For";

enum Taken {
    Out(Box<Message>),
    /// Passed over (filtered, meant for another subscription) or buried.
    Gone {
        buried: bool,
    },
}

impl NatsBroker {
    /// Answers the messages and whether a buried event let a key move on.
    pub(crate) async fn lease(&self, sub: &Subscription, max: usize, lease: Duration) -> BResult<(Vec<Message>, bool)> {
        let max = max.max(1);
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let stream = self.names.stream(&sub.topic);

        // Partitions free to give an event and the keyless events first,
        // then partitions whose one event is out (its lease may have ended).
        // Only the parts with events stored can have any for this
        // subscription; of those, the keyed partitions' consumers are
        // asked what they hold (the keyless consumer is simply fetched from).
        let stored = self.stored_parts(&sub.topic).await?;
        let keyless = stored.contains(&Part::Keyless).then_some(Part::Keyless);
        let mut keyed = stored.into_iter().filter(|&p| p != Part::Keyless).peekable();
        let (mut free, mut busy) = (Vec::new(), Vec::new());
        if keyed.peek().is_some() {
            for (part, info) in self.infos_of(sub, keyed).await? {
                let waiting = info.num_pending > 0;
                let out = info.num_ack_pending > 0;
                if waiting && !out {
                    free.push(part);
                } else if out {
                    busy.push(part);
                }
            }
        }
        // The keyless consumer takes its turn among the free partitions, so
        // neither kind waits behind the other when few events are wanted.
        free.extend(keyless);
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        if !free.is_empty() {
            let by = turn % free.len();
            free.rotate_left(by);
        }
        let mut todo: VecDeque<(Part, u32)> = free.into_iter().chain(busy).map(|p| (p, 0)).collect();

        let mut out = Vec::new();
        let mut moved = false;
        let mut failed = None;
        // Handed out after being kept a while (see `fetch`).
        let mut kept = Vec::new();
        while out.len() < max {
            let Some(&(first, _)) = todo.front() else { break };
            let wanted = max - out.len();
            // The keyless consumer alone, for all still wanted; or as many
            // partitions as events are still wanted, one each.
            let chunk: Vec<(Part, u32)> = if first == Part::Keyless {
                todo.pop_front().into_iter().collect()
            } else {
                let n = todo.iter().take(wanted).take_while(|(p, _)| *p != Part::Keyless).count();
                todo.drain(..n).collect()
            };
            let fetches = chunk.iter().map(|&(part, _)| {
                let consumer = self.names.consumer(&sub.name, part);
                let batch = if part == Part::Keyless { wanted } else { 1 };
                let stream = &stream;
                async move {
                    let nudge = part == Part::Keyless;
                    self.mailbox.fetch(&self.client, stream, &consumer, batch, nudge).await.map_err(storage)
                }
            });
            // One consumer failing must not drop what the others handed
            // over: those events are out already, an attempt counted.
            let fetched = futures::future::join_all(fetches).await;
            for ((part, rounds), messages) in chunk.into_iter().zip(fetched) {
                let Fetched { received, closed } = match messages {
                    Ok(f) => f,
                    Err(e) => {
                        failed.get_or_insert(e);
                        continue;
                    }
                };
                // Left unanswered by the server: asked again.
                let mut again = !closed && received.is_empty();
                for m in received {
                    let was_kept = m.kept;
                    match self.take(sub, m, now, until).await {
                        Ok(Taken::Out(message)) => {
                            if was_kept {
                                kept.push(message.ack_id.clone());
                            }
                            out.push(*message)
                        }
                        Ok(Taken::Gone { buried }) => {
                            moved |= buried;
                            again = true;
                        }
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
                    }
                }
                if again && rounds + 1 < ROUNDS {
                    todo.push_back((part, rounds + 1));
                }
            }
            if failed.is_some() {
                break;
            }
        }
        if let Some(e) = failed {
            if out.is_empty() {
                return Err(e);
            }
            tracing::warn!(subscription = %sub.name, error = %e, "part of a pull failed; handing out what came");
        }

        if !out.is_empty() {
            if !self.lease_is_ack_wait(sub, lease).await? {
                self.move_leases(out.iter().map(|m| m.ack_id.as_str()), Answer::Nak(lease)).await;
            } else if !kept.is_empty() {
                // Their `ack_wait` ran while they were kept: it starts
                // again with the lease.
                self.move_leases(kept.iter().map(String::as_str), Answer::Progress).await;
            }
        }
        if !out.is_empty() {
            self.wakeups.due_at(&sub.name, until);
        }
        Ok((out, moved))
    }

    /// One fetched event: handed out, passed over or buried. Should that
    /// fail, it is given back unsent (if that still can be), so the
    /// failure spends none of its attempts.
    async fn take(
        &self,
        sub: &Subscription,
        received: Received,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BResult<Taken> {
        let Received { message: m, behind, .. } = received;
        let Some(mut id) = m.reply.as_deref().and_then(|r| AckId::new(r, until)) else {
            tracing::warn!(subject = %m.subject, "a pulled message without an ack subject");
            return Ok(Taken::Gone { buried: false });
        };
        let taken = self.decide(sub, &mut id, m, behind, now).await;
        if taken.is_err()
            && let Err(e) = self.unsend(sub, &id, Duration::ZERO).await
        {
            tracing::warn!(seq = id.seq, error = %e, "an event could not be given back; it returns after its lease");
        }
        taken
    }

    async fn decide(
        &self,
        sub: &Subscription,
        id: &mut AckId,
        m: NatsMessage,
        behind: bool,
        now: DateTime<Utc>,
    ) -> BResult<Taken> {
        let meant_for = m.headers.as_ref().and_then(|h| h.get(FOR_HEADER)).map(|v| v.as_str().to_string());
        if meant_for.is_some_and(|name| name != sub.name) {
            self.answer(id, Answer::Ack).await?;
            return Ok(Taken::Gone { buried: false });
        }
        let event: CloudEvent = match serde_json::from_slice(&m.payload) {
            Ok(e) => e,
            Err(e) => {
                // Not herald's: nobody can process it, and it must not hold its partition.
                tracing::error!(subject = %m.subject, seq = id.seq, error = %e, "a message on a topic is not a CloudEvent; terminated");
                self.answer(id, Answer::Term).await?;
                return Ok(Taken::Gone { buried: false });
            }
        };
        if !sub.filter.matches(&event) {
            self.answer(id, Answer::Ack).await?;
            return Ok(Taken::Gone { buried: false });
        }
        let key = self.names.attempts_key(&sub.name, &sub.topic, id.seq);
        let mut record = self.records.of_received(&key, id, behind).await?;
        let made = record.made_before(id.delivered);
        if sub.retry.exhausted(made) {
            // Its last lease ended with no answer.
            self.bury(sub, id, event, made, record.errors, now).await?;
            return Ok(Taken::Gone { buried: true });
        }
        self.records.keep_count(&key, &mut record, id).await?;
        Ok(Taken::Out(Box::new(Message {
            ack_id: id.encode(),
            attempt: made + 1,
            seq: id.seq,
            published_at: id.published_at(),
            event,
        })))
    }

    /// Whether the subscription's consumers, as the server has them, wait
    /// `lease` before redelivering. Read from the server when the
    /// definition asks for another `ack_wait` than last read, and at
    /// least every [`ACK_WAIT_KEPT`] (consumers made by an earlier herald
    /// may still have an earlier `ack_wait`).
    async fn lease_is_ack_wait(&self, sub: &Subscription, lease: Duration) -> BResult<bool> {
        let expected = consumer_config(&self.names, sub, Part::Keyless).ack_wait;
        let known = self.ack_waits.lock().expect("ack waits").get(&sub.name).copied();
        if let Some(k) = known
            && k.expected == expected
            && k.read.elapsed() < ACK_WAIT_KEPT
        {
            return Ok(k.actual == Some(lease));
        }
        let infos = self.consumer_infos(sub).await?;
        let mut waits = infos.iter().map(|(_, info)| info.config.ack_wait);
        let first = waits.next();
        let actual = first.filter(|&f| waits.all(|w| w == f));
        let known = KnownAckWait { expected, actual, read: Instant::now() };
        self.ack_waits.lock().expect("ack waits").insert(sub.name.clone(), known);
        Ok(actual == Some(lease))
    }

    /// Moves each event's redelivery to the end of its lease: a nak with
    /// the lease as its delay, or a progress answer where the lease is the
    /// `ack_wait`. Should one fail, the server keeps the consumer's
    /// `ack_wait` (the subscription's lease) from the event's delivery: a
    /// shorter lease then only refuses answers a little early; a longer one
    /// could see the event go out again while its first puller still holds
    /// it, which is why this is logged.
    async fn move_leases<'a>(&self, ack_ids: impl Iterator<Item = &'a str>, answer: Answer) {
        let naks = ack_ids.filter_map(AckId::parse).map(|id| async move {
            if let Err(e) = self.answer(&id, answer).await {
                tracing::warn!(seq = id.seq, error = %e, "a lease was not moved; the event waits out the subscription's lease");
            }
        });
        futures::future::join_all(naks).await;
    }
}
