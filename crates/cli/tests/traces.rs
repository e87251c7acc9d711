//! The `herald` binary configured by the standard `OTEL_*` variables:
//! an operation's spans share one trace across a `kill -9` and restart,
//! and its JSON log lines name the operation, workflow, step and trace.

use std::{path::Path, process::Child, time::Duration};

use herald_testkit::{
    Reply, StepService, client_within, free_port,
    otlp::{Receiver, Span},
    process::{Serve, serve},
    ready, sequential,
};
use serde_json::{Value, json};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn config(dir: &Path, port: u16, svc: &str) -> std::path::PathBuf {
    let workflows = dir.join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("order.toml"), sequential("order", &["a", "b"], "")).unwrap();
    let path = dir.join("herald.toml");
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nworkflows = \"{}\"\n[engine]\npoll_interval = \"100ms\"\n\
         [services.svc]\ninstances = [\"{svc}\"]\n",
        dir.join("data").display(),
        workflows.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(config: &Path, receiver: &Receiver, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    serve(env!("CARGO_BIN_EXE_herald"), Serve::Config(config))
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &receiver.endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_SERVICE_NAME", "herald-under-test")
        .env("HERALD_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,herald_engine=debug")
        .stderr(log)
        .spawn()
        .expect("the herald binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_share_one_trace_across_a_kill_9_and_json_logs_name_the_operation() {
    let receiver = Receiver::start().await;
    let svc = StepService::start().await;
    svc.on("/a", Reply::Accept);
    let dir = tempfile::tempdir().unwrap();
    let (port, log) = (free_port(), dir.path().join("herald.log"));
    let config = config(dir.path(), port, &svc.url);
    let base = format!("http://127.0.0.1:{port}");
    let http = client_within(Duration::from_secs(30));
    let mut herald = spawn(&config, &receiver, &log);
    assert!(ready(&http, &base, Duration::from_secs(30)).await, "herald did not become ready");

    let input = json!({"card": "4242424242424242"});
    let start = http.post(format!("{base}/v1/workflows/order/operations")).header("traceparent", CALLER);
    let op: Value = start.json(&input).send().await.unwrap().json().await.unwrap();
    let id = op["id"].as_str().unwrap().to_string();
    let called = herald_testkit::eventually("step a called", Duration::from_secs(10), || async {
        svc.calls("/a").into_iter().next()
    })
    .await;
    // Its client span goes out before the kill.
    receiver.when("call a exported", Duration::from_secs(10), |s| s.iter().any(|s| s.name == "call a")).await;
    herald.kill().unwrap(); // SIGKILL
    herald.wait().unwrap();

    let herald = spawn(&config, &receiver, &log);
    assert!(ready(&http, &base, Duration::from_secs(30)).await, "herald did not come back");
    let token = called.body["callback"]["token"].as_str().unwrap().to_string();
    let url = format!("{base}/v1/operations/{id}/steps/a:complete");
    let done = http.post(url).bearer_auth(&token).json(&json!({"result": {}})).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let finished = |s: &[Span]| s.iter().any(|s| s.name == "operation order");
    let all = receiver.when("the operation's span exported", Duration::from_secs(20), finished).await;
    herald_testkit::process::stop(herald);

    let ours: Vec<&Span> = all
        .iter()
        .filter(|s| s.attributes.get("herald.operation.id").map(String::as_str) == Some(id.as_str()))
        .collect();
    assert_eq!(ours.len(), 5, "two calls, two steps, the operation: {ours:#?}");
    assert!(ours.iter().all(|s| s.trace_id == TRACE && s.service == "herald-under-test"), "{ours:#?}");
    let named = |n: &str| ours.iter().filter(|s| s.name == n).copied().collect::<Vec<_>>();
    let root = named("operation order");
    assert_eq!(root.len(), 1);
    assert_eq!(root[0].span_id, op["trace"]["span_id"].as_str().unwrap(), "the id kept at acceptance");
    assert_eq!(named("call a")[0].parent_id, named("step a")[0].span_id, "before the kill, under the span after it");
    assert_eq!(named("step b")[0].parent_id, root[0].span_id);
    assert_eq!(&called.traceparent[3..35], TRACE);

    // One JSON object a line; the call's lines name what they are about.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let about_a = lines.iter().find(|l| l["message"] == "the call is over" && l["span"]["step"] == "a");
    let about_a = about_a.unwrap_or_else(|| panic!("no line about step a's call: {text}"));
    assert_eq!(about_a["span"]["operation_id"], id.as_str());
    assert_eq!(about_a["span"]["workflow"], "order");
    assert_eq!(about_a["span"]["trace_id"], TRACE);
    for never in [token.as_str(), "4242424242424242"] {
        assert!(!text.contains(never), "the log holds a secret");
    }
}
