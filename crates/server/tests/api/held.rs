//! Work that waits for a person: a step that fails for good with
//! `on_failure = "hold"`, a compensation that could not be done, and what
//! redriving their dead letters does to the operation and its watchers.

use std::time::Duration;

use serde_json::json;

use super::helpers::*;

fn held_workflow() -> String {
    sequential("erase", &["a", "b"], "").replace(
        "name = \"b\"\nlabel = \"Doing b\"\ndone_label = \"b done\"\ncall = { service = \"svc\", path = \"/b\" }\nretry = { attempts = 3, initial = \"20ms\", max = \"100ms\" }",
        "name = \"b\"\nlabel = \"Doing b\"\ndone_label = \"b done\"\ncall = { service = \"svc\", path = \"/b\" }\nretry = { attempts = 2, initial = \"20ms\", max = \"100ms\" }\non_failure = \"hold\"",
    )
}

#[tokio::test]
async fn a_step_that_fails_for_good_holds_its_operation_until_a_person_redrives_it() {
    let svc = StepService::start().await;
    svc.on("/b", Reply::Status(503, "the audit store is down"));
    let app = spawn_app(&[&held_workflow()], &svc).await;
    let id = app.start_id("erase", json!({})).await;

    let held = app.wait_for(&id, Duration::from_secs(10), |op| step(op, "b")["status"] == "held").await;
    assert_eq!(held["status"], "running", "held, not undone");
    assert_eq!(held["needs_attention"], true);
    assert_eq!(step(&held, "a")["status"], "succeeded");
    assert!(svc.calls("/a/undo").is_empty());
    let letters = app.get_json("/v1/dead-letters?kind=step").await["items"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0]["operation_id"].as_str(), letters[0]["step"].as_str()), (Some(id.as_str()), Some("b")));
    assert_eq!(letters[0]["workflow"], "erase");
    assert_eq!(letters[0]["errors"].as_array().unwrap().len(), 2, "both attempts' errors");
    let by_op = app.get_json(&format!("/v1/dead-letters?operation={id}")).await["items"].as_array().unwrap().len();
    assert_eq!(by_op, 1);

    let stream = app
        .http
        .get(app.url(&format!("/v1/operations/{id}/events")))
        .header("last-event-id", held["last_seq"].to_string())
        .send()
        .await
        .unwrap();
    svc.on("/b", Reply::Json(json!({"erased": 3})));
    let redrive = || {
        let url = app.url(&format!("/v1/dead-letters/{}:redrive", letters[0]["id"]));
        app.http.post(url).header("content-type", "application/json").send()
    };
    assert_eq!(redrive().await.unwrap().status(), 204);
    let seen = follow(stream, "succeeded").await;
    let op = app.wait_final(&id).await;

    assert_eq!(seen.first().map(String::as_str), Some("step_redriven"), "watchers see it resume: {seen:?}");
    assert_eq!(op["status"], "succeeded");
    assert_eq!(op["needs_attention"], false);
    assert_eq!(step(&op, "b")["attempts"], 3, "a new round after the two before");
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]), "the dead letter went with the redrive");
    assert_eq!(redrive().await.unwrap().status(), 404, "redriven once");
}

#[tokio::test]
async fn cancelling_a_held_operation_undoes_it_and_takes_its_dead_letter_away() {
    let svc = StepService::start().await;
    svc.on("/b", Reply::Status(503, "down"));
    let app = spawn_app(&[&held_workflow()], &svc).await;
    let id = app.start_id("erase", json!({})).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "b")["status"] == "held").await;

    let cancel = app
        .http
        .post(app.url(&format!("/v1/operations/{id}:cancel")))
        .json(&json!({"reason": "given up"}))
        .send()
        .await
        .unwrap();
    let op = app.wait_final(&id).await;

    assert_eq!(cancel.status(), 202);
    assert_eq!(op["status"], "cancelled");
    assert_eq!(op["needs_attention"], false);
    assert_eq!(svc.calls("/a/undo").len(), 1);
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]));
}

#[tokio::test]
async fn redriving_a_failed_compensation_reopens_the_operation_and_rewrites_its_outcome() {
    let svc = StepService::start().await;
    svc.on("/b", Reply::Status(400, "card declined"));
    svc.on("/a/undo", Reply::Status(500, "inventory is down"));
    let app = spawn_app(&[&sequential("order", &["a", "b"], "")], &svc).await;
    let id = app.start_id("order", json!({})).await;
    let failed = app.wait_final(&id).await;
    assert_eq!((failed["status"].as_str(), failed["needs_attention"].as_bool()), (Some("failed"), Some(true)));
    let letters = app.get_json("/v1/dead-letters?kind=compensation").await["items"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["step"], "a");

    svc.on("/a/undo", Reply::Json(json!({})));
    let refused = app
        .http
        .post(app.url(&format!("/v1/dead-letters/{}:redrive", letters[0]["id"])))
        .json(&json!({"payload": {"x": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422, "a step is tried again as it is");
    let redriven = app
        .http
        .post(app.url(&format!("/v1/dead-letters/{}:redrive", letters[0]["id"])))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(redriven.status(), 204);
    let op = app
        .wait_for(&id, Duration::from_secs(10), |op| op["status"] == "failed" && op["needs_attention"] == false)
        .await;

    assert_eq!(op["outcome"]["undone"], json!(["a done"]));
    assert_eq!(op["outcome"]["not_undone"], json!([]));
    assert!(event_types(&op).contains(&"step_redriven".to_string()));
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]));
}
