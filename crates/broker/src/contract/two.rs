//! What only two herald processes on one prefix of a broker's server can
//! show: pullers in both never share an event and keep per-key order
//! between them; a subscription, a dead letter and a publish made through
//! one are seen by the other. `a` and `b` are two connections of their
//! own to the same, empty prefix.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use serde_json::json;

use super::{event, subscription};
use crate::{Broker, Message, Redelivery};

const LEASE: Duration = Duration::from_secs(30);

/// When a puller stops: after `rounds` empty pulls in a row, each followed
/// by `pause` (zero for a backend whose empty pull waits a moment itself).
#[derive(Clone, Copy)]
pub struct Idle {
    pub rounds: u32,
    pub pause: Duration,
}

pub async fn pullers_in_two_processes_keep_per_key_order_and_never_share_an_event(
    a: Arc<dyn Broker>,
    b: Arc<dyn Broker>,
    idle: Idle,
) {
    a.put_subscription(&subscription("s", json!({"topic": "t"}))).await.unwrap();
    // Both publish, alternating between two keys, with keyless events between.
    let mut published: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for i in 0..30 {
        let (through, key) = if i % 2 == 0 { (&a, Some("x")) } else { (&b, Some("y")) };
        let key = if i % 5 == 0 { None } else { key };
        let p = through.publish("t", vec![event(&format!("e{i}"), "T", key)]).await.unwrap();
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
            let mut empty = 0;
            while empty < idle.rounds {
                assert!(tokio::time::Instant::now() < deadline, "events stopped coming");
                let msgs = broker.pull("s", 3, LEASE).await.unwrap();
                if msgs.is_empty() {
                    empty += 1;
                    if !idle.pause.is_zero() {
                        tokio::time::sleep(idle.pause).await;
                    }
                    continue;
                }
                empty = 0;
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

/// The first half of `what_one_process_does_the_other_sees`: a definition
/// and a publish through `a` reach `b` (waking it), an event `b` pulled
/// (`take` at most) is dead-lettered through `a`, and the next, `e2`, then
/// goes to `b`, which it returns unanswered. The two events are published
/// with `key`. Then the backend's own checks, then [`the_delete_is_seen`].
pub async fn the_definition_publish_and_dead_letter_are_seen(
    a: &dyn Broker,
    b: &dyn Broker,
    key: Option<&str>,
    take: usize,
) -> Vec<Message> {
    let wake = b.wakeup("s");
    a.put_subscription(&subscription("s", json!({"topic": "t", "retry": {"attempts": 2}}))).await.unwrap();
    assert_eq!(b.subscription("s").await.unwrap().map(|s| s.topic), Some("t".into()), "the definition");
    assert_eq!(b.subscriptions().await.unwrap().len(), 1);

    let woken = wake.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    a.publish("t", vec![event("e1", "T", key), event("e2", "T", key)]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), woken).await.expect("woken by the other's publish");

    let m = b.pull("s", take, LEASE).await.unwrap();
    assert_eq!(m.len(), 1);
    let nacked = a.nack("s", &[m[0].ack_id.clone()], Redelivery::Never, "refused").await.unwrap();
    assert_eq!(nacked.dead_lettered, 1);
    assert_eq!(b.stats("s").await.unwrap().dead_letters, 1, "the dead letter");
    let next = b.pull("s", 10, LEASE).await.unwrap();
    assert_eq!(next.iter().map(|m| m.event.id.as_str()).collect::<Vec<_>>(), ["e2"], "the next went out");
    next
}

/// The subscription deleted through `b` is gone for `a` too.
pub async fn the_delete_is_seen(a: &dyn Broker, b: &dyn Broker) {
    assert!(b.delete_subscription("s").await.unwrap());
    assert!(a.subscription("s").await.unwrap().is_none(), "the delete");
}
