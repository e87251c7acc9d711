use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_step_past_its_expected_time_is_flagged_and_the_user_is_told() {
    let svc = StepService::start().await;
    svc.on("/slow", Reply::Sleep(Duration::from_millis(800), Box::new(Reply::Json(json!({})))));
    let wf = "name = \"w\"\n[[steps]]\nname = \"slow\"\nlabel = \"Deleting your logs\"\ncall = { service = \"svc\", path = \"/slow\" }\nexpected_within = \"100ms\"\n";
    let app = spawn_app(&[wf], &svc).await;
    let id = app.start_id("w", json!({})).await;

    let delayed = app.wait_for(&id, Duration::from_secs(5), |op| op["delayed"] == true).await;
    assert_eq!(delayed["status"], "running");
    assert_eq!(step(&delayed, "slow")["delayed"], true);
    let event = delayed["timeline"].as_array().unwrap().iter().find(|e| e["type"] == "step_delayed").unwrap();
    assert_eq!(event["message"], "Deleting your logs is taking longer than usual");
    assert_eq!(app.wait_final(&id).await["status"], "succeeded", "late is not failed");
}

#[tokio::test]
async fn a_step_past_its_deadline_fails_and_what_was_done_is_undone() {
    let svc = StepService::start().await;
    svc.on("/stuck", Reply::Sleep(Duration::from_secs(3), Box::new(Reply::Json(json!({})))));
    let mut wf = sequential("w", &["first"], "");
    wf.push_str("[[steps]]\nname = \"stuck\"\ncall = { service = \"svc\", path = \"/stuck\" }\ndeadline = \"300ms\"\n");
    let app = spawn_app(&[&wf], &svc).await;
    let id = app.start_id("w", json!({})).await;

    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "failed");
    assert!(step(&op, "stuck")["error"].as_str().unwrap().contains("deadline"));
    assert_eq!(step(&op, "first")["status"], "compensated");
}

#[tokio::test]
async fn an_operation_past_its_deadline_fails_even_while_waiting_on_a_callback() {
    let svc = StepService::start().await;
    svc.on("/wait", Reply::Accept);
    let wf = sequential("w", &["wait"], "deadline = \"400ms\"\nexpected_within = \"100ms\"");
    let app = spawn_app(&[&wf], &svc).await;
    let id = app.start_id("w", json!({})).await;

    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "failed");
    let types = event_types(&op);
    assert!(types.contains(&"delayed".to_string()));
    assert!(op["outcome"]["reason"].as_str().unwrap().contains("deadline"));
    assert_eq!(step(&op, "wait")["status"], "compensated", "work that may have started is undone");
}

#[tokio::test]
async fn timers_survive_a_restart() {
    let svc = StepService::start().await;
    svc.on("/wait", Reply::Accept);
    let mut wf = sequential("w", &["first"], "");
    wf.push_str("[[steps]]\nname = \"wait\"\ncall = { service = \"svc\", path = \"/wait\" }\ndeadline = \"1500ms\"\n");
    let app = spawn_app(&[&wf], &svc).await;
    let id = app.start_id("w", json!({})).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "wait")["awaiting_callback"] == true).await;
    let dir = app.stop().await;

    let app = spawn_app_in(dir, &[&wf], &svc).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "failed", "the deadline set before the restart fired after it");
    assert!(step(&op, "wait")["error"].as_str().unwrap().contains("deadline"));
    assert_eq!(step(&op, "first")["status"], "compensated");
}
