//! What the demo's tests share: the apps on a data directory of their own,
//! envelopes shaped as herald sends them, HTTP helpers, a real herald, and
//! waiting on a condition with a deadline.

#![allow(dead_code)]

use std::{path::Path, time::Duration};

use herald_server::{Config, config::ServiceConfig};
use herald_testkit::Herald;
pub use herald_testkit::client;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const ORDER: &str = "place-order";
pub const DELETION: &str = "delete-account";

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

/// A real herald on a free port, with its data in `dir`, calling the
/// demo's services and running `place-order` (`delete-account` would need
/// an SMTP server); `subscriptions` are (name, definition) as in
/// `[subscriptions]`.
pub async fn herald(dir: &Path, demo: &herald_demo::Demo, subscriptions: &[(&str, Value)]) -> (String, Herald) {
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
pub async fn herald_with(dir: &Path, demo: &herald_demo::Demo, tweak: impl FnOnce(&mut Config)) -> (String, Herald) {
    let mut config = Config::default();
    for (name, url) in demo.services() {
        config.services.insert(name, ServiceConfig::new(vec![url]));
    }
    tweak(&mut config);
    let email = config.email.is_some();
    // The workflows run depend on the tweaked configuration, so it is made
    // here; herald's builder only chooses its address and data directory.
    let mut build = Herald::build().data_dir(dir.join("herald")).config(|c| {
        (config.listen, config.data_dir) = (c.listen, std::mem::take(&mut c.data_dir));
        *c = config;
    });
    for (file, text) in herald_demo::workflows().into_iter().filter(|(file, _)| email || file.starts_with(ORDER)) {
        build = build.file(file, text);
    }
    let herald = build.start().await;
    (herald.base.clone(), herald)
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
