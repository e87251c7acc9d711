use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use herald_core::signature;
use herald_gateway::registry::circuit::CircuitConfig;
use herald_server::config::WebhookConfig;
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "webhook-secret-0123456789";
/// Longer than any backoff of these tests' notifications: a delivery still
/// to come would have come.
const QUIET: Duration = Duration::from_millis(500);

/// A receiver that records every delivery and answers the scripted statuses
/// (then 200).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Bytes)>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    always: Option<u16>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let sig = headers.get(signature::HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    r.got.lock().unwrap().push((sig, body));
    let code = r.always.or_else(|| r.answers.lock().unwrap().pop_front()).unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

async fn receiver(r: Receiver) -> String {
    receiver_on(r, 0).await
}

async fn receiver_on(r: Receiver, port: u16) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/hook", post(receive)).with_state(r)).await.unwrap()
    });
    url
}

async fn app_with_webhook(url: String) -> TestApp {
    app_with_webhook_circuit(url, None).await
}

async fn app_with_webhook_circuit(url: String, circuit: Option<CircuitConfig>) -> TestApp {
    let svc = StepService::start().await;
    let wf = sequential(
        "order",
        &["a"],
        "subject = \"/user\"\n[notify]\non = [\"succeeded\"]\nchannels = [\"inbox\", \"webhook\"]",
    );
    spawn_app_with(tempfile::tempdir().unwrap(), &[&wf], &svc, |c| {
        c.webhook = Some(WebhookConfig {
            url,
            secret: SECRET.into(),
            timeout: None,
            retry: Some(herald_core::workflow::raw::RawRetry {
                attempts: Some(3),
                initial: Some(herald_core::Span::from_millis(30)),
                max: Some(herald_core::Span::from_millis(60)),
                ..Default::default()
            }),
            circuit,
        })
    })
    .await
}

#[tokio::test]
async fn a_webhook_is_signed_retried_until_it_lands_and_verifies_only_as_sent() {
    let r = Receiver::default();
    r.answers.lock().unwrap().extend([500, 503]);
    let app = app_with_webhook(receiver(r.clone()).await).await;
    let id = app.start_id("order", json!({"user": "alice"})).await;
    app.wait_final(&id).await;

    let count = settled("deliveries", 3, QUIET, Duration::from_secs(10), || r.got.lock().unwrap().len()).await;
    assert_eq!(count, 3, "two failures, then delivered; no more");
    let got = r.got.lock().unwrap().clone();
    let (sig, body) = &got[2];
    let now = chrono::Utc::now().timestamp();
    assert_eq!(signature::verify(SECRET.as_bytes(), sig, "POST", "/hook", body, now), Ok(()));
    let mut tampered = body.to_vec();
    tampered[10] ^= 1;
    let verify_at = |method, path, body: &[u8]| signature::verify(SECRET.as_bytes(), sig, method, path, body, now);
    assert_eq!(verify_at("POST", "/hook", &tampered), Err(signature::VerifyError::Mismatch));
    assert_eq!(verify_at("POST", "/other-hook", body), Err(signature::VerifyError::Mismatch), "signed for its path");
    assert_eq!(verify_at("PUT", "/hook", body), Err(signature::VerifyError::Mismatch), "and its method");
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["operation_id"], id.as_str());
    assert_eq!(payload["notification"]["status"], "succeeded");
    assert!(payload["outcome"]["summary"].as_str().unwrap().contains("done"));
    let letters: Value = app.get_json("/v1/dead-letters").await;
    assert_eq!(letters["items"].as_array().map(Vec::len), Some(0), "{letters}");
    let webhook = |outcome| [("channel", "webhook"), ("outcome", outcome)];
    assert_eq!(metric_when(&app, "herald_notifications_total", &webhook("delivered"), |v| v > 0.0).await, 1.0);
    assert_eq!(metric_when(&app, "herald_notifications_total", &webhook("retried"), |_| true).await, 2.0);
    let inbox = [("channel", "inbox"), ("outcome", "delivered")];
    assert_eq!(metric_when(&app, "herald_notifications_total", &inbox, |_| true).await, 1.0, "one inbox notification");
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_is_dead_lettered_with_its_last_error() {
    let r = Receiver { always: Some(500), ..Default::default() };
    let app = app_with_webhook(receiver(r.clone()).await).await;
    let id = app.start_id("order", json!({"user": "alice"})).await;
    app.wait_final(&id).await;

    let letters = eventually("something dead-lettered", Duration::from_secs(10), async || {
        let letters: Value = app.get_json("/v1/dead-letters").await;
        Some(letters["items"].clone()).filter(|items| !items.as_array().unwrap().is_empty())
    })
    .await;
    assert_eq!(letters[0]["kind"], "webhook");
    assert_eq!(letters[0]["operation_id"], id.as_str());
    assert_eq!(letters[0]["attempts"], 3);
    assert!(letters[0]["error"].as_str().unwrap().contains("500"));
    assert_eq!(r.got.lock().unwrap().len(), 3, "as many tries as the policy allows");
    let webhook = |outcome| [("channel", "webhook"), ("outcome", outcome)];
    assert_eq!(metric_when(&app, "herald_notifications_total", &webhook("dead_lettered"), |v| v > 0.0).await, 1.0);
    assert_eq!(metric_when(&app, "herald_notifications_total", &webhook("retried"), |_| true).await, 2.0);
    assert_eq!(metric_when(&app, "herald_notifications_total", &webhook("delivered"), |_| true).await, 0.0);
}

#[tokio::test]
async fn a_workflow_that_notifies_by_webhook_needs_one_configured() {
    let wf = sequential("order", &["a"], "subject = \"/user\"\n[notify]\nchannels = [\"webhook\"]");
    let mut config = herald_server::Config { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.services.insert("svc".into(), herald_server::config::ServiceConfig::new(vec!["http://127.0.0.1:9".into()]));
    let def = herald_server::workflows::parse_checked("w.toml", &wf, &config.services).unwrap().1;

    let err = herald_server::Application::build_with(config, vec![def]).await.err().expect("refused");

    assert!(err.to_string().contains("[webhook] is not configured"), "{err}");
}

#[tokio::test]
async fn a_dead_lettered_webhook_is_sent_again_when_redriven() {
    let r = Receiver::default();
    r.answers.lock().unwrap().extend([500, 500, 500]);
    let app = app_with_webhook(receiver(r.clone()).await).await;
    let id = app.start_id("order", json!({"user": "alice"})).await;
    app.wait_final(&id).await;
    let letter = eventually("something dead-lettered", Duration::from_secs(10), async || {
        let letters: Value = app.get_json("/v1/dead-letters?kind=webhook").await;
        letters["items"].as_array().unwrap().first().cloned()
    })
    .await;

    let redriven = app
        .http
        .post(app.url(&format!("/v1/dead-letters/{}:redrive", letter["id"])))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(redriven.status(), 204);
    let count = settled("deliveries", 4, QUIET, Duration::from_secs(10), || r.got.lock().unwrap().len()).await;
    assert_eq!(count, 4, "the redriven notification, sent once");

    let (sig, body) = r.got.lock().unwrap()[3].clone();
    assert_eq!(
        signature::verify(SECRET.as_bytes(), &sig, "POST", "/hook", &body, chrono::Utc::now().timestamp()),
        Ok(()),
        "signed anew"
    );
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]));
}

#[tokio::test]
async fn while_the_receivers_circuit_is_open_a_webhook_waits_without_spending_attempts() {
    let r = Receiver::default();
    r.answers.lock().unwrap().extend([500, 500]);
    let circuit =
        CircuitConfig { consecutive_failures: 2, open_for: herald_core::Span::from_millis(500), ..Default::default() };
    let app = app_with_webhook_circuit(receiver(r.clone()).await, Some(circuit)).await;
    let id = app.start_id("order", json!({"user": "alice"})).await;
    app.wait_final(&id).await;

    // Two failures opened the circuit long before the 60 ms backoff ran
    // out; the third and last attempt waited for it instead of failing on it.
    let count = settled("deliveries", 3, QUIET, Duration::from_secs(10), || r.got.lock().unwrap().len()).await;
    assert_eq!(count, 3, "delivered on the third attempt");
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_a_receiver_that_refuses_connections_wait_and_spend_no_attempt() {
    let port = free_port(); // refused until the receiver starts
    let app = app_with_webhook(format!("http://127.0.0.1:{port}/hook")).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(app.start_id("order", json!({"user": format!("u{i}")})).await);
    }
    for id in &ids {
        app.wait_final(id).await;
    }

    // Down for three seconds, far past three attempts 30–60 ms apart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]), "nothing buried while it was down");
    let r = Receiver::default();
    receiver_on(r.clone(), port).await;

    let count = settled("deliveries", 10, QUIET, Duration::from_secs(15), || r.got.lock().unwrap().len()).await;
    assert_eq!(count, 10, "each notification delivered once, on the attempt that reached it");
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]));
}
