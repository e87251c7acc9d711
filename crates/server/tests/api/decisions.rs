//! `on_conflict = "ask"`: a request that collides with a running one waits
//! for its user's choice (`POST /v1/operations/{id}:resolve`), or for the
//! workflow's default when `decide_within` runs out; a choice made twice,
//! or after the default, is refused with 409.

use std::{sync::Arc, time::Duration};

use herald_testkit::openmetrics::Exposition;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::helpers::*;

fn asking(extra: &str) -> String {
    sequential(
        "order",
        &["reserve", "charge"],
        &format!("subject = \"/user\"\nconcurrency = {{ key = \"subject\", on_conflict = \"ask\"{extra} }}"),
    )
}

/// The first order is charging (held at the gate), the second collided with it.
async fn collided(app: &TestApp) -> (String, String) {
    let first = app.start_id("order", json!({"user": "u1"})).await;
    app.wait_for(&first, Duration::from_secs(10), |op| step(op, "charge")["status"] == "running").await;
    let second = app.start_id("order", json!({"user": "u1"})).await;
    (first, second)
}

async fn resolve(app: &TestApp, id: &str, choice: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/operations/{id}:resolve")))
        .json(&json!({ "choice": choice }))
        .send()
        .await
        .unwrap()
}

async fn refused_as_decided(resp: reqwest::Response) {
    assert_eq!(resp.status(), 409);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["type"], "urn:herald:problem:conflict");
    assert!(problem["detail"].as_str().unwrap().contains("not waiting for a choice"), "{problem}");
}

async fn conflicts(app: &TestApp, outcome: &str) -> f64 {
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    Exposition::parse(&text).value("herald_conflicts_total", &[("workflow", "order"), ("outcome", outcome)])
}

#[tokio::test]
async fn keeping_the_running_one_cancels_the_new_one_before_it_does_anything() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.then("/charge", vec![Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({}))))]);
    let app = spawn_app(&[&asking("")], &svc).await;
    let (first, second) = collided(&app).await;

    let waiting = app.get(&second).await;
    assert_eq!(waiting["status"], "awaiting_decision");
    assert_eq!(waiting["decision"]["with"], first.as_str());
    assert_eq!(waiting["decision"]["default"], "keep", "the default of the default is the least harm");
    let due = chrono::DateTime::parse_from_rfc3339(waiting["decision"]["due_at"].as_str().unwrap()).unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(waiting["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(due - created, chrono::Duration::minutes(15));
    assert_eq!(event_types(&waiting), ["accepted", "decision_needed"]);
    assert_eq!(svc.calls("/reserve").len(), 1, "the new one did nothing yet");

    let resp = resolve(&app, &second, "keep").await;
    assert_eq!(resp.status(), 202);
    let kept = app.wait_final(&second).await;
    assert_eq!(kept["status"], "cancelled");
    assert!(kept["steps"].as_array().unwrap().iter().all(|s| s["status"] == "skipped"), "{kept}");
    assert!(!event_types(&kept).contains(&"compensating".to_string()), "nothing ran, so nothing is undone");
    let told = kept["timeline"].as_array().unwrap().iter().find(|e| e["type"] == "decided").unwrap();
    assert_eq!(told["message"], "As you chose, the earlier request was kept and this one will not run");
    refused_as_decided(resolve(&app, &second, "replace").await).await;

    gate.add_permits(1);
    assert_eq!(app.wait_final(&first).await["status"], "succeeded", "the kept one goes on untouched");
    assert_eq!(svc.calls("/reserve").len(), 1);
    assert_eq!((conflicts(&app, "asked").await, conflicts(&app, "kept").await), (1.0, 1.0));
}

#[tokio::test]
async fn replacing_undoes_the_running_one_then_runs_the_new_one() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.then("/charge", vec![Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({}))))]);
    let app = spawn_app(&[&asking("")], &svc).await;
    let (first, second) = collided(&app).await;

    assert_eq!(resolve(&app, &second, "replace").await.status(), 202);
    gate.add_permits(1);
    let old = app.wait_final(&first).await;
    let new = app.wait_final(&second).await;

    assert_eq!(old["status"], "cancelled");
    assert!(event_types(&old).contains(&"superseded".to_string()), "its user is told why");
    assert_eq!(step(&old, "reserve")["status"], "compensated");
    assert_eq!(new["status"], "succeeded");
    let reserves: Vec<String> = svc.calls("/reserve").into_iter().map(|c| c.key).collect();
    assert_eq!(reserves, [format!("{first}/reserve"), format!("{second}/reserve")]);
    refused_as_decided(resolve(&app, &second, "keep").await).await;
    assert_eq!(conflicts(&app, "replaced").await, 1.0);
}

#[tokio::test]
async fn when_time_runs_out_the_default_is_applied_and_said_and_a_late_choice_is_refused() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.then("/charge", vec![Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({}))))]);
    let app = spawn_app(&[&asking(", decide_within = \"300ms\", default = \"replace\"")], &svc).await;
    let (first, second) = collided(&app).await;
    assert_eq!(app.get(&second).await["decision"]["default"], "replace");

    let old = app.wait_final(&first).await;
    assert_eq!(old["status"], "cancelled", "replaced by default");
    let new = app.wait_final(&second).await;
    assert_eq!(new["status"], "succeeded");
    let told = new["timeline"].as_array().unwrap().iter().find(|e| e["type"] == "decided").unwrap();
    assert_eq!(told["by_default"], true);
    assert_eq!(
        told["message"],
        "No choice was made in time, so this request replaces the earlier one, which is being undone first (the default)"
    );
    refused_as_decided(resolve(&app, &second, "keep").await).await;
    assert_eq!(conflicts(&app, "replaced_by_default").await, 1.0);
    drop(gate);
}

#[tokio::test]
async fn a_choice_is_keep_or_replace_and_only_for_an_operation_awaiting_one() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.then("/charge", vec![Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({}))))]);
    let app = spawn_app(&[&asking("")], &svc).await;
    let (first, second) = collided(&app).await;

    let resp = resolve(&app, &second, "both").await;
    assert_eq!(resp.status(), 422);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert_eq!(resolve(&app, "op_00000000000000000000000000000000", "keep").await.status(), 404);
    // An operation not awaiting a choice has none to make.
    refused_as_decided(resolve(&app, &first, "keep").await).await;
    assert_eq!(app.get(&second).await["status"], "awaiting_decision", "nothing changed");
    gate.add_permits(1);
}

#[tokio::test]
async fn an_end_user_is_not_shown_the_id_of_someone_elses_operation_they_collided_with() {
    const SECRET: &str = "a-test-secret-of-at-least-32-characters";
    const SHOP: &str = "shop-token-0123456789";
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.then("/charge", vec![Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({}))))]);
    // One order at a time per account, which two users share.
    let shared = sequential(
        "order",
        &["reserve", "charge"],
        "subject = \"/user\"\nconcurrency = { key = \"/account\", on_conflict = \"ask\" }",
    );
    let mut app = spawn_app_with(tempfile::tempdir().unwrap(), &[&shared], &svc, |c| {
        c.auth.users = Some(herald_testkit::auth::hs256(SECRET));
        c.auth.tokens = vec![herald_server::config::StaticToken {
            name: "shop".into(),
            token: SHOP.into(),
            role: herald_server::config::StaticRole::Service,
            services: None,
        }];
    })
    .await;
    app.token = Some(SHOP.into());
    let first = app.start_id("order", json!({"user": "ann", "account": "acme"})).await;
    app.wait_for(&first, Duration::from_secs(10), |op| step(op, "charge")["status"] == "running").await;
    let second = app.start_id("order", json!({"user": "bob", "account": "acme"})).await;
    assert_eq!(app.get(&second).await["decision"]["with"], first.as_str(), "services see it");

    let bob =
        herald_testkit::auth::hs256_jwt(SECRET, &json!({"sub": "bob", "exp": chrono::Utc::now().timestamp() + 600}));
    let view: Value = app
        .http
        .get(app.url(&format!("/v1/operations/{second}")))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "awaiting_decision");
    assert!(view["decision"].get("with").is_none(), "{view}");
    let events_url = app.url(&format!("/v1/operations/{second}/events"));
    let streamed = crate::sse::read_events(app.http.get(&events_url).bearer_auth(&bob).send().await.unwrap(), 2).await;
    for told in [&view["timeline"][1], &streamed[1]] {
        assert_eq!(told["type"], "decision_needed");
        assert!(!told.to_string().contains(&first), "ann's operation is not named to bob: {told}");
    }
    gate.add_permits(1);
}
