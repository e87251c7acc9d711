//! The NATS JetStream broker against the broker contract (the same tests
//! as the embedded backends), plus what only several herald processes on
//! one server can show: pullers in two processes never share an event and
//! keep per-key order between them; a subscription, a dead letter and a
//! publish made through one are seen by the other.
//!
//! Each test has a prefix of its own (its streams, consumers, buckets and
//! subjects), removed when the test ends, passed or failed. Without a
//! server they fail, saying what to start.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use herald_broker::{
    Broker, DeadLetters, Redelivery,
    contract::{self, Harness},
};
use herald_nats::{NatsBroker, NatsConfig};
use serde_json::json;

mod common;

use common::Prefix;

struct Nats {
    broker: Arc<NatsBroker>,
    prefix: Prefix,
}

impl Harness for Nats {
    fn broker(&self) -> Arc<dyn Broker> {
        self.broker.clone()
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetters> {
        self.prefix.letters.list.clone()
    }
}

async fn nats() -> Nats {
    let prefix = Prefix::new("ht");
    Nats { broker: Arc::new(prefix.connect().await), prefix }
}

mod contract_suite {
    use super::*;
    herald_broker::contract_tests!(nats());
}

/// Two herald processes on one prefix: the harness's, and one more.
async fn two_processes() -> (Nats, Arc<NatsBroker>) {
    let a = nats().await;
    let b = Arc::new(a.prefix.connect().await);
    (a, b)
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn pullers_in_two_processes_keep_per_key_order_and_never_share_an_event() {
    let (a, b) = two_processes().await;
    let a = a.broker.clone();
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    // Both publish, alternating between two keys, with keyless events between.
    let mut published: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for i in 0..30 {
        let (through, key) = if i % 2 == 0 { (&a, Some("x")) } else { (&b, Some("y")) };
        let key = if i % 5 == 0 { None } else { key };
        let p = through.publish("t", vec![contract::event(&format!("e{i}"), "T", key)]).await.unwrap();
        published.entry(key.unwrap_or("-").to_string()).or_default().push(p[0].seq);
    }

    // What each gets goes into one log, in the order received: a key's next
    // may only come once its last was acknowledged.
    type Log = std::sync::Mutex<(HashSet<String>, Vec<(String, u64)>)>;
    let log: Arc<Log> = Arc::default();
    let pullers = [a.clone(), b.clone()].into_iter().map(|broker| {
        let log = log.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let mut idle = 0;
            while idle < 20 {
                assert!(tokio::time::Instant::now() < deadline, "events stopped coming");
                let msgs = broker.pull("s", 3, LEASE).await.unwrap();
                if msgs.is_empty() {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                idle = 0;
                {
                    let (out, received) = &mut *log.lock().unwrap();
                    for m in &msgs {
                        let key = m.event.ordering_key().unwrap_or("-").to_string();
                        if key != "-" {
                            assert!(out.insert(key.clone()), "key {key} out twice at once");
                        }
                        received.push((key, m.seq));
                    }
                }
                tokio::task::yield_now().await;
                {
                    let (out, _) = &mut *log.lock().unwrap();
                    for m in &msgs {
                        out.remove(m.event.ordering_key().unwrap_or("-"));
                    }
                }
                let ids: Vec<String> = msgs.iter().map(|m| m.ack_id.clone()).collect();
                assert!(broker.ack("s", &ids).await.unwrap().is_empty(), "every lease still held");
            }
        })
    });
    for p in pullers {
        p.await.unwrap();
    }

    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (key, seq) in log.lock().unwrap().1.drain(..) {
        by_key.entry(key).or_default().push(seq);
    }
    by_key.get_mut("-").unwrap().sort_unstable();
    assert_eq!(by_key, published, "every event once; keys x and y in publish order");
}

#[tokio::test]
async fn what_one_process_does_the_other_sees() {
    let (a, b) = two_processes().await;
    let a = a.broker.clone();
    let wake = b.wakeup("s");
    a.put_subscription(&contract::subscription("s", json!({"topic": "t", "retry": {"attempts": 2}}))).await.unwrap();
    assert_eq!(b.subscription("s").await.unwrap().map(|s| s.topic), Some("t".into()), "the definition");
    assert_eq!(b.subscriptions().await.unwrap().len(), 1);

    let woken = wake.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    a.publish("t", vec![contract::event("e1", "T", Some("k")), contract::event("e2", "T", Some("k"))]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), woken).await.expect("woken by the other's publish");

    // Pulled in one, given up on in the other.
    let m = b.pull("s", 10, LEASE).await.unwrap();
    assert_eq!(m.len(), 1);
    let nacked = a.nack("s", &[m[0].ack_id.clone()], Redelivery::Never, "refused").await.unwrap();
    assert_eq!(nacked.dead_lettered, 1);
    assert_eq!(b.stats("s").await.unwrap().dead_letters, 1, "the dead letter");
    let next = b.pull("s", 10, LEASE).await.unwrap();
    assert_eq!(next.iter().map(|m| m.event.id.as_str()).collect::<Vec<_>>(), ["e2"], "the key moved on");

    assert!(b.delete_subscription("s").await.unwrap());
    assert!(a.subscription("s").await.unwrap().is_none(), "the delete");
}

#[tokio::test]
async fn a_dead_letter_keeps_every_attempts_error() {
    let h = nats().await;
    let b = h.broker.clone();
    b.put_subscription(&contract::subscription("s", json!({"topic": "t", "retry": {"attempts": 3}}))).await.unwrap();
    b.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    // The first attempt fails, the second's lease ends unanswered, the third fails.
    let m = b.pull("s", 1, LEASE).await.unwrap();
    b.nack("s", &[m[0].ack_id.clone()], Redelivery::After(Duration::ZERO), "first").await.unwrap();
    let m = b.pull("s", 1, Duration::from_millis(200)).await.unwrap();
    assert_eq!(m[0].attempt, 2);
    let m = wait_for_one(&*b, "s").await;
    assert_eq!(m.attempt, 3);
    b.nack("s", std::slice::from_ref(&m.ack_id), Redelivery::Backoff, "third").await.unwrap();

    let letters = h.dead_letters().list("s").await.unwrap();
    assert_eq!(letters.len(), 1);
    let errors: Vec<(u32, &str)> = letters[0].errors.iter().map(|e| (e.attempt, e.error.as_str())).collect();
    assert_eq!(errors, [(1, "first"), (2, "not acknowledged before its lease ended"), (3, "third")]);
    assert_eq!((letters[0].attempts, letters[0].event.id.as_str()), (3, "e1"));
}

/// Pulls until one event comes, for at most five seconds.
async fn wait_for_one(b: &dyn Broker, sub: &str) -> herald_broker::Message {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(m) = b.pull(sub, 1, LEASE).await.unwrap().pop() {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_changed_subscription_keeps_what_waits_and_one_moved_to_another_topic_starts_there() {
    let h = nats().await;
    let b = h.broker.clone();
    let put = |raw| contract::subscription("s", raw);
    b.put_subscription(&put(json!({"topic": "t"}))).await.unwrap();
    b.publish("t", vec![contract::event("e1", "T", Some("k"))]).await.unwrap();

    let changed = b.put_subscription(&put(json!({"topic": "t", "lease": "5s", "retry": {"attempts": 2}}))).await;
    let same = b.put_subscription(&put(json!({"topic": "t", "lease": "5s", "retry": {"attempts": 2}}))).await;

    assert_eq!(changed.unwrap(), herald_broker::Put::Updated);
    assert_eq!(same.unwrap(), herald_broker::Put::Unchanged);
    let m = b.pull("s", 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(m.iter().map(|m| m.event.id.as_str()).collect::<Vec<_>>(), ["e1"], "what waited is still there");

    b.put_subscription(&put(json!({"topic": "u"}))).await.unwrap();
    b.publish("t", vec![contract::event("e2", "T", None)]).await.unwrap();
    b.publish("u", vec![contract::event("e3", "T", None)]).await.unwrap();
    let ids: Vec<String> = b.pull("s", 10, LEASE).await.unwrap().into_iter().map(|m| m.event.id).collect();
    assert_eq!(ids, ["e3"], "only the new topic's events");
}

#[tokio::test]
async fn a_topic_takes_the_dedupe_window_herald_is_configured_with_now() {
    let h = nats().await;
    h.broker.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    let config = NatsConfig {
        prefix: h.prefix.name.clone(),
        dedupe_window: Duration::from_secs(5),
        ..NatsConfig::new(h.prefix.url.clone())
    };
    let restarted = NatsBroker::connect(config, h.prefix.letters.list.clone()).await.unwrap();

    restarted.publish("t", vec![contract::event("e2", "T", None)]).await.unwrap();

    let js = async_nats::jetstream::new(async_nats::connect(&h.prefix.url).await.unwrap());
    let mut stream = js.get_stream(format!("{}-t-t", h.prefix.name)).await.unwrap();
    let window = stream.info().await.unwrap().config.duplicate_window;
    assert_eq!(window, Duration::from_secs(5), "was the default, {:?}", NatsConfig::new("").dedupe_window);
}
