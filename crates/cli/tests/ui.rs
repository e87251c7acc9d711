//! The demo page in a real browser: `herald demo` started as a process, and
//! `crates/server/tests/ui/demo.spec.mjs` driving headless Chromium through
//! playwright-core places a declined order and checks what the page says.
//!
//! Needs Debian's `chromium` and playwright-core under `target/ui-tools`
//! (`.ci/run` installs both). Without them the test says so and passes,
//! unless `HERALD_TEST_UI=require` (as in CI), where it fails.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
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
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["demo", "--pace", "300ms", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the demo did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = Command::new("node")
        .arg(workspace().join("crates/server/tests/ui/demo.spec.mjs"))
        .current_dir(&tools)
        .env("HERALD_URL", format!("http://127.0.0.1:{port}"))
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
