//! herald with its topics on a broker server (`broker = "nats://…"` or
//! `"amqp://…"`): pull over HTTP, push to a service, dead letters and their
//! redrive, and workflows' publish and await steps work as they do on the
//! store. Each backend runs the same tests, each test with a prefix of its
//! own on the server, removed afterwards. On RabbitMQ, herald's store is a
//! PostgreSQL schema of the test's own: it holds the prefix's subscription
//! definitions, which removing the prefix reads while herald still runs.
//! Needs NATS with JetStream at
//! 127.0.0.1:4222 (or `NATS_ADDRESS`) and RabbitMQ at 127.0.0.1:5672 with
//! guest/guest (or `RABBITMQ_ADDRESS`); without them these fail.

use std::time::Duration;

use herald_store::contract::postgres::TestSchema;
use serde_json::{Value, json};

use crate::{broker_helpers::event, choreography, helpers::*, push};

#[derive(Clone, Copy)]
enum Backend {
    Nats,
    Rabbit,
}

/// A prefix of the test's own on a broker server, removed when dropped.
struct Place {
    backend: Backend,
    url: String,
    prefix: String,
    /// herald's store on RabbitMQ (see above), dropped after the prefix.
    schema: Option<TestSchema>,
}

impl Place {
    fn nats() -> Self {
        let url = std::env::var("NATS_ADDRESS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        Place { backend: Backend::Nats, url, prefix: format!("hs{:08x}", rand::random::<u32>()), schema: None }
    }

    async fn rabbit() -> Self {
        let url = std::env::var("RABBITMQ_ADDRESS").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let schema = Some(TestSchema::new().await);
        Place { backend: Backend::Rabbit, url, prefix: format!("hs{:08x}", rand::random::<u32>()), schema }
    }

    fn configure(&self, c: &mut herald_server::Config) {
        c.broker.url = Some(self.url.clone());
        c.broker.prefix = self.prefix.clone();
        if let Some(schema) = &self.schema {
            c.store = Some(schema.url());
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let (backend, url, prefix) = (self.backend, self.url.clone(), self.prefix.clone());
        let store = self.schema.as_ref().map(|s| s.url());
        // A Drop cannot wait on the test's runtime: a thread with its own
        // (and its own connections to the store).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            match (backend, store) {
                (Backend::Nats, _) => {
                    rt.block_on(herald_nats::destroy(&url, &prefix)).map(drop).map_err(|e| e.to_string())
                }
                (Backend::Rabbit, Some(store)) => rt.block_on(async {
                    let node = herald_store::Node { id: "cleanup".into(), lease: chrono::Duration::seconds(60) };
                    let store =
                        herald_store::postgres::PgStore::open(&store, node, 2).await.map_err(|e| e.to_string())?;
                    let ledger = herald_store::BrokerLedger(std::sync::Arc::new(store));
                    herald_rabbit::destroy(&url, &prefix, herald_rabbit::DEFAULT_PARTITIONS, &ledger).await
                }),
                (Backend::Rabbit, None) => Err("no store".into()),
            }
        })
        .join();
    }
}

/// The same tests on each backend.
macro_rules! on_each_backend {
    ($($test:ident),* $(,)?) => {
        mod nats {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Place::nats()).await;
                }
            )*
        }
        mod rabbitmq {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Place::rabbit().await).await;
                }
            )*
        }
    };
}

on_each_backend!(
    a_published_event_reaches_a_waiting_pull_subscription,
    each_event_is_pushed_and_retried_until_it_lands,
    an_event_dead_lettered_is_listed_and_redriven_as_on_the_store,
    workflows_publish_to_and_await_events_of_topics,
);

async fn app_on(place: &Place, svc: &StepService) -> TestApp {
    spawn_app_with(tempfile::tempdir().unwrap(), &[], svc, |c| place.configure(c)).await
}

async fn a_published_event_reaches_a_waiting_pull_subscription(place: Place) {
    let app = app_on(&place, &StepService::start().await).await;
    assert_eq!(app.put_subscription("audit", json!({"topic": "orders"})).await.status(), 201);

    // A long poll, waiting before anything is published: the publish wakes it.
    let waiting = {
        let (http, url) = (app.http.clone(), app.url("/v1/subscriptions/audit:pull"));
        tokio::spawn(async move { http.post(url).json(&json!({"wait": "5s"})).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = app.publish("orders", &event("e1", "OrderPlaced", json!({"partitionkey": "alice"}))).await;
    let again = app.publish("orders", &event("e1", "OrderPlaced", json!({}))).await;

    assert_eq!(first.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["events"][0]["duplicate"], true, "a repeat is stored once");
    let pulled: Value = waiting.await.unwrap().json().await.unwrap();
    let messages = pulled["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{pulled}");
    assert_eq!((messages[0]["event"]["id"].as_str(), messages[0]["attempt"].as_u64()), (Some("e1"), Some(1)));
    let acked: Value =
        app.consume("audit", "ack", json!({"ack_ids": [messages[0]["ack_id"]]})).await.json().await.unwrap();
    assert_eq!(acked["acked"], 1);
    let stats = app.stats("audit").await;
    assert_eq!((stats["pending"].as_u64(), stats["in_flight"].as_u64()), (Some(0), Some(0)));
}

async fn each_event_is_pushed_and_retried_until_it_lands(place: Place) {
    let svc = StepService::start().await;
    svc.then("/events", vec![Reply::Status(503, "busy"), Reply::Status(503, "busy")]);
    let app = app_on(&place, &svc).await;
    let push = json!({"topic": "orders", "push": {"service": "svc", "path": "/events", "max_in_flight": 8},
                      "retry": {"attempts": 5, "initial": "20ms", "max": "100ms"}});
    assert_eq!(app.put_subscription("analytics", push).await.status(), 201);

    app.publish("orders", &event("e1", "OrderPlaced", json!({"data": {"total": 12}}))).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while svc.calls("/events").len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "{} of 3 calls", svc.calls("/events").len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = svc.calls("/events");
    assert!(got.iter().all(|c| c.key == "analytics//tests/e1"), "one idempotency key per event and subscription");
    assert_eq!(got[2].body["data"]["total"], 12);
    loop {
        let stats = app.stats("analytics").await;
        if stats["pending"] == 0 && stats["in_flight"] == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the event was not acknowledged: {stats}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(svc.calls("/events").len(), 3, "delivered once it landed");
}

async fn an_event_dead_lettered_is_listed_and_redriven_as_on_the_store(place: Place) {
    let svc = StepService::start().await;
    let app = app_on(&place, &svc).await;

    push::a_refused_event_is_dead_lettered_and_redriven(&app, &svc).await;

    let stats = app.stats("analytics").await;
    assert_eq!(stats["dead_letters"], 0, "redriven, so none left: {stats}");
}

async fn workflows_publish_to_and_await_events_of_topics(place: Place) {
    let svc = StepService::start().await;
    let app = choreography::app_with(&svc, choreography::ORDER, |c| place.configure(c)).await;

    choreography::the_order_is_told_and_answered(&app, &svc).await;
}
