//! The demo page in a real browser: `herald demo` started as a process, and
//! `crates/server/tests/ui/demo.spec.mjs` driving headless Chromium through
//! playwright-core places a declined order and checks what the page says.
//!
//! Needs Debian's `chromium` and playwright-core under `target/ui-tools`
//! (`.ci/run` installs both). Without them the test says so and passes,
//! unless `HERALD_TEST_UI=require` (as in CI), where it fails.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_demo_page_tells_a_declined_order_as_it_happened() {
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
        return;
    }

    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("demo.log");
    // herald picks its own port and says which: no free-port guess to race.
    let mut demo = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["demo", "--pace", "300ms", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("Open ").and_then(|l| l.split_whitespace().next()) {
                let _ = tx.send(url.trim_end_matches('/').to_string());
            }
        }
    });
    let Ok(base) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = demo.kill();
        let _ = demo.wait();
        panic!("the demo did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    };

    let out = Command::new("node")
        .arg(workspace().join("crates/server/tests/ui/demo.spec.mjs"))
        .current_dir(&tools)
        .env("HERALD_URL", &base)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    let _ = demo.kill();
    let _ = demo.wait();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains(" 0 failed"), "{report}");
}
