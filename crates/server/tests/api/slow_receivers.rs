//! Notification receivers that are up but slow: a webhook receiver that
//! answers long after herald's timeout, a mail server that takes the
//! connection and never greets. Each attempt is given up at its timeout,
//! retried by policy, and dead-lettered with why once attempts run out;
//! meanwhile operations keep their pace. (Receivers that are down:
//! `webhooks.rs`, `email.rs`.)

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, routing::post};
use herald_core::{Span, workflow::raw::RawRetry};
use herald_server::config::{EmailConfig, WebhookConfig};
use serde_json::{Value, json};

use herald_testkit::eventually;

use crate::helpers::*;

/// Three attempts, 30–60 ms apart.
fn three_attempts() -> Option<RawRetry> {
    let (initial, max) = (Some(Span::from_millis(30)), Some(Span::from_millis(60)));
    Some(RawRetry { attempts: Some(3), initial, max, ..Default::default() })
}

/// Operation `id`'s notification of `kind` is dead-lettered after its
/// three attempts, saying `why`, and the receiver was `reached` once per
/// attempt, each given up at the timeout, and no more.
async fn given_up_three_times(app: &TestApp, kind: &str, id: &str, why: &str, reached: &AtomicUsize) {
    let letter = eventually(&format!("a {kind} dead letter"), Duration::from_secs(15), || async {
        let letters = app.get_json("/v1/dead-letters").await;
        letters["items"].as_array().unwrap().iter().find(|l| l["kind"] == kind).cloned()
    })
    .await;
    assert_eq!(letter["operation_id"], id);
    assert_eq!(letter["attempts"], 3, "{letter}");
    assert!(letter["error"].as_str().unwrap().contains(why), "{letter}");
    let quiet = Duration::from_millis(500);
    let tries = settled(kind, 3, quiet, Duration::from_secs(10), || reached.load(Ordering::SeqCst)).await;
    assert_eq!(tries, 3, "as many tries as the policy allows, each given up at the timeout");
}

/// Ten more operations, started while the receiver hangs, all end within
/// `within` (each alone takes a few milliseconds).
async fn others_keep_their_pace(app: &TestApp, workflow: &str, input: impl Fn(usize) -> Value, within: Duration) {
    let started = tokio::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(app.start_id(workflow, input(i)).await);
    }
    for id in &ids {
        let op = app.wait_final(id).await;
        assert_eq!(op["status"], "succeeded", "{op:#}");
    }
    assert!(started.elapsed() < within, "ten operations took {:?} beside a slow receiver", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_slower_than_its_timeout_is_given_up_per_attempt_and_dead_lettered() {
    // Takes every delivery and answers a minute later.
    let arrived = Arc::new(AtomicUsize::new(0));
    let slow = |State(n): State<Arc<AtomicUsize>>| async move {
        n.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(60)).await;
        StatusCode::OK
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let routes = Router::new().route("/hook", post(slow)).with_state(arrived.clone());
    tokio::spawn(async move { axum::serve(listener, routes).await });

    let svc = StepService::start().await;
    let notify = "subject = \"/user\"\n[notify]\non = [\"succeeded\"]\nchannels = [\"inbox\", \"webhook\"]";
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&sequential("order", &["a"], notify)], &svc, |c| {
        let timeout = Some(Span::from_millis(200));
        c.webhook = Some(WebhookConfig {
            url,
            secret: "webhook-secret-0123456789".into(),
            timeout,
            retry: three_attempts(),
            circuit: None,
        });
    })
    .await;
    let id = app.start_id("order", json!({"user": "alice"})).await;
    assert_eq!(app.wait_final(&id).await["status"], "succeeded");

    given_up_three_times(&app, "webhook", &id, "did not answer in time", &arrived).await;
    // The user's inbox has the notification whatever became of the webhook.
    let inbox = [("channel", "inbox"), ("outcome", "delivered")];
    assert_eq!(metric_when(&app, "herald_notifications_total", &inbox, |v| v > 0.0).await, 1.0);

    others_keep_their_pace(&app, "order", |i| json!({"user": format!("u{i}")}), Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_server_that_takes_the_connection_and_never_greets_is_given_up_per_attempt_and_dead_lettered() {
    // Accepts, then says nothing: SMTP's greeting never comes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });

    let svc = StepService::start().await;
    let notify =
        "subject = \"/user\"\n[notify]\non = [\"succeeded\"]\nchannels = [\"inbox\", \"email\"]\nemail_to = \"/email\"";
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&sequential("order", &["a"], notify)], &svc, |c| {
        let (timeout, retry) = (Some(Span::from_millis(300)), three_attempts());
        c.email = Some(EmailConfig { timeout, retry, ..local_mail_server(port) })
    })
    .await;
    let input = |user: &str| json!({"user": user, "email": format!("{user}@example.com")});
    let id = app.start_id("order", input("alice")).await;
    assert_eq!(app.wait_final(&id).await["status"], "succeeded");

    given_up_three_times(&app, "email", &id, "mail server", &accepted).await;

    others_keep_their_pace(&app, "order", |i| input(&format!("u{i}")), Duration::from_secs(10)).await;
}
