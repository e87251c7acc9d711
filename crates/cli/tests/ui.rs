//! herald's pages in a real browser: `herald demo` started as a process,
//! and `crates/server/tests/ui/demo.spec.mjs` driving headless Chromium
//! through playwright-core places a declined order and checks what the page
//! says; `decide.spec.mjs` has two orders collide and makes the choice (or
//! lets time run out); `german.spec.mjs` is a reader in Germany (the page,
//! herald's texts and an order declined, all German; an English and a
//! French browser get theirs); `herald serve` with late, held and finished
//! work, and `operator.spec.mjs` reading it on the operator page.
//!
//! Needs Debian's `chromium` and playwright-core under `target/ui-tools`
//! (`.ci/run` installs both). Without them the tests say so and pass,
//! unless `HERALD_TEST_UI=require` (as in CI), where they fail.

use std::{path::PathBuf, process::Command, time::Duration};

use herald_testkit::{
    Reply, StepService, client, free_port,
    process::{Running, Serve, demo, serve},
    ready,
};
use serde_json::{Value, json};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the browser tools are, or `None` (the test passes, saying why)
/// when they are missing and not required.
fn tools() -> Option<(PathBuf, String)> {
    let tools = std::env::var_os("HERALD_TEST_UI_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/ui-tools"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (!PathBuf::from(&chromium).exists()).then_some("chromium"),
        (!tools.join("node_modules/playwright-core").exists()).then_some("playwright-core"),
        Command::new("node").arg("--version").output().is_err().then_some("node"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let required = std::env::var("HERALD_TEST_UI").is_ok_and(|v| v == "require");
        assert!(!required, "the browser test needs {missing:?} (see .ci/run)");
        eprintln!("browser test not run: {missing:?} not installed (see .ci/run)");
        return None;
    }
    Some((tools, chromium))
}

/// Runs `spec` against herald at `base`; its report is the test's verdict.
fn run_spec(spec: &str, (tools, chromium): &(PathBuf, String), base: &str, env: &[(&str, &str)]) {
    let out = Command::new("node")
        .arg(workspace().join("crates/server/tests/ui").join(spec))
        .current_dir(tools)
        .env("HERALD_URL", base)
        .env("CHROMIUM", chromium)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains(" 0 failed"), "{report}");
}

#[test]
fn the_demo_page_tells_a_declined_order_as_it_happened() {
    let Some(tools) = tools() else { return };
    let data = tempfile::tempdir().unwrap();
    // herald picks its own port and says which: no free-port guess to race.
    let data_dir = data.path().join("data");
    let how = Serve::Demo { pace: "300ms", data_dir: &data_dir, store: None, config: None };
    let (_demo, base) = demo(env!("CARGO_BIN_EXE_herald"), how, &data.path().join("demo.log"));
    run_spec("demo.spec.mjs", &tools, &base, &[]);
}

/// A browser whose language is German (`de-DE`) gets the demo page, and
/// herald's texts about its orders, in German; paced so that a second order
/// comes while the first runs.
#[test]
fn the_demo_page_speaks_german_to_a_german_browser() {
    let Some(tools) = tools() else { return };
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let how = Serve::Demo { pace: "1s", data_dir: &data_dir, store: None, config: None };
    let (_demo, base) = demo(env!("CARGO_BIN_EXE_herald"), how, &data.path().join("demo.log"));
    run_spec("german.spec.mjs", &tools, &base, &[]);
}

/// The demo's own place-order, with a time to choose short enough to wait
/// out, given to the demo through a workflows folder (a file there with a
/// demo workflow's name replaces it); paced so that an order is still
/// running when the second one comes.
#[test]
fn the_demo_page_asks_which_order_goes_ahead_when_two_collide() {
    let Some(tools) = tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let order = std::fs::read_to_string(workspace().join("examples/workflows/place-order.toml")).unwrap();
    let quick = order.replace("decide_within = \"1m\"", "decide_within = \"12s\"");
    assert_ne!(quick, order, "place-order's decide_within is no longer \"1m\": say here what to replace");
    std::fs::write(workflows.join("place-order.toml"), quick).unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, format!("workflows = \"{}\"\n", workflows.display())).unwrap();
    let data_dir = dir.path().join("data");
    let how = Serve::Demo { pace: "2s", data_dir: &data_dir, store: None, config: Some(&config) };
    let (_demo, base) = demo(env!("CARGO_BIN_EXE_herald"), how, &dir.path().join("demo.log"));
    run_spec("decide.spec.mjs", &tools, &base, &[("DECIDE_WITHIN_S", "12")]);
}

const ADMIN: &str = "operator-admin-token-0123456789";

/// Workflows with something to show: an order retried once, a step held
/// for a person, an operation that outlives its expected second.
const WORKFLOWS: [(&str, &str); 3] = [
    (
        "order",
        "name = \"order\"\nexpected_within = \"1h\"\n[[steps]]\nname = \"a\"\ncall = { service = \"svc\", path = \"/a\" }\n\
         retry = { attempts = 3, initial = \"20ms\" }\n",
    ),
    (
        "held",
        "name = \"held\"\n[[steps]]\nname = \"h\"\ncall = { service = \"svc\", path = \"/h\" }\n\
         retry = { attempts = 1 }\non_failure = \"hold\"\n",
    ),
    (
        "slow",
        "name = \"slow\"\nexpected_within = \"1s\"\n[[steps]]\nname = \"s\"\ncall = { service = \"svc\", path = \"/s\" }\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_page_shows_finished_late_and_held_work_and_the_registry() {
    let Some(tools) = tools() else { return };
    let svc = StepService::start().await;
    svc.then("/a", vec![Reply::Status(503, "busy")]);
    svc.on("/h", Reply::Status(500, "broken"));
    svc.on("/s", Reply::Accept);
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    for (name, text) in WORKFLOWS {
        std::fs::write(workflows.join(format!("{name}.toml")), text).unwrap();
    }
    let port = free_port();
    let config = dir.path().join("herald.toml");
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nworkflows = \"{}\"\n\
         [[auth.tokens]]\nname = \"ops\"\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
         [services.svc]\ninstances = [\"{}\"]\n",
        dir.path().join("data").display(),
        workflows.display(),
        svc.url
    );
    std::fs::write(&config, text).unwrap();
    let log = std::fs::File::create(dir.path().join("herald.log")).unwrap();
    let _herald = Running(serve(env!("CARGO_BIN_EXE_herald"), Serve::Config(&config)).stderr(log).spawn().unwrap());
    let (base, http) = (format!("http://127.0.0.1:{port}"), client());
    assert!(ready(&http, &base, Duration::from_secs(30)).await, "herald did not become ready");
    let start = |workflow: &str| {
        let url = format!("{base}/v1/workflows/{workflow}/operations");
        let req = http.post(url).bearer_auth(ADMIN).json(&json!({}));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string() }
    };
    let (order, held, late) = (start("order").await, start("held").await, start("slow").await);
    let until = |id: String, what: &'static str, done: fn(&Value) -> bool| {
        let (http, url) = (http.clone(), format!("{base}/v1/operations/{id}"));
        herald_testkit::eventually(what, Duration::from_secs(15), move || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let op: Value = http.get(url).bearer_auth(ADMIN).send().await.ok()?.json().await.ok()?;
                done(&op).then_some(())
            }
        })
    };
    until(order, "the order succeeded", |op| op["status"] == "succeeded").await;
    until(held.clone(), "the held operation needs a person", |op| op["needs_attention"] == true).await;
    until(late.clone(), "the slow operation is late", |op| op["delayed"] == true).await;

    let tools = tools.clone();
    tokio::task::spawn_blocking(move || {
        let env = [("HERALD_ADMIN_TOKEN", ADMIN), ("HELD_ID", held.as_str()), ("LATE_ID", late.as_str())];
        run_spec("operator.spec.mjs", &tools, &base, &env);
    })
    .await
    .unwrap();
}
