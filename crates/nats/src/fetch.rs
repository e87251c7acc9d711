//! Pull requests to consumers, written out rather than taken from
//! async-nats's `fetch`, because their exact shape matters on a 2.9 server:
//!
//! - `no_wait` answers at once when the consumer has nothing at all;
//! - `expires` must be set too: on a partition whose one event is out, a
//!   request without it would stay on the server for good.
//!
//! Even so, a busy server may end a request late, or not say so, and hand
//! an event to a request its puller stopped waiting for. All requests of a
//! process therefore share one [`Mailbox`], an inbox subscription that
//! outlives them. The server sends events on their own subjects, not the
//! inbox's, so the mailbox routes each by its consumer (named in its ack
//! subject), and a process has one fetch at a time per consumer. An event
//! for a consumer nobody here is fetching from at the moment is kept for
//! [`KEEP`], and the next fetch of that consumer takes it first (its
//! `ack_wait` then starts again, see `pull`); only if none comes is it given
//! back as unsent (its attempt not counted), so it goes out again to
//! another puller, instead of after a whole lease. (Given back at once, a
//! late event went out again to whichever request the server had waiting,
//! which under heavy load was often one its fetch had given up on too,
//! and came back late again, over and over.)
//!
//! A 2.9.10 server under load leaves some requests without a closing word
//! (measured: a dozen of the 420 fetches of a W3 run, each then holding
//! its consumer's turn for the whole grace, half the run's time), so a
//! fetch does not wait for that word when the server has plainly said all
//! it will:
//!
//! - once events came and the request's `expires` is past, a pause of
//!   [`IDLE`] ends it (the server sends what it has back to back);
//! - a request to the keyless consumer that brought nothing within
//!   [`NUDGE`] may have been dropped (its consumer info then shows no
//!   request waiting, though events wait): one more request is sent in the
//!   same fetch; what the first brings later is kept for the next fetch.
//!   Not to a keyed partition's consumer, which has one event to give:
//!   there the request left waiting on the server took the key's next
//!   event once the first was answered, and under heavy load the contract
//!   suite's keyed tests failed now and then (2 of 40 runs);
//! - a fetch the server left without any word within the grace says so
//!   ([`Fetched::closed`]), and the pull asks that consumer again.
//!
//! A consumer sends new events in stream order, so an event at or below
//! the highest stream sequence this process already had from its consumer
//! is one sent again, whatever count the server gives it (a 2.9 server's
//! count can go back, see [`crate::records`]): the mailbox marks it
//! [`Received::behind`]. A consumer made anew (a subscription deleted and
//! made again) starts its own sequence again, which shows it: what was
//! had from the one before is forgotten then.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_nats::{Message, StatusCode};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{ack_id::AckId, answer::Answer, names::Names, records::Records};

/// How long a request may wait on a consumer whose events are all out:
/// long enough for one whose lease just ended to come back, short enough
/// that a pull over many partitions answers quickly.
pub const EXPIRES: Duration = Duration::from_millis(5);

/// How much longer than `expires` the server's closing word may take
/// before the puller stops waiting (what comes later is kept, see [`KEEP`]).
const GRACE: Duration = Duration::from_millis(100);

/// A pause after the last event, past the request's `expires`, that ends
/// the request. What a loaded server sends later is kept (see [`KEEP`]).
const IDLE: Duration = Duration::from_millis(10);

/// How long within a fetch a request may bring nothing before one more is
/// sent: well past the first event's wait measured under W3 (p99 13 ms,
/// at most 21).
const NUDGE: Duration = Duration::from_millis(30);

/// How long an event that came after its fetch ended is kept for the next
/// fetch of its consumer before it is given back unsent.
const KEEP: Duration = Duration::from_millis(500);

/// Where the replies to this process's pull requests arrive.
pub struct Mailbox {
    give_back: GiveBack,
    prefix: String,
    next: AtomicU64,
    routes: Mutex<Routes>,
    /// One fetch at a time per consumer.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Where an arriving message goes, under one lock: a fetch opening on a
/// consumer takes what was kept for it, and nothing is kept for a consumer
/// with a fetch open.
#[derive(Default)]
struct Routes {
    /// The fetch open on each consumer (`stream/consumer`), and by its
    /// request's inbox (where the server's closing word comes).
    open: HashMap<String, mpsc::UnboundedSender<Received>>,
    /// Events that came for a consumer with no fetch open, by consumer,
    /// each with its number (for its giving back once [`KEEP`] is over).
    kept: HashMap<String, Vec<(u64, Received)>>,
}

impl Routes {
    /// Takes the kept events of `key` that `pick` chooses (by their
    /// number), and forgets the key once none is left.
    fn take_kept(&mut self, key: &str, mut pick: impl FnMut(u64) -> bool) -> Vec<Received> {
        let Some(kept) = self.kept.get_mut(key) else { return Vec::new() };
        let (taken, left): (Vec<_>, Vec<_>) = std::mem::take(kept).into_iter().partition(|(n, _)| pick(*n));
        match left.is_empty() {
            true => drop(self.kept.remove(key)),
            false => *kept = left,
        }
        taken.into_iter().map(|(_, r)| r).collect()
    }
}

/// What a pull request brought.
pub struct Fetched {
    pub received: Vec<Received>,
    /// The server ended the request (its batch filled, nothing more, or
    /// expired) or paused past its end; `false` when nothing at all came
    /// within the grace.
    pub closed: bool,
}

/// A message a pull request brought.
pub struct Received {
    pub message: Message,
    /// An event this process had a later one of from its consumer already.
    pub behind: bool,
    /// It came after its fetch ended and was kept for this one: the
    /// server's `ack_wait` has run since then.
    pub kept: bool,
}

/// Where a message goes: its consumer for an event (and its stream and
/// consumer sequences), its inbox otherwise. Read from the ack subject
/// without parsing a whole ack id: every message a pull brings passes here.
fn route(m: &Message) -> (String, Option<Had>) {
    match m.reply.as_deref().and_then(AckId::locate) {
        Some((stream, consumer, seq, consumer_seq)) => {
            let mut key = String::with_capacity(stream.len() + consumer.len() + 1);
            key.push_str(stream);
            key.push('/');
            key.push_str(consumer);
            (key, Some(Had { seq, consumer_seq }))
        }
        None => (m.subject.to_string(), None),
    }
}

/// The highest sequences had from a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Had {
    /// In the stream.
    seq: u64,
    /// The consumer's own, one more for every delivery it makes.
    consumer_seq: u64,
}

/// Whether delivery `now` is behind what was `had` from its consumer (see
/// the module's doc), and what is had after it.
fn against(had: Option<Had>, now: Had) -> (bool, Had) {
    match had {
        // The same consumer: its sequence went on.
        Some(had) if now.consumer_seq > had.consumer_seq => {
            (now.seq <= had.seq, Had { seq: had.seq.max(now.seq), consumer_seq: now.consumer_seq })
        }
        // None yet, or a consumer made anew.
        _ => (false, now),
    }
}

/// What giving back a late event needs, apart from the broker.
#[derive(Clone)]
pub struct GiveBack {
    pub client: async_nats::Client,
    pub names: Names,
    pub records: Records,
    /// A kept event is due: waiting pulls of its subscription look again.
    pub wakeups: Arc<herald_broker::wake::Wakeups>,
}

impl Mailbox {
    /// Subscribes to the process's inboxes and routes what arrives; ends
    /// when aborted.
    pub async fn open(give_back: GiveBack) -> Result<(Arc<Mailbox>, tokio::task::AbortHandle), String> {
        let prefix = give_back.client.new_inbox();
        let mut replies = give_back.client.subscribe(format!("{prefix}.*")).await.map_err(|e| e.to_string())?;
        let mailbox = Arc::new(Mailbox {
            give_back: give_back.clone(),
            prefix,
            next: AtomicU64::new(0),
            routes: Mutex::new(Routes::default()),
            turns: Mutex::new(HashMap::new()),
        });
        let routes = mailbox.clone();
        let task = tokio::spawn(async move {
            let mut highest: HashMap<String, Had> = HashMap::new();
            while let Some(m) = replies.next().await {
                let (key, now) = route(&m);
                let behind = now.is_some_and(|now| match highest.get_mut(&key) {
                    Some(had) => {
                        let (behind, after) = against(Some(*had), now);
                        *had = after;
                        behind
                    }
                    None => {
                        highest.insert(key.clone(), now);
                        false
                    }
                });
                let received = Received { message: m, behind, kept: false };
                let late = match routes.routes.lock().expect("mailbox").open.get(&key) {
                    Some(to) => to.send(received).err().map(|unsent| unsent.0),
                    None => Some(received),
                };
                if let Some(late) = late {
                    routes.keep(key, late);
                }
            }
        });
        Ok((mailbox, task.abort_handle()))
    }

    /// Up to `batch` events from `consumer` of `stream`; `nudge`: one more
    /// request if the first brings nothing within [`NUDGE`].
    pub async fn fetch(
        self: &Arc<Self>,
        client: &async_nats::Client,
        stream: &str,
        consumer: &str,
        batch: usize,
        nudge: bool,
    ) -> Result<Fetched, String> {
        let key = format!("{stream}/{consumer}");
        let turn = self.turns.lock().expect("mailbox").entry(key.clone()).or_default().clone();
        let _turn = turn.lock().await;
        let inbox = format!("{}.{}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed));
        let (to, mut replies) = mpsc::unbounded_channel();
        let kept = {
            let mut routes = self.routes.lock().expect("mailbox");
            routes.open.insert(inbox.clone(), to.clone());
            routes.open.insert(key.clone(), to);
            // The first `batch` kept, in the order they came.
            let mut room = batch;
            routes.take_kept(&key, |_| {
                let take = room > 0;
                room = room.saturating_sub(1);
                take
            })
        };
        let asked = Asked { client, stream, consumer, inbox: &inbox };
        let out = asked.fetch(batch, kept, nudge, &mut replies).await;
        {
            let mut routes = self.routes.lock().expect("mailbox");
            routes.open.remove(&inbox);
            routes.open.remove(&key);
        }
        // Whatever came beyond the request's end is late now: kept a while
        // for the next fetch of this consumer.
        replies.close();
        while let Ok(m) = replies.try_recv() {
            self.keep(key.clone(), m);
        }
        out
    }

    /// How many events are kept for `consumer` of `stream`: out as far as
    /// the server knows, but due here.
    pub fn kept(&self, stream: &str, consumer: &str) -> usize {
        let routes = self.routes.lock().expect("mailbox");
        routes.kept.get(&format!("{stream}/{consumer}")).map_or(0, Vec::len)
    }

    /// Keeps an event that came for a consumer with no fetch open, for its
    /// next fetch: given back to the server instead, it would go out again
    /// to whichever request the server has waiting, which may be one its
    /// fetch has given up on too, over and over. Given back after [`KEEP`]
    /// if no fetch took it. A late closing word (no ack subject) is dropped.
    fn keep(self: &Arc<Self>, key: String, late: Received) {
        if late.message.reply.is_none() {
            return;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let late = Received { kept: true, ..late };
        self.routes.lock().expect("mailbox").kept.entry(key.clone()).or_default().push((n, late));
        if let Some(sub) = key.split_once('/').and_then(|(_, consumer)| self.give_back.names.sub_of_consumer(consumer))
        {
            self.give_back.wakeups.wake(&sub);
        }
        let mailbox = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(KEEP).await;
            let Some(mailbox) = mailbox.upgrade() else { return };
            let late = mailbox.routes.lock().expect("mailbox").take_kept(&key, |m| m == n);
            for late in late {
                give_back_late(mailbox.give_back.clone(), late).await;
            }
        });
    }
}

/// One fetch's requests to a consumer.
struct Asked<'a> {
    client: &'a async_nats::Client,
    stream: &'a str,
    consumer: &'a str,
    inbox: &'a str,
}

impl Asked<'_> {
    /// Asks for up to `batch` events.
    async fn ask(&self, batch: usize) -> Result<(), String> {
        let request = json!({"batch": batch, "no_wait": true, "expires": EXPIRES.as_nanos() as u64});
        self.client
            .publish_with_reply(
                format!("$JS.API.CONSUMER.MSG.NEXT.{}.{}", self.stream, self.consumer),
                self.inbox.to_string(),
                request.to_string().into(),
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// What was kept for this consumer, and what requests for the rest
    /// bring (see the module's doc for when it ends).
    async fn fetch(
        &self,
        batch: usize,
        kept: Vec<Received>,
        nudge: bool,
        replies: &mut mpsc::UnboundedReceiver<Received>,
    ) -> Result<Fetched, String> {
        let mut received = kept;
        if received.len() >= batch {
            return Ok(Fetched { received, closed: true });
        }
        let started = tokio::time::Instant::now();
        let deadline = started + EXPIRES + GRACE;
        self.ask(batch - received.len()).await?;
        let mut nudged = !nudge;
        // Requests without their closing word yet: the fetch is over when
        // none is left (or the batch is full).
        let mut open = 1;
        while received.len() < batch {
            let until = match received.is_empty() {
                true if !nudged => deadline.min(started + NUDGE),
                true => deadline,
                false => deadline.min((tokio::time::Instant::now() + IDLE).max(started + EXPIRES + IDLE)),
            };
            let Ok(Some(m)) = tokio::time::timeout_at(until, replies.recv()).await else {
                if received.is_empty() && !nudged && until < deadline {
                    // Dropped by the server, perhaps: asked once more.
                    // Whatever the first request brings later is kept for
                    // the next fetch, not given back.
                    nudged = true;
                    self.ask(batch).await?;
                    open += 1;
                    continue;
                }
                if received.is_empty() {
                    tracing::debug!(
                        stream = self.stream,
                        consumer = self.consumer,
                        "a pull request had no closing word in time; what comes later is kept a while"
                    );
                }
                return Ok(Fetched { closed: !received.is_empty(), received });
            };
            match m.message.status {
                None | Some(StatusCode::OK) => received.push(m),
                // Nothing (more) now, or the request ran out: all said, by
                // this request.
                Some(StatusCode::NOT_FOUND | StatusCode::TIMEOUT) => {
                    open -= 1;
                    if open == 0 {
                        break;
                    }
                }
                Some(status) if received.is_empty() => {
                    return Err(format!(
                        "pulling from {}/{}: {status} {:?}",
                        self.stream, self.consumer, m.message.description
                    ));
                }
                Some(_) => break,
            }
        }
        Ok(Fetched { received, closed: true })
    }
}

/// An event that reached no puller within [`KEEP`]: back to the server, its
/// delivery not counted as an attempt.
async fn give_back_late(g: GiveBack, late: Received) {
    let Received { message: m, behind, .. } = late;
    let Some(mut id) = m.reply.as_deref().and_then(|r| AckId::new(r, chrono::Utc::now())) else {
        return; // a late closing word, not an event
    };
    let (Some(topic), Some(sub)) = (g.names.topic_of_stream(&id.stream), g.names.sub_of_consumer(&id.consumer)) else {
        return;
    };
    let key = g.names.attempts_key(&sub, &topic, id.seq);
    let given = async {
        let record = g.records.of_received(&key, &mut id, behind).await?;
        g.records.unsent(&key, record, &id).await?;
        g.client.request(id.reply.clone(), Answer::Nak(Duration::ZERO).body()).await.map_err(crate::storage)
    };
    if let Err(e) = given.await {
        tracing::warn!(seq = id.seq, error = %e, "a late event could not be given back; it returns after its lease");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn had(seq: u64, consumer_seq: u64) -> Had {
        Had { seq, consumer_seq }
    }

    #[test]
    fn an_event_at_or_below_what_its_consumer_gave_is_behind() {
        assert_eq!(against(None, had(5, 1)), (false, had(5, 1)));
        assert_eq!(against(Some(had(5, 1)), had(6, 2)), (false, had(6, 2)), "the next new one");
        assert_eq!(against(Some(had(6, 2)), had(5, 3)), (true, had(6, 3)), "sent again");
        assert_eq!(against(Some(had(6, 3)), had(6, 4)), (true, had(6, 4)), "the highest, sent again");
    }

    /// A process of its own on the test server: the mailbox and what its
    /// giving back needs, on a prefix removed when dropped.
    struct Process {
        client: async_nats::Client,
        names: Names,
        wakeups: Arc<herald_broker::wake::Wakeups>,
        mailbox: Arc<Mailbox>,
        postman: tokio::task::AbortHandle,
    }

    /// The test server, as the crate's other tests find it.
    fn url() -> String {
        std::env::var("NATS_ADDRESS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
    }

    impl Process {
        async fn open() -> Process {
            let client = async_nats::connect(url()).await.expect("NATS with JetStream at 127.0.0.1:4222");
            let names = Names::new(&herald_broker::contract::prefix::name("keep"), 4);
            let js = async_nats::jetstream::new(client.clone());
            let attempts = crate::setup::bucket(&js, names.attempts_bucket(), Duration::from_secs(60)).await.unwrap();
            let wakeups = Arc::new(herald_broker::wake::Wakeups::default());
            let give_back = GiveBack {
                client: client.clone(),
                names: names.clone(),
                records: Records::new(attempts),
                wakeups: wakeups.clone(),
            };
            let (mailbox, postman) = Mailbox::open(give_back).await.unwrap();
            Process { client, names, wakeups, mailbox, postman }
        }

        /// Makes the topic's stream and the subscription's keyless
        /// consumer, and publishes `events` on it.
        async fn topic(&self, events: usize) {
            let js = async_nats::jetstream::new(self.client.clone());
            let subjects = vec![self.names.stream_subjects("orders")];
            let stream = async_nats::jetstream::stream::Config { name: self.stream(), subjects, ..Default::default() };
            js.create_stream(stream).await.unwrap();
            let consumer = async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(self.consumer()),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                filter_subject: self.names.subject("orders", herald_broker::Part::Keyless),
                ..Default::default()
            };
            js.create_consumer_on_stream(consumer, self.stream()).await.unwrap();
            for i in 0..events {
                let subject = self.names.subject("orders", herald_broker::Part::Keyless);
                js.publish(subject, format!("event {i}").into()).await.unwrap().await.unwrap();
            }
        }

        fn stream(&self) -> String {
            self.names.stream("orders")
        }

        fn consumer(&self) -> String {
            self.names.consumer("sub", herald_broker::Part::Keyless)
        }

        /// Asks the server for one event as a fetch would, but with no
        /// fetch open: what comes is late, as when a fetch gave up on its
        /// request. `closing`: a request that has its closing word too.
        async fn ask_late(&self, closing: bool) {
            let request = json!({"batch": if closing { 2 } else { 1 }, "no_wait": true});
            let next = format!("$JS.API.CONSUMER.MSG.NEXT.{}.{}", self.stream(), self.consumer());
            let inbox = format!("{}.late", self.mailbox.prefix);
            self.client.publish_with_reply(next, inbox, request.to_string().into()).await.unwrap();
            self.client.flush().await.unwrap();
        }

        async fn kept_until(&self, n: usize) {
            let (stream, consumer) = (self.stream(), self.consumer());
            herald_testkit::eventually(&format!("{n} kept"), Duration::from_secs(5), async || {
                let kept = self.mailbox.kept(&stream, &consumer);
                if kept == n { Ok(()) } else { Err(kept) }
            })
            .await;
        }
    }

    impl Drop for Process {
        fn drop(&mut self) {
            self.postman.abort();
            let (url, prefix) = (url(), self.names.prefix().to_string());
            herald_broker::contract::prefix::remove_on_own_thread(self.names.prefix(), move || async move {
                crate::destroy(&url, &prefix).await
            });
        }
    }

    #[tokio::test]
    async fn an_event_with_no_fetch_open_is_kept_for_the_next_fetch_and_wakes_its_pulls() {
        let p = Process::open().await;
        p.topic(1).await;
        let woken = p.wakeups.get("sub");
        let woken = woken.notified();
        // Two asked for, one there: the event, then the closing word, which
        // is dropped (only the event is kept).
        p.ask_late(true).await;
        p.kept_until(1).await;
        tokio::time::timeout(Duration::from_secs(5), woken).await.expect("the subscription's pulls are woken");

        // The batch is full with what was kept: no request goes out, and
        // the event is marked as kept (its lease starts again in `pull`).
        let fetched = p.mailbox.fetch(&p.client, &p.stream(), &p.consumer(), 1, false).await.unwrap();
        assert!(fetched.closed);
        assert_eq!(fetched.received.len(), 1);
        let got = &fetched.received[0];
        assert!(got.kept && !got.behind);
        assert_eq!(&got.message.payload[..], b"event 0");
        assert_eq!(p.mailbox.kept(&p.stream(), &p.consumer()), 0, "taken, not kept twice");
    }

    #[tokio::test]
    async fn an_event_no_fetch_takes_is_given_back_unsent_after_a_while() {
        let p = Process::open().await;
        p.topic(1).await;
        let asked = tokio::time::Instant::now();
        p.ask_late(false).await;
        p.kept_until(1).await;
        p.kept_until(0).await;
        assert!(asked.elapsed() >= KEEP, "kept {KEEP:?} first");

        // Given back, it goes out again at once, not after its 30 s lease.
        let got = herald_testkit::eventually("sent again", Duration::from_secs(5), async || {
            let fetched = p.mailbox.fetch(&p.client, &p.stream(), &p.consumer(), 1, false).await.unwrap();
            fetched.received.into_iter().next()
        })
        .await;
        assert!(!got.kept);
        assert_eq!(&got.message.payload[..], b"event 0");
    }

    #[test]
    fn a_consumer_made_anew_starts_over() {
        assert_eq!(against(Some(had(90, 40)), had(3, 1)), (false, had(3, 1)));
        assert_eq!(against(Some(had(90, 40)), had(91, 40)), (false, had(91, 40)), "not one more: not the same");
    }
}
