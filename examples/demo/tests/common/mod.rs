//! What the demo's tests share: the apps on a data directory of their own,
//! envelopes shaped as herald sends them, HTTP helpers, a real herald, and
//! waiting on a condition with a deadline.

#![allow(dead_code)]

use std::{
    future::Future,
    path::Path,
    time::{Duration, Instant},
};

use herald_server::{Application, Config, config::ServiceConfig, workflows};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const ORDER: &str = "place-order";
pub const DELETION: &str = "delete-account";

pub fn client() -> reqwest::Client {
    // reqwest is built with `rustls-no-provider`: without a provider,
    // building a client panics, even for http:// URLs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The demo apps, with the directory their database lives in.
pub struct Started {
    pub demo: herald_demo::Demo,
    pub dir: tempfile::TempDir,
}

pub async fn demo() -> Started {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let demo = herald_demo::start(Duration::ZERO, dir.path()).await.expect("the demo starts");
    Started { demo, dir }
}

pub async fn demo_on(dir: &Path) -> herald_demo::Demo {
    herald_demo::start(Duration::ZERO, dir).await.expect("the demo starts")
}

pub fn envelope(op: &str, workflow: &str, step: &str, phase: &str, input: Value, results: Value) -> Value {
    json!({
        "operation_id": op, "workflow": workflow, "step": step, "attempt": 1, "phase": phase,
        "subject": null, "input": input, "results": results, "callback": null,
    })
}

pub fn order(card: &str) -> Value {
    json!({ "customer": "alice", "items": [{ "sku": "tea", "qty": 1 }], "card": card })
}

pub fn user() -> Value {
    json!({ "user_id": "u_42", "email": "alice@example.com" })
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

pub async fn post(http: &reqwest::Client, url: String, key: &str, body: &Value) -> Answer {
    let resp = http
        .post(url)
        .header("idempotency-key", key)
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the demo answers");
    let status = resp.status();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = resp.json().await.expect("every answer is JSON");
    Answer { status, content_type, body }
}

pub async fn get(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.expect("the demo answers").json().await.expect("JSON")
}

/// Reserves `input`'s items for operation `op` through the inventory.
pub async fn reserve(http: &reqwest::Client, demo: &herald_demo::Demo, op: &str, input: Value) -> Answer {
    let body = envelope(op, ORDER, "reserve-inventory", "forward", input, json!({}));
    post(http, format!("{}/inventory/reserve", demo.shop_url), &format!("{op}/reserve-inventory"), &body).await
}

pub async fn stock(http: &reqwest::Client, demo: &herald_demo::Demo) -> Value {
    get(http, format!("{}/inventory/stock", demo.shop_url)).await
}

/// Polls `probe` until it answers `Some`, failing the test after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A real herald on a free port, with its data in `dir`, calling the
/// demo's services and running `place-order` (`delete-account` would need
/// an SMTP server); `subscriptions` are (name, definition) as in
/// `[subscriptions]`.
pub async fn herald(
    dir: &Path,
    demo: &herald_demo::Demo,
    subscriptions: &[(&str, Value)],
) -> (String, tokio::task::JoinHandle<anyhow::Result<()>>) {
    herald_with(dir, demo, |config| {
        for (name, definition) in subscriptions {
            let sub = serde_json::from_value(definition.clone()).expect("a subscription");
            config.subscriptions.insert(name.to_string(), sub);
        }
    })
    .await
}

/// As [`herald`], `tweak`ed; with an email server configured, it runs
/// `delete-account` too.
pub async fn herald_with(
    dir: &Path,
    demo: &herald_demo::Demo,
    tweak: impl FnOnce(&mut Config),
) -> (String, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("an address"),
        data_dir: dir.join("herald"),
        ..Config::default()
    };
    for (name, url) in demo.services() {
        config.services.insert(name, ServiceConfig::new(vec![url]));
    }
    tweak(&mut config);
    let email = config.email.is_some();
    let definitions = herald_demo::workflows()
        .into_iter()
        .filter(|(file, _)| email || file.starts_with(ORDER))
        .map(|(file, text)| workflows::parse_checked(file, text, &config.services).expect("a valid workflow").1)
        .collect();
    let app = Application::build_with(config, definitions).await.expect("herald starts");
    let url = format!("http://{}", app.local_addr());
    (url, tokio::spawn(app.run_until_stopped(std::future::pending())))
}

/// herald's emails go to this local sink.
pub fn email_to(config: &mut Config, sink: &herald_demo::smtp::SmtpSink) {
    config.email = Some(herald_server::config::EmailConfig {
        host: "127.0.0.1".into(),
        port: sink.port,
        tls: herald_server::config::EmailTls::None,
        username: None,
        password: None,
        from: "herald test <noreply@herald.test>".into(),
        timeout: None,
        retry: None,
    });
}
