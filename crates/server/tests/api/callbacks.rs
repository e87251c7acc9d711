use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_step_answering_202_completes_through_its_authenticated_callback() {
    let svc = StepService::start().await;
    svc.on("/verify", Reply::Accept);
    let app = spawn_app(&[&sequential("kyc", &["verify", "open"], "")], &svc).await;
    let id = app.start_id("kyc", json!({})).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "verify")["awaiting_callback"] == true).await;
    let envelope = svc.calls("/verify")[0].body.clone();
    let url = envelope["callback"]["url"].as_str().unwrap().to_string();
    let token = envelope["callback"]["token"].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!("/v1/operations/{id}/steps/verify:complete")));

    let forged = app.http.post(&url).bearer_auth("00ff").json(&json!({"result": {}})).send().await.unwrap();
    assert_eq!(forged.status(), 401);
    let missing = app.http.post(&url).json(&json!({"result": {}})).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let other_step = url.replace("/verify:complete", "/open:complete");
    assert_eq!(
        app.http.post(&other_step).bearer_auth(&token).json(&json!({"result": {}})).send().await.unwrap().status(),
        401
    );

    let done =
        app.http.post(&url).bearer_auth(&token).json(&json!({"result": {"verified": true}})).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let op = app.wait_final(&id).await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(step(&op, "verify")["result"]["verified"], true);
    assert_eq!(svc.calls("/open")[0].body["results"]["verify"]["verified"], true);

    let twice = app.http.post(&url).bearer_auth(&token).json(&json!({"result": {}})).send().await.unwrap();
    assert_eq!(twice.status(), 409, "a step completes once");
    let body: Value = twice.json().await.unwrap();
    assert_eq!(body["type"], "urn:herald:problem:conflict");
}

#[tokio::test]
async fn a_callback_reporting_failure_fails_the_step_and_compensates() {
    let svc = StepService::start().await;
    svc.on("/verify", Reply::Accept);
    let app = spawn_app(&[&sequential("kyc", &["prepare", "verify"], "")], &svc).await;
    let id = app.start_id("kyc", json!({})).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "verify")["awaiting_callback"] == true).await;
    let envelope = svc.calls("/verify")[0].body.clone();

    let resp = app
        .http
        .post(envelope["callback"]["url"].as_str().unwrap())
        .bearer_auth(envelope["callback"]["token"].as_str().unwrap())
        .json(&json!({"error": "documents rejected", "retryable": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "failed");
    assert_eq!(step(&op, "verify")["error"], "documents rejected");
    assert_eq!(step(&op, "prepare")["status"], "compensated");
}
