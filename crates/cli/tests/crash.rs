//! The `herald` binary, really killed: `kill -9` mid-run, restart, and
//! every accepted operation finishes with each step applied once.

use std::{
    collections::HashMap,
    path::Path,
    process::Child,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::State, http::HeaderMap, routing::post};
use herald_testkit::{
    all_succeeded, client_within, eventually, free_port,
    process::{Serve, serve},
    ready, workflow,
};
use serde_json::{Value, json};

/// What the step service saw: calls per idempotency key.
#[derive(Default)]
struct Ledger {
    calls_per_key: HashMap<String, u32>,
    finished: usize,
}

async fn step(State(ledger): State<Arc<Mutex<Ledger>>>, headers: HeaderMap) -> axum::Json<Value> {
    let key = headers["idempotency-key"].to_str().unwrap().to_string();
    {
        let mut l = ledger.lock().unwrap();
        *l.calls_per_key.entry(key).or_default() += 1;
    }
    // Keep calls in flight for a moment, so the kill lands mid-step.
    tokio::time::sleep(Duration::from_millis(5 + rand_ms())).await;
    let mut l = ledger.lock().unwrap();
    l.finished += 1;
    axum::Json(json!({"ok": true}))
}

fn rand_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 % 20
}

async fn step_service() -> (String, Arc<Mutex<Ledger>>) {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let app = Router::new().route("/{step}", post(step)).with_state(ledger.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, ledger)
}

fn write_config(dir: &Path, port: u16, svc: &str) -> std::path::PathBuf {
    let wf_dir = dir.join("workflows");
    std::fs::create_dir_all(&wf_dir).unwrap();
    let retry = "retry = { attempts = 50, initial = \"50ms\", max = \"500ms\" }\n";
    let wf = workflow::named(
        "order",
        ["reserve", "charge", "confirm"].map(|s| workflow::call(s, "svc", &format!("/{s}"), retry)),
    );
    std::fs::write(wf_dir.join("order.toml"), wf).unwrap();
    let config = dir.join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nworkflows = \"{}\"\n[engine]\npoll_interval = \"100ms\"\n[services.svc]\ninstances = [\"{svc}\"]\n",
            dir.join("data").display(),
            wf_dir.display()
        ),
    )
    .unwrap();
    config
}

fn spawn_herald(config: &Path) -> Child {
    serve(env!("CARGO_BIN_EXE_herald"), Serve::Config(config)).spawn().expect("the herald binary starts")
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    assert!(ready(http, base, Duration::from_secs(30)).await, "herald did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_run_loses_no_operation_and_applies_no_step_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, ledger) = step_service().await;
    let port = free_port();
    let config = write_config(dir.path(), port, &svc);
    let base = format!("http://127.0.0.1:{port}");
    // Every request with a deadline: a request that never ends fails the
    // test, saying which, instead of holding the run.
    let http = client_within(Duration::from_secs(30));
    let mut herald = spawn_herald(&config);
    wait_ready(&http, &base).await;

    let starts = (0..200).map(|i| {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            let r =
                http.post(format!("{base}/v1/workflows/order/operations")).json(&json!({"n": i})).send().await.unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        })
    });
    let ids: Vec<String> = futures::future::join_all(starts).await.into_iter().map(Result::unwrap).collect();
    // Kill once some steps are done and many are still to come.
    let started = async || (ledger.lock().unwrap().finished >= 150).then_some(());
    eventually("150 steps finished", Duration::from_secs(30), started).await;
    herald.kill().unwrap(); // SIGKILL
    herald.wait().unwrap();
    let before_kill: HashMap<String, u32> = ledger.lock().unwrap().calls_per_key.clone();
    assert!(before_kill.len() < 600, "the kill landed mid-run ({} of 600 steps reached)", before_kill.len());

    let herald = spawn_herald(&config);
    wait_ready(&http, &base).await;
    all_succeeded(&http, &base, "order", 200, Duration::from_secs(90)).await;
    // At-least-once calls: a step reached before the kill may be called
    // once more after it (its answer may have died with the process),
    // always with the same key; any other step is called exactly once.
    let after: HashMap<String, u32> = ledger.lock().unwrap().calls_per_key.clone();
    let repeated = after.values().filter(|n| **n > 1).count();
    eprintln!(
        "killed after {} of 600 steps were reached; {repeated} were called again after the restart",
        before_kill.len()
    );
    assert_eq!(after.len(), 600, "every step of every operation, and no stray keys");
    for (key, n) in &after {
        let allowed = before_kill.get(key).map_or(1, |b| b + 1);
        assert!(*n <= allowed, "{key} called {n} times (allowed {allowed})");
    }
    // Exactly-once state: each step's result was recorded once.
    for id in ids.iter().step_by(7) {
        let op: Value = http.get(format!("{base}/v1/operations/{id}")).send().await.unwrap().json().await.unwrap();
        for s in ["reserve", "charge", "confirm"] {
            let done = op["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "step_succeeded" && e["step"] == s)
                .count();
            assert_eq!(done, 1, "{id}/{s} recorded once");
        }
    }
    herald_testkit::process::stop(herald);
}

/// herald on the demo's account service (run here, so it outlives herald's
/// kill), its emails to a local sink.
fn write_demo_config(dir: &Path, port: u16, demo: &herald_demo::Demo, smtp: u16) -> std::path::PathBuf {
    let wf_dir = dir.join("workflows");
    std::fs::create_dir_all(&wf_dir).unwrap();
    for (file, text) in herald_demo::workflows() {
        std::fs::write(wf_dir.join(file), text).unwrap();
    }
    let mut toml = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nworkflows = \"{}\"\n[engine]\npoll_interval = \"100ms\"\n\
         [email]\nhost = \"127.0.0.1\"\nport = {smtp}\nfrom = \"herald <noreply@herald.test>\"\n",
        dir.join("data").display(),
        wf_dir.display()
    );
    for (name, url) in demo.services() {
        toml.push_str(&format!("[services.{name}]\ninstances = [\"{url}\"]\n"));
    }
    let config = dir.join("herald.toml");
    std::fs::write(&config, toml).unwrap();
    config
}

/// The demo's own scenario: the audit store is busy twice per deletion.
/// No refusal of herald's may spend an attempt, so none is held for a
/// person however the kill falls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_deletions_across_a_kill_9_all_succeed_none_held_each_step_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let demo = herald_demo::start(Duration::from_millis(100), &dir.path().join("demo")).await.unwrap();
    let sink = herald_demo::smtp::SmtpSink::start(0).await.unwrap();
    let port = free_port();
    let config = write_demo_config(dir.path(), port, &demo, sink.port);
    let base = format!("http://127.0.0.1:{port}");
    // Every request with a deadline: a request that never ends fails the
    // test, saying which, instead of holding the run.
    let http = client_within(Duration::from_secs(30));
    let mut herald = spawn_herald(&config);
    wait_ready(&http, &base).await;

    let mut ids = Vec::new();
    for i in 0..60 {
        let user = json!({ "user_id": format!("u{i}"), "email": format!("u{i}@example.com") });
        let r = http.post(format!("{base}/v1/workflows/delete-account/operations")).json(&user).send().await.unwrap();
        assert_eq!(r.status(), 202);
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    // Killed once the deletions are well under way: the audit store has
    // been busy for some of them.
    let applied = format!("{}/applied", demo.account_url);
    eventually("the deletions under way", Duration::from_secs(30), async || {
        let done: Value = http.get(&applied).send().await.unwrap().json().await.unwrap();
        let audit_busy: Value =
            http.get(format!("{}/audit/load", demo.account_url)).send().await.unwrap().json().await.unwrap();
        (done.as_object().unwrap().len() >= 60 && audit_busy["calls"].as_u64().unwrap() >= 10).then_some(())
    })
    .await;
    herald.kill().unwrap(); // SIGKILL
    herald.wait().unwrap();

    let herald = spawn_herald(&config);
    wait_ready(&http, &base).await;
    all_succeeded(&http, &base, "delete-account", 60, Duration::from_secs(120)).await;

    let letters: Value = http.get(format!("{base}/v1/dead-letters")).send().await.unwrap().json().await.unwrap();
    assert_eq!(letters["items"].as_array().unwrap().len(), 0, "nothing was held for a person: {letters}");
    let done: Value = http.get(&applied).send().await.unwrap().json().await.unwrap();
    for id in &ids {
        let op: Value = http.get(format!("{base}/v1/operations/{id}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(op["needs_attention"], false, "{op}");
        for step in ["delete-transactions", "delete-logs", "delete-audit-logs", "delete-domain-data", "delete-account"]
        {
            assert_eq!(done[format!("{id}/{step}")], 1, "{id}/{step} applied once: {done}");
        }
    }
    herald_testkit::process::stop(herald);
}
