//! Workflows meeting topics: a `publish` step hands an event to whoever
//! subscribes, and an `await` step waits for the event that answers it.

use std::time::Duration;

use serde_json::{Value, json};

use herald_server::Config;

use super::{broker_helpers::calls, helpers::*};

pub(crate) const ORDER: &str = r#"
name = "order"
label = "Your order"
subject = "/customer"
[[steps]]
name = "reserve"
call = { service = "svc", path = "/reserve" }
compensate = { service = "svc", path = "/release" }
[[steps]]
name = "announce"
label = "Telling the warehouse"
publish = { topic = "orders", type = "OrderPlaced", fields = ["customer"] }
[[steps]]
name = "packed"
label = "Waiting for the warehouse"
await = { topic = "warehouse", type = "OrderPacked", timeout = "10s" }
[[steps]]
name = "shipped"
await = { topic = "warehouse", type = "OrderShipped", match = "/order", timeout = "10s" }
"#;

async fn app(svc: &StepService, workflow: &str) -> TestApp {
    app_with(svc, workflow, |_| {}).await
}

/// herald with `workflow` and a push subscription of the warehouse to `orders`.
pub(crate) async fn app_with(svc: &StepService, workflow: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[workflow], svc, tweak).await;
    let sub =
        json!({"topic": "orders", "push": {"service": "svc", "path": "/warehouse"}, "retry": {"initial": "20ms"}});
    assert_eq!(app.put_subscription("warehouse", sub).await.status(), 201);
    app
}

#[tokio::test]
async fn a_published_event_reaches_its_subscriber_and_the_answering_events_complete_the_operation() {
    let svc = StepService::start().await;
    let app = app(&svc, ORDER).await;
    the_order_is_told_and_answered(&app, &svc).await;
}

/// `ORDER` runs: its announcement is pushed to the warehouse, and the
/// warehouse's answering events complete the steps that await them.
pub(crate) async fn the_order_is_told_and_answered(app: &TestApp, svc: &StepService) {
    let id = app.start_id("order", json!({"customer": "alice", "card": "4242424242424242"})).await;

    let placed = calls(svc, "/warehouse", 1).await[0].body.clone();
    assert_eq!(placed["data"]["input"], json!({"customer": "alice"}), "only the fields the step lets out");
    assert_eq!(placed["type"], "OrderPlaced");
    assert_eq!(placed["operationid"], id.as_str(), "the event names its operation");
    assert_eq!(placed["source"], "/herald/workflows/order");
    assert_eq!(placed["subject"], "alice");
    assert_eq!(placed["data"]["results"]["reserve"]["done"], "/reserve", "the step envelope is the data");
    let waiting = app.wait_for(&id, Duration::from_secs(5), |op| step(op, "packed")["status"] == "running").await;
    assert_eq!(step(&waiting, "announce")["result"]["event_id"], format!("{id}/announce").as_str());

    // The warehouse answers: one event by the operationid extension, one by a field of its data.
    let packed = app
        .publish("warehouse", &cloud_event("p1", "OrderPacked", json!({"operationid": id, "data": {"box": 7}})))
        .await;
    assert_eq!(packed.status(), 200);
    app.publish("warehouse", &cloud_event("s1", "OrderShipped", json!({"data": {"order": id}}))).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "succeeded");
    assert_eq!(step(&op, "packed")["result"]["data"]["box"], 7, "the awaited event is the step's result");
    assert_eq!(svc.calls("/warehouse").len(), 1, "published once");
}

#[tokio::test]
async fn an_event_that_comes_before_its_step_waits_is_kept_for_it() {
    let svc = StepService::start().await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    svc.on("/reserve", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let app = app(&svc, ORDER).await;
    let id = app.start_id("order", json!({"customer": "bob"})).await;

    app.publish("warehouse", &cloud_event("p1", "OrderPacked", json!({"operationid": id}))).await;
    app.publish("warehouse", &cloud_event("s1", "OrderShipped", json!({"data": {"order": id}}))).await;
    let early = app.wait_for(&id, Duration::from_secs(5), |op| step(op, "shipped")["received"].is_object()).await;
    assert_eq!(early["status"], "running");
    gate.add_permits(1);
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "succeeded", "both kept events completed their steps when they began");
}

#[tokio::test]
async fn an_await_that_times_out_undoes_what_was_done() {
    let svc = StepService::start().await;
    let quick =
        ORDER.replace("type = \"OrderPacked\", timeout = \"10s\"", "type = \"OrderPacked\", timeout = \"300ms\"");
    let app = app(&svc, &quick).await;
    let id = app.start_id("order", json!({"customer": "carol"})).await;

    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "failed");
    assert!(step(&op, "packed")["error"].as_str().unwrap().contains("nothing arrived within 300ms"));
    assert_eq!(step(&op, "reserve")["status"], "compensated");
    assert_eq!(svc.calls("/release").len(), 1);
    let events: Vec<Value> = op["timeline"].as_array().unwrap().clone();
    assert!(events.iter().any(|e| e["type"] == "step_failed" && e["step"] == "packed"));
}
