//! The PostgreSQL broker against the broker contract, and what only
//! several nodes on one database can show: pullers on two nodes never
//! share an event; per-key order holds across them (publishes racing,
//! an ack racing a publish of its key); a publish through both is stored
//! once; batches that deadlock get through; a subscription put on one is
//! used by another, and one deleted while another publishes keeps nothing
//! behind.
//!
//! Each test runs in a schema of its own, dropped afterwards
//! ([`TestSchema`]); without a server they fail, saying what to start.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use herald_broker::{
    Broker, DeadLetters,
    contract::{self, Harness},
};
use herald_store::{EventDeadLetters, Node, contract::postgres::TestSchema, postgres::PgStore};
use serde_json::json;

struct Shared {
    store: Arc<PgStore>,
    _schema: TestSchema,
}

impl Harness for Shared {
    fn broker(&self) -> Arc<dyn Broker> {
        self.store.clone()
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetters> {
        Arc::new(EventDeadLetters(self.store.clone()))
    }
}

fn node(id: &str) -> Node {
    Node { id: id.into(), lease: chrono::Duration::seconds(60) }
}

async fn shared() -> Shared {
    let schema = TestSchema::new().await;
    Shared { store: schema.store(node("test")).await, _schema: schema }
}

mod contract_suite {
    use super::*;
    herald_broker::contract_tests!(shared());
}

/// Two nodes on one schema.
async fn two_nodes() -> (TestSchema, Arc<PgStore>, Arc<PgStore>) {
    let schema = TestSchema::new().await;
    let (a, b) = (schema.store(node("a")).await, schema.store(node("b")).await);
    (schema, a, b)
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn pullers_on_two_nodes_never_get_the_same_event() {
    let (_schema, a, b) = two_nodes().await;
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    let events = (0..200).map(|i| contract::event(&format!("e{i}"), "T", None)).collect();
    a.publish("t", events).await.unwrap();

    let pullers = [a.clone(), b.clone(), a, b].into_iter().map(|store| {
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let msgs = store.pull("s", 7, LEASE).await.unwrap();
                if msgs.is_empty() {
                    return seen;
                }
                seen.extend(msgs.iter().map(|m| m.event.id.clone()));
                let ids: Vec<String> = msgs.iter().map(|m| m.ack_id.clone()).collect();
                assert!(store.ack("s", &ids).await.unwrap().is_empty(), "every lease still held");
            }
        })
    });
    let mut seen = Vec::new();
    for p in pullers {
        seen.extend(p.await.unwrap());
    }

    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no event went to two pullers");
    assert_eq!(seen.len(), 200, "every event was handled");
}

#[tokio::test]
async fn per_key_order_holds_when_two_nodes_publish_and_pull_at_once() {
    let (_schema, a, b) = two_nodes().await;
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    // Both nodes publish, alternating between two keys.
    let publishers = [a.clone(), b.clone()].into_iter().enumerate().map(|(n, store)| {
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                let key = if i % 2 == 0 { "x" } else { "y" };
                let p = store.publish("t", vec![contract::event(&format!("n{n}-{i}"), "T", Some(key))]).await.unwrap();
                seqs.push((key, p[0].seq));
            }
            seqs
        })
    });
    let mut published: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for p in publishers {
        for (key, seq) in p.await.unwrap() {
            published.entry(key).or_default().push(seq);
        }
    }
    published.values_mut().for_each(|s| s.sort_unstable());

    // Both nodes pull at once. What each gets goes into one log, in the
    // order received: a key's next can only come once its last is acked.
    type Log = std::sync::Mutex<(HashSet<String>, Vec<(String, u64)>)>;
    let log: Arc<Log> = Arc::default();
    let pullers = [a, b].into_iter().map(|store| {
        let log = log.clone();
        tokio::spawn(async move {
            let mut idle = 0;
            while idle < 20 {
                let msgs = store.pull("s", 5, LEASE).await.unwrap();
                if msgs.is_empty() {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                idle = 0;
                {
                    let (out, received) = &mut *log.lock().unwrap();
                    for m in &msgs {
                        let key = m.event.ordering_key().unwrap().to_string();
                        assert!(out.insert(key.clone()), "key {key} out twice at once");
                        received.push((key, m.seq));
                    }
                }
                tokio::task::yield_now().await;
                {
                    let (out, _) = &mut *log.lock().unwrap();
                    for m in &msgs {
                        out.remove(m.event.ordering_key().unwrap());
                    }
                }
                let ids: Vec<String> = msgs.iter().map(|m| m.ack_id.clone()).collect();
                assert!(store.ack("s", &ids).await.unwrap().is_empty());
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
    for (key, seqs) in &published {
        assert_eq!(&by_key[*key], seqs, "key {key}: every event once, in publish order");
    }
}

#[tokio::test]
async fn events_of_one_key_published_on_two_nodes_at_once_go_out_in_publish_order() {
    let (_schema, a, b) = two_nodes().await;
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    for round in 0..30 {
        let (x, y) = tokio::join!(
            a.publish("t", vec![contract::event(&format!("a{round}"), "T", Some("k"))]),
            b.publish("t", vec![contract::event(&format!("b{round}"), "T", Some("k"))])
        );
        x.unwrap();
        y.unwrap();
    }

    let mut seqs = Vec::new();
    loop {
        let msgs = b.pull("s", 10, LEASE).await.unwrap();
        match &msgs[..] {
            [] => break,
            [m] => seqs.push(m.seq),
            more => panic!("{} events of one key out at once", more.len()),
        }
        assert!(a.ack("s", &[msgs[0].ack_id.clone()]).await.unwrap().is_empty());
    }
    assert_eq!(seqs.len(), 60, "every event");
    assert!(seqs.is_sorted(), "in the order of their places: {seqs:?}");
}

#[tokio::test]
async fn an_ack_on_one_node_racing_a_publish_of_its_key_on_another_never_strands_the_key() {
    let (_schema, a, b) = two_nodes().await;
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    a.publish("t", vec![contract::event("e0", "T", Some("k"))]).await.unwrap();
    let mut held = a.pull("s", 10, LEASE).await.unwrap();
    for round in 1..=40 {
        assert_eq!(held.len(), 1, "round {round}: the key's next event is ready");
        // The key's only row leaves on one node as its next arrives on the other.
        let ack_ids = [held[0].ack_id.clone()];
        let (acked, published) = tokio::join!(
            a.ack("s", &ack_ids),
            b.publish("t", vec![contract::event(&format!("e{round}"), "T", Some("k"))])
        );
        assert!(acked.unwrap().is_empty());
        published.unwrap();
        held = b.pull("s", 10, LEASE).await.unwrap();
    }
}

#[tokio::test]
async fn a_publish_of_one_source_and_id_through_two_nodes_is_stored_once() {
    let (_schema, a, b) = two_nodes().await;
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    for round in 0..10 {
        let id = format!("e{round}");
        let (first, second) = tokio::join!(
            a.publish("t", vec![contract::event(&id, "T", None)]),
            b.publish("t", vec![contract::event(&id, "T", None)])
        );
        let (first, second) = (first.unwrap().remove(0), second.unwrap().remove(0));
        assert_eq!(first.seq, second.seq, "one place for both");
        assert!(first.duplicate != second.duplicate, "one stored it, the other found it: {first:?} {second:?}");
    }
    let pulled = b.pull("s", 100, LEASE).await.unwrap();
    assert_eq!(pulled.len(), 10, "each stored once");
}

#[tokio::test]
async fn batches_taking_keys_in_opposite_orders_on_two_nodes_both_get_through() {
    let (_schema, a, b) = two_nodes().await;
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    for round in 0..5 {
        let batch = |node: &str, first: &str, second: &str| {
            vec![
                contract::event(&format!("{node}-{first}{round}"), "T", Some(first)),
                contract::event(&format!("{node}-{second}{round}"), "T", Some(second)),
            ]
        };
        // Should they deadlock, one is rolled back and runs again.
        let (x, y) = tokio::join!(a.publish("t", batch("a", "x", "y")), b.publish("t", batch("b", "y", "x")));
        assert_eq!((x.unwrap().len(), y.unwrap().len()), (2, 2));
    }
    assert_eq!(a.stats("s").await.unwrap().pending, 20);
}

#[tokio::test]
async fn a_subscription_put_through_one_node_is_used_by_another() {
    let (_schema, a, b) = two_nodes().await;
    assert!(b.subscriptions().await.unwrap().is_empty());
    a.put_subscription(&contract::subscription("s", json!({"topic": "t", "filter": {"types": ["Wanted"]}})))
        .await
        .unwrap();

    b.publish("t", vec![contract::event("e1", "Wanted", None), contract::event("e2", "Other", None)]).await.unwrap();

    assert_eq!(b.subscription("s").await.unwrap().map(|s| s.topic), Some("t".into()));
    let ids: Vec<String> = b.pull("s", 10, LEASE).await.unwrap().into_iter().map(|m| m.event.id).collect();
    assert_eq!(ids, ["e1"], "node b used node a's subscription and its filter");

    assert!(a.delete_subscription("s").await.unwrap());
    assert!(b.subscription("s").await.unwrap().is_none(), "the delete is seen too");
    b.publish("t", vec![contract::event("e3", "Wanted", None)]).await.unwrap();
    assert!(b.pull("s", 10, LEASE).await.is_err(), "nothing is owed to a deleted subscription");
}

#[tokio::test]
async fn a_subscription_deleted_on_one_node_while_another_publishes_keeps_nothing_behind() {
    let (_schema, a, b) = two_nodes().await;
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    let publishing = tokio::spawn(async move {
        for i in 0..60 {
            b.publish("t", vec![contract::event(&format!("e{i}"), "T", Some("k"))]).await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;

    assert!(a.delete_subscription("s").await.unwrap());
    publishing.await.unwrap();
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();

    assert!(a.pull("s", 100, LEASE).await.unwrap().is_empty(), "a new subscription starts with what comes next");
    assert_eq!(a.stats("s").await.unwrap().pending, 0);
}

#[tokio::test]
async fn another_nodes_word_wakes_a_waiting_consumer() {
    let (_schema, a, b) = two_nodes().await;
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    let wake = b.wakeup("s");
    let woken = wake.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();

    a.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    b.wake(&["s".to_string()]);

    tokio::time::timeout(Duration::from_secs(2), woken).await.expect("woken by the word from node a");
    assert_eq!(b.pull("s", 10, LEASE).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_republish_after_the_window_is_a_new_event_and_housekeeping_forgets_its_id() {
    let schema = TestSchema::new().await;
    let store = Arc::try_unwrap(schema.store(node("a")).await)
        .ok()
        .expect("one owner")
        .with_dedupe_window(Duration::from_millis(200));
    store.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    let within = store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    store.maintain().await.unwrap();
    let after = store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();

    assert!(within[0].duplicate);
    assert!(!after[0].duplicate, "the window has passed");
    assert_eq!(store.pull("s", 10, LEASE).await.unwrap().len(), 2, "what is owed outlives housekeeping");
}
