//! The NATS JetStream broker against the broker contract (the same tests
//! as the embedded backends), plus what only several herald processes on
//! one server can show: pullers in two processes never share an event and
//! keep per-key order between them; a subscription, a dead letter and a
//! publish made through one are seen by the other.
//!
//! Each test has a prefix of its own (its streams, consumers, buckets and
//! subjects), removed when the test ends, passed or failed. Without a
//! server they fail, saying what to start.

use std::{sync::Arc, time::Duration};

use herald_broker::{
    Broker, DeadLetters, Redelivery,
    contract::{self, Harness, two},
};
use herald_nats::{NatsBroker, NatsConfig};
use herald_testkit::eventually;
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
    let (h, b) = two_processes().await;
    // NATS answers an empty pull at once: a pause after each.
    let idle = two::Idle { rounds: 20, pause: Duration::from_millis(10) };
    two::pullers_in_two_processes_keep_per_key_order_and_never_share_an_event(h.broker.clone(), b, idle).await;
}

#[tokio::test]
async fn what_one_process_does_the_other_sees() {
    let (h, b) = two_processes().await;
    let a = h.broker.clone();
    // Keyed: the dead letter lets the key move on.
    let next = two::the_definition_publish_and_dead_letter_are_seen(&*a, &*b, Some("k"), 10).await;
    assert_eq!(next[0].event.ordering_key(), Some("k"), "the key moved on");
    two::the_delete_is_seen(&*a, &*b).await;
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
    assert_eq!(m[0].attempt, 2, "{}", m[0].ack_id);
    let m = wait_for_one(&*b, "s").await;
    assert_eq!(m.attempt, 3, "{}", m.ack_id);
    b.nack("s", std::slice::from_ref(&m.ack_id), Redelivery::Backoff, "third").await.unwrap();

    let letters = h.dead_letters().list("s").await.unwrap();
    assert_eq!(letters.len(), 1);
    let errors: Vec<(u32, &str)> = letters[0].errors.iter().map(|e| (e.attempt, e.error.as_str())).collect();
    assert_eq!(errors, [(1, "first"), (2, "not acknowledged before its lease ended"), (3, "third")]);
    assert_eq!((letters[0].attempts, letters[0].event.id.as_str()), (3, "e1"));
}

/// Pulls until one event comes, for at most five seconds.
async fn wait_for_one(b: &dyn Broker, sub: &str) -> herald_broker::Message {
    eventually("an event came back", Duration::from_secs(5), async || b.pull(sub, 1, LEASE).await.unwrap().pop()).await
}

#[tokio::test]
async fn a_changed_subscription_keeps_what_waits_and_one_moved_to_another_topic_starts_there() {
    let h = nats().await;
    contract::a_changed_subscription_keeps_what_waits_and_one_moved_to_another_topic_starts_there(h.broker.clone())
        .await;
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

#[tokio::test]
async fn a_topic_whose_stream_was_removed_behind_herald_is_made_again_by_the_next_publish() {
    let h = nats().await;
    h.broker.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(&h.prefix.url).await.unwrap());
    js.delete_stream(format!("{}-t-t", h.prefix.name)).await.unwrap();

    // This process still takes the stream to be there: the server's "no
    // responders" is what tells it otherwise.
    let published = h.broker.publish("t", vec![contract::event("e2", "T", None)]).await.unwrap();

    assert_eq!((published.len(), published[0].seq, published[0].duplicate), (1, 1, false), "the first of a new stream");
    js.get_stream(format!("{}-t-t", h.prefix.name)).await.expect("the stream made again");
}
