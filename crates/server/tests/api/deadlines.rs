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
    // Told up front, in figures and words, and what the deadline would do.
    assert_eq!(op["expectation"]["within_ms"], 100);
    assert_eq!(op["expectation"]["basis"], "configured");
    assert_eq!(op["expectation"]["text"], "Usually takes a few seconds");
    assert!(
        op["expectation"]["if_late"].as_str().unwrap().contains("it is stopped, and whatever can be undone is undone")
    );
    let types = event_types(&op);
    assert!(types.contains(&"delayed".to_string()));
    // Past the deadline the user is told what happens next, before the undoing.
    let passed = types.iter().position(|t| t == "deadline_passed").expect("the deadline is told");
    assert!(passed < types.iter().position(|t| t == "compensating").unwrap(), "{types:?}");
    let told = &op["timeline"][passed]["message"];
    assert!(told.as_str().unwrap().contains("you will be told here when that is finished"), "{told}");
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

#[tokio::test]
async fn auto_expects_what_recent_operations_took_once_there_are_enough() {
    let svc = StepService::start().await;
    svc.on("/a", Reply::Sleep(Duration::from_millis(150), Box::new(Reply::Json(json!({})))));
    let wf = sequential("w", &["a"], "expected_within = \"auto\"");
    let app = spawn_app(&[&wf], &svc).await;

    // Nothing seen yet: nothing is promised, and nothing can be late.
    let first = app.start_id("w", json!({})).await;
    let op = app.wait_final(&first).await;
    assert!(op.get("expectation").is_none() && op["expected_by"].is_null(), "{op}");
    for _ in 1..herald_core::expect::MIN_SAMPLES {
        let id = app.start_id("w", json!({})).await;
        assert_eq!(app.wait_final(&id).await["status"], "succeeded");
    }

    // Once enough have succeeded, a new one is given their p90 (read
    // again at most twice a second: the first starts may still see none).
    let op = eventually("an operation given the observed window", Duration::from_secs(10), async || {
        let id = app.start_id("w", json!({})).await;
        let op = app.get(&id).await;
        if op.get("expectation").is_some() { Ok(op) } else { Err(op) }
    })
    .await;
    assert_eq!(op["expectation"]["basis"], "observed");
    assert_eq!(op["expectation"]["within_ms"], 1000, "150 ms flows, rounded up to the second");
    assert_eq!(op["expectation"]["text"], "Usually takes a few seconds");
    let at = |f: &str| chrono::DateTime::parse_from_rfc3339(op[f].as_str().unwrap()).unwrap();
    assert_eq!(at("expected_by") - at("created_at"), chrono::Duration::seconds(1));
}
