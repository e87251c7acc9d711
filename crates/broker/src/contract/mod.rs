//! The tests every [`Broker`] backend must pass, as functions of a broker
//! and a macro that makes them a backend's test module:
//!
//! ```ignore
//! herald_broker::contract_tests!(async { MyHarness::new().await });
//! ```
//!
//! where the harness implements [`Harness`] (a fresh, empty broker, and
//! whatever must live as long as it, such as a temporary directory).
//!
//! The brokers on servers of their own also run [`two`] (two herald
//! processes on one prefix) and [`process`] (a consumer process killed,
//! the server restarted under load), each test on a [`prefix`] of its own.

pub mod prefix;
pub mod process;
pub mod two;

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::json;

use crate::{Broker, CloudEvent, DeadLetters, Error, RawSubscription, Redelivery, Subscription};

pub trait Harness: Send + Sync + 'static {
    fn broker(&self) -> Arc<dyn Broker>;

    /// Where the broker's dead letters land: herald's one list.
    fn dead_letters(&self) -> Arc<dyn DeadLetters>;
}

/// Makes one `#[tokio::test]` per contract test, each on a fresh harness.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@tests $make;
            publish_reaches_every_matching_subscription,
            a_republished_event_is_stored_once,
            events_of_one_key_go_out_in_order_one_at_a_time,
            competing_consumers_never_hold_the_same_event_at_once,
            an_unacknowledged_event_goes_out_again_when_its_lease_ends,
            a_nacked_event_comes_back_after_its_delay,
            an_answered_ack_id_takes_no_second_answer,
            an_event_given_back_unsent_keeps_its_attempt,
            a_redelivered_event_goes_out_again_as_a_first_attempt,
            deleting_a_subscription_drops_what_waits_for_it,
            stats_show_what_waits_and_what_is_out,
            publishing_wakes_a_waiting_consumer,
        );
        $crate::contract_tests!(@harness $make;
            after_its_last_attempt_an_event_is_a_dead_letter,
            an_event_whose_last_lease_ends_unanswered_is_a_dead_letter,
            an_event_that_can_never_be_processed_is_a_dead_letter_at_once,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let harness = $make.await;
                $crate::contract::$name($crate::contract::Harness::broker(&harness)).await;
            }
        )*
    };
    // Tests that also look at where the dead letters went.
    (@harness $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let harness = $make.await;
                $crate::contract::$name(&harness).await;
            }
        )*
    };
}

pub fn event(id: &str, kind: &str, key: Option<&str>) -> CloudEvent {
    let mut v = json!({"specversion": "1.0", "id": id, "source": "/contract", "type": kind, "data": {"id": id}});
    if let Some(k) = key {
        v["partitionkey"] = json!(k);
    }
    CloudEvent::from_json(v).expect("a valid event")
}

pub fn subscription(name: &str, raw: serde_json::Value) -> Subscription {
    let raw: RawSubscription = serde_json::from_value(raw).expect("a subscription body");
    Subscription::parse(name, raw).expect("a valid subscription")
}

async fn put(b: &dyn Broker, name: &str, raw: serde_json::Value) {
    b.put_subscription(&subscription(name, raw)).await.expect("put subscription");
}

async fn pull_ids(b: &dyn Broker, sub: &str) -> Vec<String> {
    let msgs = b.pull(sub, 100, Duration::from_secs(30)).await.expect("pull");
    msgs.iter().map(|m| m.event.id.clone()).collect()
}

/// Pulls until something comes, or `within` passes.
async fn pull_within(b: &dyn Broker, sub: &str, lease: Duration, within: Duration) -> Vec<crate::Message> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msgs = b.pull(sub, 100, lease).await.expect("pull");
        if !msgs.is_empty() || tokio::time::Instant::now() >= deadline {
            return msgs;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn publish_reaches_every_matching_subscription(b: Arc<dyn Broker>) {
    put(&*b, "all", json!({"topic": "orders"})).await;
    put(&*b, "placed", json!({"topic": "orders", "filter": {"types": ["OrderPlaced"]}})).await;
    put(&*b, "payments", json!({"topic": "payments"})).await;

    let published =
        b.publish("orders", vec![event("e1", "OrderPlaced", None), event("e2", "OrderShipped", None)]).await;

    let published = published.unwrap();
    assert_eq!(published.len(), 2);
    assert!(published.iter().all(|p| !p.duplicate));
    assert!(published[0].seq < published[1].seq, "publish order is kept");
    assert_eq!(pull_ids(&*b, "all").await, ["e1", "e2"]);
    assert_eq!(pull_ids(&*b, "placed").await, ["e1"], "the filter lets only OrderPlaced through");
    assert!(pull_ids(&*b, "payments").await.is_empty(), "another topic's subscription gets nothing");
}

pub async fn a_republished_event_is_stored_once(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t"})).await;
    let first = b.publish("t", vec![event("e1", "T", None)]).await.unwrap();
    let mut again = event("e1", "T", None);
    again.data = Some(json!({"changed": true}));
    let second = b.publish("t", vec![again]).await.unwrap();
    let mut other_source = event("e1", "T", None);
    other_source.source = "/elsewhere".into();
    let third = b.publish("t", vec![other_source]).await.unwrap();

    assert!(second[0].duplicate, "same source and id within the window");
    assert_eq!(second[0].seq, first[0].seq, "the first copy's place");
    assert!(!third[0].duplicate, "ids are unique per source");
    let msgs = b.pull("s", 100, Duration::from_secs(30)).await.unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].event.data, Some(json!({"id": "e1"})), "the first copy is the one kept");
}

pub async fn events_of_one_key_go_out_in_order_one_at_a_time(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t"})).await;
    // Four publishers at once, each alternating between two keys.
    let publishers = (0..4).map(|p| {
        let b = b.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                let key = if i % 2 == 0 { "a" } else { "b" };
                let r = b.publish("t", vec![event(&format!("p{p}-{i}"), "T", Some(key))]).await.unwrap();
                seqs.push((key, r[0].seq));
            }
            seqs
        })
    });
    let mut published: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for p in futures_join(publishers).await {
        for (key, seq) in p {
            published.entry(key).or_default().push(seq);
        }
    }
    for seqs in published.values_mut() {
        seqs.sort_unstable();
    }

    let mut delivered: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut rounds = 0;
    while delivered.values().map(Vec::len).sum::<usize>() < 100 {
        rounds += 1;
        assert!(rounds <= 200, "events stopped coming");
        let msgs = b.pull("s", 100, Duration::from_secs(30)).await.unwrap();
        let keys: Vec<&str> = msgs.iter().map(|m| m.event.ordering_key().unwrap()).collect();
        let distinct: HashSet<&str> = keys.iter().copied().collect();
        assert_eq!(distinct.len(), keys.len(), "one event in flight per key: {keys:?}");
        if rounds == 1 {
            assert_eq!(keys.len(), 2, "the other key proceeds beside the first");
        }
        for m in &msgs {
            delivered.entry(m.event.ordering_key().unwrap().to_string()).or_default().push(m.seq);
        }
        let ids: Vec<String> = msgs.iter().map(|m| m.ack_id.clone()).collect();
        assert!(b.ack("s", &ids).await.unwrap().is_empty());
    }
    for (key, seqs) in &published {
        assert_eq!(&delivered[*key], seqs, "key {key} delivered in publish order");
    }
}

pub async fn competing_consumers_never_hold_the_same_event_at_once(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t"})).await;
    let events: Vec<CloudEvent> = (0..200).map(|i| event(&format!("e{i}"), "T", None)).collect();
    b.publish("t", events).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumers = (0..4).map(|_| {
        let (b, seen) = (b.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let msgs = b.pull("s", 7, Duration::from_secs(30)).await.unwrap();
                if msgs.is_empty() {
                    return;
                }
                seen.lock().unwrap().extend(msgs.iter().map(|m| m.event.id.clone()));
                tokio::task::yield_now().await;
                let ids: Vec<String> = msgs.iter().map(|m| m.ack_id.clone()).collect();
                b.ack("s", &ids).await.unwrap();
            }
        })
    });
    futures_join(consumers).await;
    let seen = seen.lock().unwrap();
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no event went to two consumers");
    assert_eq!(seen.len(), 200, "every event was handled");
}

pub async fn an_unacknowledged_event_goes_out_again_when_its_lease_ends(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t"})).await;
    b.publish("t", vec![event("e1", "T", None)]).await.unwrap();
    let lease = Duration::from_millis(300);

    let first = b.pull("s", 10, lease).await.unwrap();
    let held = b.pull("s", 10, lease).await.unwrap();
    let due = b.next_due("s").await.unwrap();
    let again = pull_within(&*b, "s", Duration::from_secs(30), Duration::from_secs(5)).await;

    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    assert!(held.is_empty(), "leased: nobody else gets it");
    assert!(due.is_some(), "the lease's end is when it is due again");
    assert_eq!(again.len(), 1, "it came back after the lease");
    assert_eq!(again[0].event.id, "e1");
    assert_eq!(again[0].attempt, 2);
    assert_eq!(
        b.ack("s", std::slice::from_ref(&first[0].ack_id)).await.unwrap(),
        [first[0].ack_id.clone()],
        "the old lease is over"
    );
    assert!(b.ack("s", &[again[0].ack_id.clone()]).await.unwrap().is_empty());
    assert!(b.pull("s", 10, lease).await.unwrap().is_empty(), "acknowledged: gone");
}

pub async fn a_nacked_event_comes_back_after_its_delay(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t", "retry": {"attempts": 5}})).await;
    b.publish("t", vec![event("e1", "T", None)]).await.unwrap();
    let m = b.pull("s", 10, Duration::from_secs(30)).await.unwrap();

    let nacked =
        b.nack("s", &[m[0].ack_id.clone()], Redelivery::After(Duration::from_millis(300)), "busy").await.unwrap();
    let at_once = b.pull("s", 10, Duration::from_secs(30)).await.unwrap();
    let later = pull_within(&*b, "s", Duration::from_secs(30), Duration::from_secs(5)).await;

    assert_eq!(nacked.retrying, 1);
    assert!(at_once.is_empty(), "not before its delay");
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].attempt, 2);
}

pub async fn an_answered_ack_id_takes_no_second_answer(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t", "retry": {"attempts": 5}})).await;
    b.publish("t", vec![event("e1", "T", Some("k")), event("e2", "T", None)]).await.unwrap();
    let m = b.pull("s", 10, Duration::from_secs(30)).await.unwrap();
    let id = |event: &str| m.iter().find(|m| m.event.id == event).unwrap().ack_id.clone();
    let (e1, e2) = (id("e1"), id("e2"));

    assert!(b.ack("s", std::slice::from_ref(&e1)).await.unwrap().is_empty());
    let retry = Redelivery::After(Duration::from_millis(300));
    assert_eq!(b.nack("s", std::slice::from_ref(&e2), retry, "busy").await.unwrap().retrying, 1);

    assert_eq!(b.ack("s", std::slice::from_ref(&e1)).await.unwrap(), std::slice::from_ref(&e1), "acknowledged once");
    assert_eq!(
        b.ack("s", std::slice::from_ref(&e2)).await.unwrap(),
        std::slice::from_ref(&e2),
        "given back: no longer held"
    );
    let again = b.nack("s", &[e1.clone(), e2.clone()], retry, "again").await.unwrap();
    assert_eq!((again.retrying, again.dead_lettered, again.unknown), (0, 0, vec![e1, e2]));
    let later = pull_within(&*b, "s", Duration::from_secs(30), Duration::from_secs(5)).await;
    assert_eq!((later.len(), later[0].event.id.as_str(), later[0].attempt), (1, "e2", 2), "the nack stood");
}

pub async fn an_event_given_back_unsent_keeps_its_attempt(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t", "retry": {"attempts": 2}})).await;
    b.publish("t", vec![event("e1", "T", Some("k")), event("e2", "T", Some("k"))]).await.unwrap();
    let first = b.pull("s", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!((first.len(), first[0].attempt), (1, 1));
    // Far more times than its attempts: none of them counts.
    for _ in 0..5 {
        let m = pull_within(&*b, "s", Duration::from_secs(30), Duration::from_secs(5)).await;
        let m = if m.is_empty() { first.clone() } else { m };
        let back = b.nack("s", &[m[0].ack_id.clone()], Redelivery::Unsent(Duration::ZERO), "held back").await.unwrap();
        assert_eq!((back.retrying, back.dead_lettered), (1, 0));
    }
    let m = pull_within(&*b, "s", Duration::from_secs(30), Duration::from_secs(5)).await;

    assert_eq!(
        (m.len(), m[0].event.id.as_str(), m[0].attempt),
        (1, "e1", 1),
        "still its first attempt, still first in its key"
    );
    assert_eq!(b.stats("s").await.unwrap().dead_letters, 0);
}

/// The subscription's dead letters: (event id, attempts, each attempt's error).
async fn letters(h: &dyn Harness, sub: &str) -> Vec<(String, u32, Vec<String>)> {
    let list = h.dead_letters().list(sub).await.unwrap();
    list.into_iter()
        .map(|l| {
            assert_eq!(l.subscription, sub);
            (l.event.id.clone(), l.attempts, l.errors.into_iter().map(|e| e.error).collect())
        })
        .collect()
}

pub async fn after_its_last_attempt_an_event_is_a_dead_letter(h: &dyn Harness) {
    let b = h.broker();
    put(&*b, "s", json!({"topic": "t", "retry": {"attempts": 3}})).await;
    b.publish("t", vec![event("e1", "T", Some("k")), event("e2", "T", Some("k"))]).await.unwrap();
    let mut last = crate::Nacked::default();
    for attempt in 1..=3 {
        let m = pull_within(&*b, "s", Duration::from_secs(30), Duration::from_secs(5)).await;
        assert_eq!((m.len(), m[0].event.id.as_str(), m[0].attempt), (1, "e1", attempt));
        last = b
            .nack("s", &[m[0].ack_id.clone()], Redelivery::After(Duration::ZERO), &format!("failure {attempt}"))
            .await
            .unwrap();
    }

    assert_eq!(last.dead_lettered, 1);
    assert_eq!(b.stats("s").await.unwrap().dead_letters, 1);
    let errors = ["failure 1", "failure 2", "failure 3"].map(String::from).to_vec();
    assert_eq!(letters(h, "s").await, [("e1".to_string(), 3, errors)], "in the one list, with every attempt's error");
    let next = b.pull("s", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].event.id, "e2", "the key's next event is no longer held up");
}

pub async fn an_event_whose_last_lease_ends_unanswered_is_a_dead_letter(h: &dyn Harness) {
    let b = h.broker();
    put(&*b, "s", json!({"topic": "t", "retry": {"attempts": 1}})).await;
    b.publish("t", vec![event("e1", "T", Some("k")), event("e2", "T", Some("k"))]).await.unwrap();
    let first = b.pull("s", 10, Duration::from_millis(200)).await.unwrap();
    assert_eq!(first.len(), 1);

    // The lease ends with no answer: that was its one attempt.
    let next = pull_within(&*b, "s", Duration::from_secs(30), Duration::from_secs(5)).await;

    assert_eq!(next.len(), 1);
    assert_eq!((next[0].event.id.as_str(), next[0].attempt), ("e2", 1), "buried at the pull; its key moved on");
    assert_eq!(b.stats("s").await.unwrap().dead_letters, 1);
    let dead = letters(h, "s").await;
    assert_eq!((dead.len(), dead[0].0.as_str(), dead[0].1, dead[0].2.len()), (1, "e1", 1, 1), "{dead:?}");
    let late = b.ack("s", std::slice::from_ref(&first[0].ack_id)).await.unwrap();
    assert_eq!(late, [first[0].ack_id.clone()], "its lease is over");
}

pub async fn an_event_that_can_never_be_processed_is_a_dead_letter_at_once(h: &dyn Harness) {
    let b = h.broker();
    put(&*b, "s", json!({"topic": "t", "retry": {"attempts": 5}})).await;
    b.publish("t", vec![event("e1", "T", None)]).await.unwrap();
    let m = b.pull("s", 10, Duration::from_secs(30)).await.unwrap();

    let nacked = b.nack("s", &[m[0].ack_id.clone()], Redelivery::Never, "the consumer refused it").await.unwrap();

    assert_eq!((nacked.retrying, nacked.dead_lettered), (0, 1));
    assert!(b.next_due("s").await.unwrap().is_none(), "nothing waits");
    assert_eq!(b.stats("s").await.unwrap().dead_letters, 1);
    let refused = vec!["the consumer refused it".to_string()];
    assert_eq!(letters(h, "s").await, [("e1".to_string(), 1, refused)]);
}

pub async fn a_redelivered_event_goes_out_again_as_a_first_attempt(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t"})).await;
    put(&*b, "other", json!({"topic": "t"})).await;

    b.redeliver("s", event("e9", "T", None)).await.unwrap();

    let m = b.pull("s", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].event.id.as_str(), m[0].attempt), ("e9", 1));
    assert!(b.pull("other", 10, Duration::from_secs(30)).await.unwrap().is_empty(), "only that subscription");
    assert!(matches!(b.redeliver("nope", event("e9", "T", None)).await, Err(Error::UnknownSubscription(_))));
}

pub async fn deleting_a_subscription_drops_what_waits_for_it(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t"})).await;
    b.publish("t", vec![event("e1", "T", None), event("e2", "T", None)]).await.unwrap();

    assert!(b.delete_subscription("s").await.unwrap());
    assert!(!b.delete_subscription("s").await.unwrap(), "already gone");
    assert!(matches!(b.pull("s", 10, Duration::from_secs(30)).await, Err(Error::UnknownSubscription(_))));
    put(&*b, "s", json!({"topic": "t"})).await;
    assert!(pull_ids(&*b, "s").await.is_empty(), "a new subscription starts with what comes next");
    b.publish("t", vec![event("e3", "T", None)]).await.unwrap();
    assert_eq!(pull_ids(&*b, "s").await, ["e3"]);
}

pub async fn stats_show_what_waits_and_what_is_out(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t"})).await;
    b.publish("t", (0..3).map(|i| event(&format!("e{i}"), "T", None)).collect()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let before = b.stats("s").await.unwrap();
    b.pull("s", 1, Duration::from_secs(30)).await.unwrap();
    let after = b.stats("s").await.unwrap();

    assert_eq!((before.pending, before.in_flight), (3, 0));
    assert!(before.lag_ms >= 10, "the oldest waits since it was published: {before:?}");
    assert_eq!((after.pending, after.in_flight), (2, 1));
    assert!(matches!(b.stats("nope").await, Err(Error::UnknownSubscription(_))));
}

pub async fn publishing_wakes_a_waiting_consumer(b: Arc<dyn Broker>) {
    put(&*b, "s", json!({"topic": "t"})).await;
    let wake = b.wakeup("s");
    let woken = wake.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();

    b.publish("t", vec![event("e1", "T", None)]).await.unwrap();

    tokio::time::timeout(Duration::from_secs(2), woken).await.expect("the consumer was woken");
}

async fn futures_join<T: Send + 'static>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("a task of the test"));
    }
    out
}

/// Not in [`contract_tests!`] yet: only the brokers on servers of their
/// own run it.
pub async fn a_changed_subscription_keeps_what_waits_and_one_moved_to_another_topic_starts_there(b: Arc<dyn Broker>) {
    let put = |raw| subscription("s", raw);
    b.put_subscription(&put(json!({"topic": "t"}))).await.unwrap();
    b.publish("t", vec![event("e1", "T", Some("k"))]).await.unwrap();

    let changed = b.put_subscription(&put(json!({"topic": "t", "lease": "5s", "retry": {"attempts": 2}}))).await;
    let same = b.put_subscription(&put(json!({"topic": "t", "lease": "5s", "retry": {"attempts": 2}}))).await;

    assert_eq!(changed.unwrap(), crate::Put::Updated);
    assert_eq!(same.unwrap(), crate::Put::Unchanged);
    let m = b.pull("s", 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(m.iter().map(|m| m.event.id.as_str()).collect::<Vec<_>>(), ["e1"], "what waited is still there");

    b.put_subscription(&put(json!({"topic": "u"}))).await.unwrap();
    b.publish("t", vec![event("e2", "T", None)]).await.unwrap();
    b.publish("u", vec![event("e3", "T", None)]).await.unwrap();
    let ids: Vec<String> =
        b.pull("s", 10, Duration::from_secs(30)).await.unwrap().into_iter().map(|m| m.event.id).collect();
    assert_eq!(ids, ["e3"], "only the new topic's events");
}
