//! A real herald on port 0 with its own data (a directory, and on
//! PostgreSQL a schema), every service pointing at a scripted step service,
//! and what the API tests ask of it.

use std::{ops::Deref, path::Path, time::Duration};

use axum::Router;
use futures::StreamExt;
use herald_server::{Config, config::ServiceConfig};
use herald_store::contract::postgres::TestSchema;
use herald_testkit::{Herald, Store};
use serde_json::Value;

pub use herald_testkit::{
    Call, RawAnswer, Reply, StepService, cloud_event, event_types, eventually, free_port, raw, sequential, settled,
    step,
};

/// The store a test target runs every herald on: its `main.rs` names it
/// (`const BACKEND`), and says which tests need SQLite (`sqlite_only!`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(dead_code, reason = "each target runs on one of them")]
pub enum Backend {
    /// The embedded store, in the herald's directory.
    Sqlite,
    /// A schema of the herald's own on the test PostgreSQL server, dropped
    /// with its data.
    Postgres,
}

/// A herald's data: its directory and, on PostgreSQL, its schema. A new
/// directory is new data; what [`TestApp::stop`] hands back starts another
/// herald on the same data.
pub struct Data {
    pub dir: tempfile::TempDir,
    store: Option<Store>,
}

impl From<tempfile::TempDir> for Data {
    fn from(dir: tempfile::TempDir) -> Self {
        Data { dir, store: None }
    }
}

impl Data {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The URL of the store the herald that stopped on this data ran on.
    pub fn store_url(&self) -> String {
        match &self.store {
            Some(store) => store.url.clone(),
            None => format!("sqlite://{}", self.path().join("data").display()),
        }
    }
}

/// herald, with the token its reads of operations carry.
pub struct TestApp {
    herald: Herald,
    /// The token [`TestApp::get`] reads operations with, on a secured server.
    pub token: Option<String>,
}

impl Deref for TestApp {
    type Target = Herald;

    fn deref(&self) -> &Herald {
        &self.herald
    }
}

/// Starts herald with these workflow files, every service pointing at `svc`.
pub async fn spawn_app(workflow_files: &[&str], svc: &StepService) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), workflow_files, svc).await
}

pub async fn spawn_app_in(dir: impl Into<Data>, workflow_files: &[&str], svc: &StepService) -> TestApp {
    spawn_app_with(dir, workflow_files, svc, |_| {}).await
}

/// As [`spawn_app_in`], with the configuration adjusted by `tweak`.
pub async fn spawn_app_with(
    dir: impl Into<Data>,
    workflow_files: &[&str],
    svc: &StepService,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_app_merged(dir, workflow_files, svc, tweak, Router::new()).await
}

/// As [`spawn_app_with`], with `routes` served beside herald's own (as the demo's are).
pub async fn spawn_app_merged(
    dir: impl Into<Data>,
    workflow_files: &[&str],
    svc: &StepService,
    tweak: impl FnOnce(&mut Config),
    routes: Router,
) -> TestApp {
    let Data { dir, store } = dir.into();
    let store = match store {
        Some(same) => Some(same),
        None => fresh_store().await,
    };
    let mut build = Herald::build().dir(dir);
    if let Some(store) = store {
        build = build.store(store);
    }
    let herald = build
        .workflows(workflow_files)
        .config(|config| {
            // Quick polls and a short grace, so tests wait little; small
            // bodies, so the limits tests need not send megabytes.
            config.engine.poll_interval = herald_core::Span::from_millis(100);
            config.engine.shutdown_grace = herald_core::Span::from_millis(2000);
            config.limits.max_body_bytes = 64 * 1024;
            for name in ["svc", "other"] {
                config.services.insert(name.into(), ServiceConfig::new(vec![svc.url.clone()]));
            }
        })
        .config(tweak)
        .routes(routes)
        .start()
        .await;
    TestApp { herald, token: None }
}

/// A new store for new data, on the backend of this target: `None` for the
/// embedded one in the herald's directory.
async fn fresh_store() -> Option<Store> {
    match crate::BACKEND {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let schema = TestSchema::new().await;
            Some(Store::new(schema.url(), schema))
        }
    }
}

impl TestApp {
    pub async fn start(&self, workflow: &str, input: Value) -> reqwest::Response {
        let mut req = self.http.post(self.url(&format!("/v1/workflows/{workflow}/operations"))).json(&input);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    /// Starts an operation and answers its id.
    pub async fn start_id(&self, workflow: &str, input: Value) -> String {
        let resp = self.start(workflow, input).await;
        assert_eq!(resp.status(), 202, "start answered {}", resp.status());
        resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    }

    /// GET of any path, answered as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn get(&self, id: &str) -> Value {
        let mut req = self.http.get(self.url(&format!("/v1/operations/{id}")));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Polls the operation until `pred` holds, failing after `limit`.
    pub async fn wait_for(&self, id: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        eventually(&format!("operation {id}: the condition"), limit, async || {
            let op = self.get(id).await;
            if pred(&op) { Ok(op) } else { Err(format!("{op:#}")) }
        })
        .await
    }

    pub async fn wait_final(&self, id: &str) -> Value {
        self.wait_for(id, Duration::from_secs(20), |op| {
            matches!(op["status"].as_str(), Some("succeeded" | "failed" | "cancelled"))
        })
        .await
    }

    /// Stops the server gracefully, waits for it, and hands back its data.
    pub async fn stop(self) -> Data {
        let store = self.herald.store.clone();
        Data { dir: self.herald.stop().await, store }
    }
}

/// Reads an SSE stream until an event of type `until`; answers the types seen.
pub async fn follow(resp: reqwest::Response, until: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(|t| t == until) {
        let chunk =
            tokio::time::timeout_at(deadline, body.next()).await.expect("the stream went quiet").unwrap().unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                seen.push(serde_json::from_str::<Value>(data).unwrap()["type"].as_str().unwrap().to_string());
            }
        }
    }
    seen
}

/// What `/metrics` says of `name` with `labels` once `pred` holds for it
/// (counted just after a commit, a moment behind what the API shows).
pub async fn metric_when(app: &TestApp, name: &str, labels: &[(&str, &str)], pred: impl Fn(f64) -> bool) -> f64 {
    herald_testkit::eventually(&format!("{name} {labels:?}"), Duration::from_secs(10), || async {
        let text = app.http.get(app.url("/metrics")).send().await.ok()?.text().await.ok()?;
        let v = herald_testkit::openmetrics::Exposition::parse(&text).value(name, labels);
        pred(v).then_some(v)
    })
    .await
}

/// The email settings for a mail server on this machine's `port`, without
/// TLS or login, herald's defaults otherwise.
pub fn local_mail_server(port: u16) -> herald_server::config::EmailConfig {
    herald_server::config::EmailConfig {
        host: "127.0.0.1".into(),
        port,
        tls: herald_server::config::EmailTls::None,
        username: None,
        password: None,
        from: "Herald <noreply@herald.test>".into(),
        timeout: None,
        retry: None,
    }
}
