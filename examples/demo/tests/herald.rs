//! The demo apps with a real herald in the same process: the inventory's
//! outbox reaching a topic, and `place-order` announcing the order to
//! analytics by subscription rather than by a call, with topics in the
//! store, on NATS and on RabbitMQ.

mod common;

use std::time::Duration;

use common::{client, demo, get, herald, herald_with, reserve};
use herald_sdk::Client;
use herald_testkit::{BrokerPlace, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_reserve_is_published_to_the_inventory_topic_through_the_outbox() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let (url, _herald) = herald(started.dir.path(), demo, &[("watch", json!({ "topic": "inventory" }))]).await;

    // Committed before the relay runs: it waits in the outbox.
    let input = json!({ "customer": "erin", "items": [{ "sku": "mug", "qty": 2 }], "card": "4242" });
    let reserved = reserve(&http, demo, "op_out", input.clone()).await;
    assert_eq!(reserved.status, StatusCode::OK);
    demo.start_relay(&url);
    // A repeat is answered from the inbox and announces nothing more.
    assert_eq!(reserve(&http, demo, "op_out", input).await.body, reserved.body);

    let herald = Client::new(&url);
    let messages = eventually("the event reaches the topic", WITHIN, || async {
        let got = herald.pull("watch", 10, Duration::from_millis(200)).await.expect("a pull");
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(messages.len(), 1, "one event for one reserve");
    let event = &messages[0].event;
    assert_eq!(event.kind, "ItemsReserved");
    assert_eq!(event.id, "op_out/reserve-inventory", "named after the idempotency key");
    assert_eq!(event.source, "/demo/inventory");
    assert_eq!(event.subject.as_deref(), Some("erin"));
    let data = event.data.as_ref().expect("data");
    assert_eq!(data["operation_id"], "op_out");
    assert_eq!(data["items"], json!([{ "sku": "mug", "qty": 2 }]));
    assert_eq!(data["reservation"], reserved.body["reservation"]);
    herald.ack("watch", &[messages[0].ack_id.clone()]).await.expect("an ack");
    let more = herald.pull("watch", 10, Duration::from_millis(300)).await.expect("a pull");
    assert!(more.is_empty(), "nothing else was published: {more:?}");
}

/// The whole choreography: herald runs `place-order`, publishes
/// `OrderPlaced` to `orders`, the relay publishes `ItemsReserved` to
/// `inventory`, and herald pushes both to analytics, which counts them.
#[tokio::test]
async fn a_placed_order_reaches_analytics_by_subscription() {
    a_placed_order_reaches_analytics(|_| {}).await;
}

/// The same with herald's topics on NATS JetStream, under a prefix of the
/// test's own (removed afterwards, passed or failed). Needs NATS with
/// JetStream at 127.0.0.1:4222 (or `NATS_ADDRESS`).
#[tokio::test]
async fn a_placed_order_reaches_analytics_by_subscription_on_nats() {
    let place = BrokerPlace::nats();
    a_placed_order_reaches_analytics(|c| place.configure(c)).await;
}

/// The same on RabbitMQ. Needs RabbitMQ at 127.0.0.1:5672 with guest/guest
/// (or `RABBITMQ_ADDRESS`), and PostgreSQL for herald's store: it keeps
/// the prefix's subscription definitions, which removing the prefix reads
/// while herald still runs.
#[tokio::test]
async fn a_placed_order_reaches_analytics_by_subscription_on_rabbitmq() {
    let place = BrokerPlace::rabbit().await;
    a_placed_order_reaches_analytics(|c| place.configure(c)).await;
}

async fn a_placed_order_reaches_analytics(tweak: impl FnOnce(&mut herald_server::Config)) {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let (url, _herald) = herald_with(started.dir.path(), demo, |config| {
        for (name, definition) in herald_demo::subscriptions() {
            config.subscriptions.insert(name.to_string(), serde_json::from_value(definition).expect("a subscription"));
        }
        tweak(config);
    })
    .await;
    demo.start_relay(&url);

    let order = json!({ "customer": "frank", "items": [{ "sku": "tea", "qty": 2 }], "card": "4242424242424242" });
    let resp = http
        .post(format!("{url}/v1/workflows/place-order/operations"))
        .header("prefer", "wait=20")
        .json(&order)
        .send()
        .await
        .expect("herald answers");
    let op: Value = resp.json().await.expect("the operation");
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let announced = op["steps"].as_array().and_then(|s| s.iter().find(|s| s["name"] == "announce-order"));
    assert_eq!(announced.map(|s| s["status"].clone()), Some(json!("succeeded")), "{op:#}");

    let analytics = format!("{}/analytics", demo.shop_url);
    let counts = eventually("analytics counts the order and the reserve", WITHIN, || async {
        let counts = get(&http, analytics.clone()).await;
        (counts["orders"] == 1 && counts["reservations"] == 1).then_some(counts)
    })
    .await;
    assert_eq!(counts["releases"], 0);
}
