//! herald on a PostgreSQL store (`store = "postgres://…"`): an operation
//! runs, and topics work, as on the embedded one. Needs a server; see
//! `herald_store::contract::postgres`.

use herald_store::contract::postgres::TestSchema;
use serde_json::json;

use crate::{broker_helpers::event, helpers::*};

#[tokio::test]
async fn an_operation_runs_every_step_once_on_a_postgres_store() {
    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    let url = schema.url();
    let workflow = sequential("order", &["reserve", "charge"], "");
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&workflow], &svc, |c| c.store = Some(url)).await;

    let id = app.start_id("order", json!({})).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "succeeded");
    assert_eq!((svc.calls("/reserve").len(), svc.calls("/charge").len()), (1, 1));
    assert!(event_types(&op).len() >= 4, "{op}");
}

#[tokio::test]
async fn a_published_event_reaches_a_waiting_pull_subscription_on_a_postgres_store() {
    let schema = TestSchema::new().await;
    let url = schema.url();
    let app =
        spawn_app_with(tempfile::tempdir().unwrap(), &[], &StepService::start().await, |c| c.store = Some(url)).await;
    assert_eq!(app.put_subscription("audit", json!({"topic": "orders"})).await.status(), 201);

    // A long poll, waiting before anything is published: the publish wakes it.
    let waiting = {
        let (http, url) = (app.http.clone(), app.url("/v1/subscriptions/audit:pull"));
        tokio::spawn(async move { http.post(url).json(&json!({"wait": "5s"})).send().await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let first = app.publish("orders", &event("e1", "OrderPlaced", json!({"partitionkey": "alice"}))).await;
    let again = app.publish("orders", &event("e1", "OrderPlaced", json!({}))).await;

    assert_eq!(first.status(), 200);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["events"][0]["duplicate"], true, "a repeat is stored once");
    let pulled: serde_json::Value = waiting.await.unwrap().json().await.unwrap();
    let messages = pulled["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{pulled}");
    assert_eq!((messages[0]["event"]["id"].as_str(), messages[0]["attempt"].as_u64()), (Some("e1"), Some(1)));
    let acked: serde_json::Value =
        app.consume("audit", "ack", json!({"ack_ids": [messages[0]["ack_id"]]})).await.json().await.unwrap();
    assert_eq!(acked["acked"], 1);
    let stats = app.stats("audit").await;
    assert_eq!((stats["pending"].as_u64(), stats["in_flight"].as_u64()), (Some(0), Some(0)));
}
