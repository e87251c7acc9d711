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

/// Two nodes on one database, polling too rarely to matter: what one
/// node's watchers learn of the other's work comes from hints.
async fn two_nodes(schema: &TestSchema, workflow: &str, svc: &StepService) -> (TestApp, TestApp) {
    let files = [workflow];
    let node = || {
        spawn_app_with(tempfile::tempdir().unwrap(), &files, svc, |c| {
            c.store = Some(schema.url());
            c.engine.poll_interval = herald_core::Span::from_millis(60_000);
        })
    };
    (node().await, node().await)
}

#[tokio::test]
async fn a_watcher_on_one_node_sees_every_step_another_node_runs_and_resumes_on_either() {
    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    svc.on("/b", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let (a, b) = two_nodes(&schema, &sequential("order", &["a", "b", "c"], ""), &svc).await;

    let id = b.start_id("order", json!({})).await;
    let on_a = |after: Option<u64>| {
        let mut req = a.http.get(a.url(&format!("/v1/operations/{id}/events")));
        if let Some(n) = after {
            req = req.header("last-event-id", n.to_string());
        }
        req.send()
    };
    let live = tokio::spawn(crate::sse::read_events(on_a(None).await.unwrap(), usize::MAX));
    // Up to `b` being called, seen on A while B runs it.
    let first = crate::sse::read_events(on_a(None).await.unwrap(), 5).await;
    assert_eq!(first.last().unwrap()["type"], "step_started", "{first:?}");

    gate.add_permits(1);
    // The rest, resumed on B itself after what A showed.
    let rest = crate::sse::read_events(
        b.http.get(b.url(&format!("/v1/operations/{id}/events"))).header("last-event-id", "5").send().await.unwrap(),
        usize::MAX,
    )
    .await;
    let seqs: Vec<u64> = rest.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (6..6 + seqs.len() as u64).collect::<Vec<_>>(), "no gap, no duplicate");
    assert_eq!(rest.last().unwrap()["type"], "succeeded");

    // The watcher that stayed on A saw it all, in order, once.
    let all = live.await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(all.last().unwrap()["type"], "succeeded");
    assert_eq!(all.len(), 5 + rest.len());
}

#[tokio::test]
async fn a_pull_waiting_on_one_node_is_woken_by_a_publish_on_another() {
    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    let (a, b) = two_nodes(&schema, &sequential("order", &["a"], ""), &svc).await;
    assert_eq!(b.put_subscription("audit", json!({"topic": "orders"})).await.status(), 201);

    let waiting = {
        let (http, url) = (a.http.clone(), a.url("/v1/subscriptions/audit:pull"));
        tokio::spawn(async move {
            let asked = std::time::Instant::now();
            let resp = http.post(url).json(&json!({"wait": "20s"})).send().await.unwrap();
            (resp.json::<serde_json::Value>().await.unwrap(), asked.elapsed())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(b.publish("orders", &event("e1", "OrderPlaced", json!({}))).await.status(), 200);

    let (pulled, took) = waiting.await.unwrap();
    assert_eq!(pulled["messages"][0]["event"]["id"], "e1", "{pulled}");
    assert!(took < std::time::Duration::from_secs(10), "woken by node b's hint, not its wait running out: {took:?}");
}
