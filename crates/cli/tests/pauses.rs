//! Long pauses and clock steps: the `herald` binary frozen (SIGSTOP) past
//! its timers and thawed (SIGCONT), and its wall clock stepped forward and
//! back (libfaketime, from Debian's `faketime`, moving only the wall
//! clock, as a clock step does). Every timer — an await's timeout, a
//! retry's backoff — fires once: none twice, none lost.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Child,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use herald_testkit::{
    client_within, eventually, free_port,
    process::{Serve, serve, signal, stop},
    ready,
};
use serde_json::{Value, json};

/// Operations per run.
const N: usize = 20;

/// The step service: each key's first call answers 503, the next 200.
async fn flaky(State(calls): State<Arc<Mutex<HashMap<String, u32>>>>, headers: HeaderMap) -> StatusCode {
    let key = headers["idempotency-key"].to_str().unwrap().to_string();
    let mut calls = calls.lock().unwrap();
    let n = calls.entry(key).or_default();
    *n += 1;
    if *n == 1 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
}

struct Run {
    base: String,
    http: reqwest::Client,
    calls: Arc<Mutex<HashMap<String, u32>>>,
    config: PathBuf,
    dir: tempfile::TempDir,
}

/// herald's configuration: one workflow whose operations each wait out an
/// await's 2 s timeout (then go on), and call a service that fails the
/// first time (a 2 s backoff, then success).
async fn run() -> Run {
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let app = Router::new().route("/flaky", post(flaky)).with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let svc = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(
        wf.join("timers.toml"),
        "name = \"timers\"\n\
         [[steps]]\nname = \"wait\"\nawait = { topic = \"never\", type = \"x\", timeout = \"2s\", on_timeout = \"skip\" }\n\
         [[steps]]\nname = \"call\"\ncall = { service = \"svc\", path = \"/flaky\" }\n\
         retry = { attempts = 5, initial = \"2s\", max = \"2s\", jitter = 0.0 }\n",
    )
    .unwrap();
    let port = free_port();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nworkflows = \"{}\"\n\
             [engine]\npoll_interval = \"100ms\"\n[services.svc]\ninstances = [\"{svc}\"]\n",
            dir.path().join("data").display(),
            wf.display()
        ),
    )
    .unwrap();
    Run { base: format!("http://127.0.0.1:{port}"), http: client_within(Duration::from_secs(30)), calls, config, dir }
}

impl Run {
    fn spawn(&self, clock: Option<&Path>) -> Child {
        let mut cmd = serve(env!("CARGO_BIN_EXE_herald"), Serve::Config(&self.config));
        if let Some(file) = clock {
            cmd.env("LD_PRELOAD", faketime())
                .env("FAKETIME_TIMESTAMP_FILE", file)
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        cmd.spawn().expect("the herald binary starts")
    }

    async fn start(&self) -> Vec<String> {
        assert!(ready(&self.http, &self.base, Duration::from_secs(30)).await, "herald did not become ready");
        let mut ids = Vec::new();
        for i in 0..N {
            let r = self.http.post(self.url("/v1/workflows/timers/operations")).json(&json!({"n": i})).send().await;
            let r = r.unwrap();
            assert_eq!(r.status(), 202);
            ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
        }
        ids
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn operations(&self, ids: &[String]) -> Vec<Value> {
        let mut ops = Vec::new();
        for id in ids {
            ops.push(
                self.http.get(self.url(&format!("/v1/operations/{id}"))).send().await.unwrap().json().await.unwrap(),
            );
        }
        ops
    }

    /// Waits until every operation of `ids` has `kind` in its timeline.
    async fn all_reached(&self, ids: &[String], kind: &str, within: Duration) {
        eventually(&format!("every operation reached {kind}"), within, || async {
            let ops = self.operations(ids).await;
            ops.iter().all(|op| count(op, kind) > 0).then_some(())
        })
        .await;
    }

    /// Every operation succeeded, each timer having fired exactly once.
    async fn each_timer_fired_once(&self, ids: &[String]) {
        self.all_reached(ids, "succeeded", Duration::from_secs(60)).await;
        let calls = self.calls.lock().unwrap().clone();
        for op in self.operations(ids).await {
            let id = op["id"].as_str().unwrap();
            assert_eq!(count(&op, "step_skipped"), 1, "{id}: the await's timeout fired once: {op}");
            assert_eq!(count(&op, "step_retrying"), 1, "{id}: one retry was due: {op}");
            assert_eq!(count(&op, "step_succeeded"), 1, "{id}: {op}");
            assert_eq!(calls.get(&format!("{id}/call")), Some(&2), "{id}: the backoff's timer fired once");
        }
    }
}

fn count(op: &Value, kind: &str) -> usize {
    op["timeline"].as_array().unwrap().iter().filter(|e| e["type"] == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_herald_fires_each_timer_once_when_thawed() {
    let run = run().await;
    let herald = run.spawn(None);
    let ids = run.start().await;
    // Frozen past the awaits' timeouts…
    signal(herald.id(), "STOP");
    tokio::time::sleep(Duration::from_secs(4)).await;
    signal(herald.id(), "CONT");
    // …and again past the retries' backoff.
    run.all_reached(&ids, "step_retrying", Duration::from_secs(30)).await;
    signal(herald.id(), "STOP");
    tokio::time::sleep(Duration::from_secs(4)).await;
    signal(herald.id(), "CONT");
    run.each_timer_fired_once(&ids).await;
    stop(herald);
}

/// Where Debian's libfaketime is (the multi-threaded one).
fn faketime() -> PathBuf {
    let found = ["/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime", "/usr/lib/faketime"]
        .iter()
        .map(|d| Path::new(d).join("libfaketimeMT.so.1"))
        .find(|p| p.exists());
    found
        .expect("libfaketime is installed (apt-get install faketime): the clock-step test moves herald's clock with it")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_steps_fire_each_timer_once() {
    let run = run().await;
    let clock = run.dir.path().join("clock");
    std::fs::write(&clock, "+0").unwrap();
    let herald = run.spawn(Some(&clock));
    let ids = run.start().await;
    // An hour forward: the awaits' timeouts are all past at once, and fire
    // once each (early by the real clock: herald's clock is the wall's).
    std::fs::write(&clock, "+3600").unwrap();
    run.all_reached(&ids, "step_retrying", Duration::from_secs(30)).await;
    let op = &run.operations(&ids[..1]).await[0];
    let retrying = op["timeline"].as_array().unwrap().iter().find(|e| e["type"] == "step_retrying").unwrap();
    let at: chrono::DateTime<chrono::Utc> = retrying["at"].as_str().unwrap().parse().unwrap();
    assert!(at > chrono::Utc::now() + chrono::Duration::minutes(50), "herald's clock moved on an hour: {op}");
    // Five seconds back while the backoffs wait: each fires once, late by
    // at most the step.
    std::fs::write(&clock, "+3595").unwrap();
    run.each_timer_fired_once(&ids).await;
    stop(herald);
}
