use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::helpers::*;

fn keyed(policy: &str) -> String {
    sequential(
        "account",
        &["prepare", "erase"],
        &format!("subject = \"/user\"\nconcurrency = {{ key = \"subject\", on_conflict = \"{policy}\" }}"),
    )
}

#[tokio::test]
async fn queue_runs_operations_with_the_same_key_one_after_the_other() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.then("/erase", vec![Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({}))))]);
    let app = spawn_app(&[&keyed("queue")], &svc).await;
    let first = app.start_id("account", json!({"user": "u1"})).await;
    app.wait_for(&first, Duration::from_secs(10), |op| step(op, "erase")["status"] == "running").await;

    let second = app.start_id("account", json!({"user": "u1"})).await;
    let other_user = app.start_id("account", json!({"user": "u2"})).await;
    let queued = app.get(&second).await;
    assert_eq!(queued["status"], "accepted");
    assert_eq!(queued["queued_behind"], first.as_str());
    assert!(event_types(&queued).contains(&"queued".to_string()));
    assert_eq!(app.wait_final(&other_user).await["status"], "succeeded", "other keys are not held up");
    assert_eq!(app.get(&second).await["status"], "accepted", "still waiting for the first");

    gate.add_permits(1);
    assert_eq!(app.wait_final(&first).await["status"], "succeeded");
    assert_eq!(app.wait_final(&second).await["status"], "succeeded");
    let erase_keys: Vec<String> = svc.calls("/erase").into_iter().map(|c| c.key).collect();
    assert_eq!(erase_keys[0], format!("{first}/erase"));
    assert_eq!(erase_keys.last().unwrap(), &format!("{second}/erase"), "the queued one ran after");
}

#[tokio::test]
async fn reject_refuses_a_second_operation_with_the_running_ones_id() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.then("/erase", vec![Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({}))))]);
    let app = spawn_app(&[&keyed("reject")], &svc).await;
    let first = app.start_id("account", json!({"user": "u1"})).await;

    let resp = app.start("account", json!({"user": "u1"})).await;
    assert_eq!(resp.status(), 409);
    assert_eq!(resp.headers()["location"], format!("/v1/operations/{first}"));
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["type"], "urn:herald:problem:concurrency-conflict");
    assert_eq!(problem["operation_id"], first.as_str());

    gate.add_permits(1);
    app.wait_final(&first).await;
    assert_eq!(app.start("account", json!({"user": "u1"})).await.status(), 202, "free again once it ended");
}

#[tokio::test]
async fn supersede_cancels_and_undoes_the_older_then_runs_the_newer() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.then("/erase", vec![Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({}))))]);
    let app = spawn_app(&[&keyed("supersede")], &svc).await;
    let older = app.start_id("account", json!({"user": "u1"})).await;
    app.wait_for(&older, Duration::from_secs(10), |op| step(op, "erase")["status"] == "running").await;

    let newer = app.start_id("account", json!({"user": "u1"})).await;
    gate.add_permits(1);
    let old_op = app.wait_final(&older).await;
    let new_op = app.wait_final(&newer).await;

    assert_eq!(old_op["status"], "cancelled");
    assert!(event_types(&old_op).contains(&"superseded".to_string()), "its user is told why");
    assert_eq!(step(&old_op, "prepare")["status"], "compensated");
    assert_eq!(new_op["status"], "succeeded");
    assert!(event_types(&new_op).contains(&"queued".to_string()));
}
