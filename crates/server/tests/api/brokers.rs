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

use herald_testkit::BrokerPlace;
use serde_json::{Value, json};

use crate::{broker_helpers::calls, choreography, helpers::*, push};

/// The same tests on each backend.
macro_rules! on_each_backend {
    ($($test:ident),* $(,)?) => {
        mod nats {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(herald_testkit::BrokerPlace::nats()).await;
                }
            )*
        }
        mod rabbitmq {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(herald_testkit::BrokerPlace::rabbit().await).await;
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
    events_carry_their_trace_through_the_broker,
);

async fn app_on(place: &BrokerPlace, svc: &StepService) -> TestApp {
    spawn_app_with(tempfile::tempdir().unwrap(), &[], svc, |c| place.configure(c)).await
}

async fn a_published_event_reaches_a_waiting_pull_subscription(place: BrokerPlace) {
    let app = app_on(&place, &StepService::start().await).await;
    assert_eq!(app.put_subscription("audit", json!({"topic": "orders"})).await.status(), 201);

    // A long poll, waiting before anything is published: the publish wakes it.
    let waiting = {
        let (http, url) = (app.http.clone(), app.url("/v1/subscriptions/audit:pull"));
        tokio::spawn(async move { http.post(url).json(&json!({"wait": "5s"})).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = app.publish("orders", &cloud_event("e1", "OrderPlaced", json!({"partitionkey": "alice"}))).await;
    let again = app.publish("orders", &cloud_event("e1", "OrderPlaced", json!({}))).await;

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

async fn each_event_is_pushed_and_retried_until_it_lands(place: BrokerPlace) {
    let svc = StepService::start().await;
    svc.then("/events", vec![Reply::Status(503, "busy"), Reply::Status(503, "busy")]);
    let app = app_on(&place, &svc).await;
    let push = json!({"topic": "orders", "push": {"service": "svc", "path": "/events", "max_in_flight": 8},
                      "retry": {"attempts": 5, "initial": "20ms", "max": "100ms"}});
    assert_eq!(app.put_subscription("analytics", push).await.status(), 201);

    app.publish("orders", &cloud_event("e1", "OrderPlaced", json!({"data": {"total": 12}}))).await;

    let got = calls(&svc, "/events", 3).await;
    assert!(got.iter().all(|c| c.key == "analytics//tests/e1"), "one idempotency key per event and subscription");
    assert_eq!(got[2].body["data"]["total"], 12);
    app.acknowledged("analytics", Duration::from_secs(10)).await;
    assert_eq!(svc.calls("/events").len(), 3, "delivered once it landed");
}

async fn an_event_dead_lettered_is_listed_and_redriven_as_on_the_store(place: BrokerPlace) {
    let svc = StepService::start().await;
    let app = app_on(&place, &svc).await;

    push::a_refused_event_is_dead_lettered_and_redriven(&app, &svc).await;

    let stats = app.stats("analytics").await;
    assert_eq!(stats["dead_letters"], 0, "redriven, so none left: {stats}");
}

async fn events_carry_their_trace_through_the_broker(place: BrokerPlace) {
    crate::traces::events_carry_the_trace(|c| place.configure(c)).await;
}

async fn workflows_publish_to_and_await_events_of_topics(place: BrokerPlace) {
    let svc = StepService::start().await;
    let app = choreography::app_with(&svc, choreography::ORDER, |c| place.configure(c)).await;

    choreography::the_order_is_told_and_answered(&app, &svc).await;
}
