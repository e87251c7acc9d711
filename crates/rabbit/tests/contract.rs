//! The RabbitMQ broker against the broker contract (the same tests as the
//! embedded and NATS backends), plus what only several herald processes on
//! one server can show: pullers in two processes never share an event and
//! keep per-key order between them; a subscription, an answer and a
//! publish made through one are seen by the other; a pull takes from the
//! keyless queue no more than it asks for.
//!
//! Each test has a prefix of its own (its exchanges and queues, and its
//! rows in a store of the test's own), removed when the test ends, passed
//! or failed. Without a server they fail, saying what to start.

use std::{collections::HashSet, sync::Arc, time::Duration};

use herald_broker::{
    Broker, DeadLetters,
    contract::{self, Harness, two},
};
use herald_rabbit::RabbitBroker;
use herald_testkit::{eventually, until};
use serde_json::json;

mod common;

use common::Prefix;

struct Rabbit {
    broker: Arc<RabbitBroker>,
    prefix: Prefix,
}

impl Harness for Rabbit {
    fn broker(&self) -> Arc<dyn Broker> {
        self.broker.clone()
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetters> {
        self.prefix.dead_letters.clone()
    }
}

async fn rabbit() -> Rabbit {
    let prefix = Prefix::new("hr");
    Rabbit { broker: Arc::new(prefix.connect().await), prefix }
}

mod contract_suite {
    use super::*;
    herald_broker::contract_tests!(rabbit());
}

/// Two herald processes on one prefix: the harness's, and one more.
async fn two_processes() -> (Rabbit, Arc<RabbitBroker>) {
    let a = rabbit().await;
    let b = Arc::new(a.prefix.connect().await);
    (a, b)
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn pullers_in_two_processes_keep_per_key_order_and_never_share_an_event() {
    let (h, b) = two_processes().await;
    // An empty pull waits a moment for deliveries itself: no pause after it.
    let idle = two::Idle { rounds: 10, pause: Duration::ZERO };
    two::pullers_in_two_processes_keep_per_key_order_and_never_share_an_event(h.broker.clone(), b, idle).await;
}

#[tokio::test]
async fn what_one_process_does_the_other_sees() {
    let (h, b) = two_processes().await;
    let a = h.broker.clone();
    let next = two::the_definition_publish_and_dead_letter_are_seen(&*a, &*b, None, 1).await;
    // Answered through the other: forwarded to the holder.
    assert!(a.ack("s", &[next[0].ack_id.clone()]).await.unwrap().is_empty(), "an ack forwarded");
    assert_eq!(a.ack("s", &[next[0].ack_id.clone()]).await.unwrap(), [next[0].ack_id.clone()], "answered once");
    two::the_delete_is_seen(&*a, &*b).await;
}

/// Two processes, a subscription `s` on `t`, and 300 keyless events.
async fn two_processes_with_300_keyless_events() -> (Rabbit, Arc<RabbitBroker>, Arc<RabbitBroker>) {
    let (h, b) = two_processes().await;
    let a = h.broker.clone();
    a.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    let events = (0..300).map(|i| contract::event(&format!("e{i}"), "T", None)).collect();
    a.publish("t", events).await.unwrap();
    (h, a, b)
}

#[tokio::test]
async fn a_pull_takes_keyless_events_in_one_go_but_no_more_than_it_asks_for() {
    let (_h, a, b) = two_processes_with_300_keyless_events().await;

    let few = a.pull("s", 3, LEASE).await.unwrap();
    let many = a.pull("s", 250, LEASE).await.unwrap();
    let ids: Vec<String> = few.iter().chain(&many).map(|m| m.ack_id.clone()).collect();
    assert!(a.ack("s", &ids).await.unwrap().is_empty(), "every lease held");
    // Room on a's channel now: a consumer left running would take more.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rest = b.pull("s", 100, LEASE).await.unwrap();

    assert_eq!((few.len(), many.len()), (3, 250), "as many as asked, in one pull");
    assert_eq!(rest.len(), 47, "the rest waited in the queue for another process");
    let taken: HashSet<&str> = few.iter().chain(&many).chain(&rest).map(|m| m.event.id.as_str()).collect();
    assert_eq!(taken.len(), 300, "every event once");
    assert!(a.pull("s", 10, LEASE).await.unwrap().is_empty(), "nothing held back in a");
}

#[tokio::test]
async fn an_ack_id_answers_only_its_own_subscription() {
    let h = rabbit().await;
    let b = h.broker.clone();
    for name in ["s", "other"] {
        b.put_subscription(&contract::subscription(name, json!({"topic": "t"}))).await.unwrap();
    }
    b.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    let m = b.pull("s", 1, LEASE).await.unwrap();

    let elsewhere = b.ack("other", &[m[0].ack_id.clone()]).await.unwrap();
    let garbage = b.ack("s", &["not-an-id".to_string(), format!("{}0", m[0].ack_id)]).await.unwrap();

    assert_eq!(elsewhere, [m[0].ack_id.clone()], "another subscription's ack id is unknown");
    assert_eq!(garbage.len(), 2);
    assert!(b.ack("s", &[m[0].ack_id.clone()]).await.unwrap().is_empty(), "still its own");
}

#[tokio::test]
async fn a_changed_subscription_keeps_what_waits_and_one_moved_to_another_topic_starts_there() {
    let h = rabbit().await;
    contract::a_changed_subscription_keeps_what_waits_and_one_moved_to_another_topic_starts_there(h.broker.clone())
        .await;
}

#[tokio::test]
async fn a_republish_after_a_restart_is_still_recognised() {
    let h = rabbit().await;
    let first = h.broker.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    // A new process, on the same store: the store recognises it.
    let later = h.prefix.connect().await;
    let again = later.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    assert!(again[0].duplicate);
    assert_eq!(again[0].seq, first[0].seq);
}

/// Pulls through `b` until one event comes, for at most five seconds.
async fn one_within(b: &dyn Broker, sub: &str) -> Option<herald_broker::Message> {
    until(Duration::from_secs(5), async || b.pull(sub, 1, LEASE).await.unwrap().pop()).await
}

#[tokio::test]
async fn each_process_that_ends_holding_an_event_spends_an_attempt_and_past_the_delivery_limit_it_is_a_dead_letter() {
    let h = rabbit().await;
    let sub = json!({"topic": "t", "retry": {"attempts": 100}});
    h.broker.put_subscription(&contract::subscription("s", sub)).await.unwrap();
    h.broker.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();

    // Process after process takes it and ends without an answer.
    let mut attempts = Vec::new();
    for _ in 0..40 {
        let p = h.prefix.connect().await;
        let m = one_within(&p, "s").await;
        p.close().await;
        match m {
            Some(m) => attempts.push(m.attempt),
            None => break,
        }
    }

    let n = attempts.len() as u32;
    assert_eq!(attempts, (1..=n).collect::<Vec<_>>(), "each return counted as an attempt");
    assert!((20..=22).contains(&n), "RabbitMQ's delivery limit ended it: {n} deliveries");
    // The dead-letter exchange's queue, drained by the harness's process.
    let some = async || Some(h.prefix.dead_letters.list("s").await.unwrap()).filter(|l| !l.is_empty());
    let letters = until(Duration::from_secs(10), some).await.unwrap_or_default();
    assert_eq!(letters.len(), 1, "in herald's dead letters");
    assert_eq!((letters[0].event.id.as_str(), letters[0].topic.as_str()), ("e1", "t"));
    assert_eq!(letters[0].attempts, n, "every delivery an attempt");
    assert_eq!(letters[0].errors.len(), n as usize);
}

/// Messages ready (not sent to any consumer) in the subscription's keyless queue.
async fn ready_keyless(h: &Rabbit, sub: &str) -> u32 {
    let conn = lapin::Connection::connect(&h.prefix.url, Default::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queue = herald_rabbit::names::Names::new(&h.prefix.name, 1).queue(sub, herald_broker::Part::Keyless);
    let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    let count = ch.queue_declare(&queue, passive, Default::default()).await.unwrap().message_count();
    let _ = conn.close(200, "counted").await;
    count
}

/// Waits (five seconds at most) until the keyless queue has `n` ready.
async fn until_ready(h: &Rabbit, sub: &str, n: u32) {
    eventually(&format!("{n} ready in the keyless queue"), Duration::from_secs(5), async || {
        let ready = ready_keyless(h, sub).await;
        if ready == n { Ok(()) } else { Err(ready) }
    })
    .await
}

#[tokio::test]
async fn a_subscription_herald_delivers_has_its_events_sent_ahead_but_no_more_than_it_may_have_in_flight() {
    let h = rabbit().await;
    let b = h.broker.clone();
    let push = json!({"topic": "t", "push": {"service": "svc", "path": "/e", "max_in_flight": 4}});
    b.put_subscription(&contract::subscription("pushed", push)).await.unwrap();
    b.put_subscription(&contract::subscription("pulled", json!({"topic": "t"}))).await.unwrap();
    let events = (0..10).map(|i| contract::event(&format!("e{i}"), "T", None)).collect();
    b.publish("t", events).await.unwrap();

    // A pull over HTTP takes what it asks for, and no more.
    assert_eq!(b.pull("pulled", 1, LEASE).await.unwrap().len(), 1);
    until_ready(&h, "pulled", 9).await;
    // herald's own delivery holds as many as it may have out.
    let first = b.pull("pushed", 1, LEASE).await.unwrap();
    until_ready(&h, "pushed", 6).await;
    let rest = b.pull("pushed", 10, LEASE).await.unwrap();
    assert_eq!(rest.len(), 3, "what was sent ahead, and no more");
    let acks: Vec<String> = first.iter().chain(&rest).map(|m| m.ack_id.clone()).collect();
    assert!(b.ack("pushed", &acks).await.unwrap().is_empty());
    // Room again: the next four come.
    until_ready(&h, "pushed", 2).await;
    let next = b.pull("pushed", 10, LEASE).await.unwrap();
    let ids: Vec<&str> = first.iter().chain(&rest).chain(&next).map(|m| m.event.id.as_str()).collect();
    assert_eq!(ids, ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7"], "in queue order");
}

#[tokio::test]
async fn deleting_subscriptions_that_hold_events_leaves_the_connection_working() {
    let h = rabbit().await;
    let b = h.broker.clone();
    for round in 0..8 {
        let name = format!("gone{round}");
        let push = json!({"topic": "t", "push": {"service": "svc", "path": "/e", "max_in_flight": 8}});
        b.put_subscription(&contract::subscription(&name, push)).await.unwrap();
        let events =
            (0..20).map(|i| contract::event(&format!("r{round}-{i}"), "T", (i % 2 == 0).then_some("k"))).collect();
        b.publish("t", events).await.unwrap();
        // The subscription's consumers hold events (keyed, and sent ahead).
        assert!(!b.pull(&name, 1, LEASE).await.unwrap().is_empty());
        // Its queues go while it is pulled from, as herald's own delivery
        // does without pause, and while another call is under way.
        let puller = {
            let (b, name) = (b.clone(), name.clone());
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                // Failures are expected here, while the queues go.
                while tokio::time::Instant::now() < deadline {
                    if let Err(herald_broker::Error::UnknownSubscription(_)) = b.pull(&name, 8, LEASE).await {
                        return;
                    }
                }
            })
        };
        let other = contract::event(&format!("other-{round}"), "T", None);
        let (deleted, published) = tokio::join!(b.delete_subscription(&name), b.publish("u", vec![other]));
        assert!(deleted.unwrap(), "round {round}");
        published.unwrap_or_else(|e| panic!("round {round}: a publish beside the delete failed: {e}"));
        puller.await.unwrap();
        let after = contract::event(&format!("after-{round}"), "T", None);
        b.publish("u", vec![after]).await.unwrap_or_else(|e| panic!("round {round}: a publish after failed: {e}"));
    }
    // And the connection still serves.
    b.put_subscription(&contract::subscription("after", json!({"topic": "t"}))).await.unwrap();
    b.publish("t", vec![contract::event("last", "T", None)]).await.unwrap();
    assert_eq!(b.pull("after", 1, LEASE).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_changed_max_in_flight_starts_the_channel_afresh_with_its_new_prefetch() {
    let h = rabbit().await;
    let b = h.broker.clone();
    let push = |n: u32| json!({"topic": "t", "push": {"service": "svc", "path": "/e", "max_in_flight": n}});
    b.put_subscription(&contract::subscription("s", push(4))).await.unwrap();
    b.publish("t", (0..10).map(|i| contract::event(&format!("e{i}"), "T", None)).collect()).await.unwrap();
    let old = b.pull("s", 1, LEASE).await.unwrap();
    until_ready(&h, "s", 6).await;

    b.put_subscription(&contract::subscription("s", push(2))).await.unwrap();
    let next = b.pull("s", 10, LEASE).await.unwrap();
    // What the old channel held went back to the queue, counted.
    assert_eq!(next.len(), 2, "the new prefetch");
    assert_eq!((next[0].event.id.as_str(), next[0].attempt), ("e0", 2), "returned first, its return counted");
    until_ready(&h, "s", 8).await;
    assert_eq!(b.ack("s", &[old[0].ack_id.clone()]).await.unwrap(), [old[0].ack_id.clone()], "the old lease is gone");
}

#[tokio::test]
async fn pulls_waiting_their_turn_are_drawn_for_together_and_nothing_is_left_held() {
    let (h, a, b) = two_processes_with_300_keyless_events().await;
    until_ready(&h, "s", 300).await;

    // Pulls of one process at once, asking for different counts: they take
    // turns to draw, and a draw takes for those waiting too.
    let wants = [80, 3, 120, 37];
    let pulls = wants.map(|n| {
        let a = a.clone();
        tokio::spawn(async move { a.pull("s", n, LEASE).await.unwrap() })
    });
    let mut taken = HashSet::new();
    for (pull, want) in pulls.into_iter().zip(wants) {
        let got = pull.await.unwrap();
        assert!(got.len() <= want, "{} handed out to a pull of {want}", got.len());
        taken.extend(got.into_iter().map(|m| m.event.id));
    }
    assert_eq!(taken.len(), 240, "each pull had what it asked for, every event once");
    // A consumer left running on a would take more meanwhile.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rest = b.pull("s", 100, LEASE).await.unwrap();
    assert_eq!(rest.len(), 60, "the rest waited in the queue for another process");
    assert!(a.pull("s", 100, LEASE).await.unwrap().is_empty(), "nothing held back in a");
}
