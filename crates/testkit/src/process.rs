//! The `herald` binary as a test's child process.

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// `bin serve --config <config>` (`bin`: the test's
/// `env!("CARGO_BIN_EXE_herald")`), its warnings on the test's stderr; the
/// caller may set more (environment, where the log goes) before spawning.
pub fn serve(bin: &str, config: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--config"]).arg(config).env("RUST_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::inherit());
    cmd
}

/// A child process, killed when the test ends, passed or failed.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bin demo --listen 127.0.0.1:0 <args>`, its log in `log`, and its base
/// URL once it says it listens: it picks its own port and prints it, so
/// there is no free-port guess to race. Fails the test, with the log,
/// when it has not said so within a minute.
pub fn demo(bin: &str, args: &[&OsStr], log: &Path) -> (Running, String) {
    let mut demo = Running(
        Command::new(bin)
            .args(["demo", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    let stdout = demo.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("Open ").and_then(|l| l.split_whitespace().next()) {
                let _ = tx.send(url.trim_end_matches('/').to_string());
            }
        }
    });
    let Ok(base) = rx.recv_timeout(Duration::from_secs(60)) else {
        panic!("the demo did not start:\n{}", std::fs::read_to_string(log).unwrap_or_default());
    };
    (demo, base)
}
