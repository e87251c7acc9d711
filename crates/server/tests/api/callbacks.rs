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

/// Posts `body` to a step's callback URL with `token`.
async fn complete(app: &TestApp, url: &str, token: &str, body: Value) -> reqwest::Response {
    app.http.post(url).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn assert_stale(resp: reqwest::Response) {
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "urn:herald:problem:stale-callback-token", "{body}");
}

#[tokio::test]
async fn a_callback_token_of_an_attempt_that_is_over_is_refused_and_changes_nothing() {
    let svc = StepService::start().await;
    svc.on("/verify", Reply::Accept);
    let app = spawn_app(&[&sequential("kyc", &["verify"], "")], &svc).await;
    let id = app.start_id("kyc", json!({})).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "verify")["awaiting_callback"] == true).await;
    let first = svc.calls("/verify")[0].body["callback"].clone();
    let (url, token1) = (first["url"].as_str().unwrap(), first["token"].as_str().unwrap());

    let busy = complete(&app, url, token1, json!({"error": "busy", "retryable": true})).await;
    assert_eq!(busy.status(), 200);
    assert_stale(complete(&app, url, token1, json!({"result": {"late": true}})).await).await;
    let running = app
        .wait_for(&id, Duration::from_secs(10), |op| {
            step(op, "verify")["attempts"] == 2 && step(op, "verify")["awaiting_callback"] == true
        })
        .await;
    assert_stale(complete(&app, url, token1, json!({"result": {"late": true}})).await).await;

    let after = app.get(&id).await;
    assert_eq!(after["steps"], running["steps"], "the late callback changed nothing");
    assert_eq!(after["timeline"], running["timeline"]);
    let token2 = svc.calls("/verify")[1].body["callback"]["token"].as_str().unwrap().to_string();
    assert_ne!(token1, token2);
    assert_eq!(complete(&app, url, &token2, json!({"result": {"verified": true}})).await.status(), 200);
    let op = app.wait_final(&id).await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(step(&op, "verify")["result"], json!({"verified": true}));
}

#[tokio::test]
async fn an_expired_callback_token_is_refused_and_a_current_one_still_works() {
    let svc = StepService::start().await;
    svc.on("/verify", Reply::Accept);
    let wf = sequential("kyc", &["verify"], "");
    let app = spawn_app(&[&wf], &svc).await;
    let id = app.start_id("kyc", json!({})).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "verify")["awaiting_callback"] == true).await;
    let callback = svc.calls("/verify")[0].body["callback"].clone();
    let (url, token) = (callback["url"].as_str().unwrap(), callback["token"].as_str().unwrap());
    let dir = app.stop().await;

    // The same server secret signs a token for the same attempt that expired a second ago.
    let expired = {
        let node = herald_store::Node { id: "test".into(), lease: chrono::Duration::seconds(60) };
        let config = herald_store::StoreConfig {
            url: dir.store_url(),
            node,
            dedupe_window: Duration::from_secs(60),
            pool: None,
        };
        let secret = herald_store::open(&config).await.unwrap().store.secret(vec![]).await.unwrap();
        let tokens = herald_engine::tokens::Tokens::new(secret);
        let expired = tokens.issue(&id, "verify", 1, chrono::Utc::now() - chrono::Duration::seconds(1));
        assert!(tokens.verify(&id, "verify", token).is_ok(), "the secret is the server's");
        expired
    };
    let app = spawn_app_in(dir, &[&wf], &svc).await;
    let url = url.replace(&url[..url.find("/v1/").unwrap()], &app.base);

    assert_stale(complete(&app, &url, &expired, json!({"result": {}})).await).await;
    assert_eq!(step(&app.get(&id).await, "verify")["awaiting_callback"], true, "nothing changed");
    assert_eq!(complete(&app, &url, token, json!({"result": {"verified": true}})).await.status(), 200);
    assert_eq!(app.wait_final(&id).await["status"], "succeeded");
}
