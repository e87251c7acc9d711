//! The demo apps with a real herald in the same process: the inventory's
//! outbox reaching a topic, and `place-order` announcing the order to
//! analytics by subscription rather than by a call, with topics in the
//! store, on NATS and on RabbitMQ.

mod common;

use std::time::Duration;

use common::{client, demo, get, herald, herald_with, reserve};
use herald_sdk::Client;
use herald_store::{contract::postgres::TestSchema, postgres::PgStore};
use herald_testkit::eventually;
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
    let url = std::env::var("NATS_ADDRESS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let place = Place {
        url,
        prefix: prefix(),
        schema: None,
        remove: |url, prefix, _| {
            Box::pin(async move { herald_nats::destroy(&url, &prefix).await.map(drop).map_err(|e| e.to_string()) })
        },
    };
    a_placed_order_reaches_analytics(|c| place.configure(c)).await;
}

/// The same on RabbitMQ. Needs RabbitMQ at 127.0.0.1:5672 with guest/guest
/// (or `RABBITMQ_ADDRESS`), and PostgreSQL for herald's store: it keeps
/// the prefix's subscription definitions, which removing the prefix reads
/// while herald still runs.
#[tokio::test]
async fn a_placed_order_reaches_analytics_by_subscription_on_rabbitmq() {
    let url = std::env::var("RABBITMQ_ADDRESS").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let place = Place {
        url,
        prefix: prefix(),
        schema: Some(TestSchema::new().await),
        remove: |url, prefix, store| {
            Box::pin(async move {
                let store = store.ok_or("no store")?;
                let node = herald_store::Node { id: "cleanup".into(), lease: chrono::Duration::seconds(60) };
                let store = PgStore::open(&store, node, 2).await.map_err(|e| e.to_string())?;
                let ledger = herald_store::BrokerLedger(std::sync::Arc::new(store));
                herald_rabbit::destroy(&url, &prefix, herald_rabbit::DEFAULT_PARTITIONS, &ledger).await
            })
        },
    };
    a_placed_order_reaches_analytics(|c| place.configure(c)).await;
}

fn prefix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("hd{:x}{nanos:x}", std::process::id())
}

type Removal = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// A prefix of the test's own on a broker server, removed when dropped;
/// and herald's store, when removing the prefix needs to read it.
struct Place {
    url: String,
    prefix: String,
    /// Dropped after the prefix is removed.
    schema: Option<TestSchema>,
    /// Removes the prefix: the broker's URL, the prefix, the store's URL.
    remove: fn(String, String, Option<String>) -> Removal,
}

impl Place {
    fn configure(&self, c: &mut herald_server::Config) {
        c.broker.url = Some(self.url.clone());
        c.broker.prefix = self.prefix.clone();
        if let Some(schema) = &self.schema {
            c.store = Some(schema.url());
        }
    }
}

impl Drop for Place {
    /// On a thread of its own: a `Drop` cannot wait on the test's runtime.
    fn drop(&mut self) {
        let store = self.schema.as_ref().map(|s| s.url());
        let removal = (self.remove)(self.url.clone(), self.prefix.clone(), store);
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(removal)
        });
        if let Ok(Err(e)) = done.join() {
            eprintln!("could not remove the test's broker objects under {}: {e}", self.prefix);
        }
    }
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
