//! The `herald` binary as a test's child process.

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
};

/// What a test's herald process is started with.
pub enum Serve<'a> {
    /// `herald serve --config <file>`.
    Config(&'a Path),
    /// `herald serve` told everything by flags: this store, this data
    /// directory, a port of its own choosing.
    Store { store: &'a str, data_dir: &'a Path },
    /// `herald demo` at `pace` (`0ms`: no pause), its data in `data_dir`,
    /// on `store` and with `config` if given, on a port of its own
    /// choosing: its stdout is piped, for [`demo`] to read where that is.
    Demo { pace: &'a str, data_dir: &'a Path, store: Option<&'a str>, config: Option<&'a Path> },
}

/// `bin` (a test's `env!("CARGO_BIN_EXE_herald")`) started as `how`
/// says, its warnings on the test's stderr; the caller may set more
/// (environment, where the log or the output goes) before spawning.
pub fn serve(bin: impl AsRef<OsStr>, how: Serve) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("RUST_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::inherit());
    match how {
        Serve::Config(config) => {
            cmd.args(["serve", "--config"]).arg(config);
        }
        Serve::Store { store, data_dir } => {
            cmd.args(["serve", "--listen", "127.0.0.1:0", "--store", store, "--data-dir"]).arg(data_dir);
        }
        Serve::Demo { pace, data_dir, store, config } => {
            cmd.args(["demo", "--pace", pace, "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
            if let Some(store) = store {
                cmd.args(["--store", store]);
            }
            if let Some(config) = config {
                cmd.arg("--config").arg(config);
            }
            cmd.stdout(Stdio::piped());
        }
    }
    cmd
}

/// Where a demo started by [`serve`] listens, as its banner says
/// (`Open <url>/ …`), without the trailing `/`; `None` if it said nothing
/// of it within `within`. Blocks its thread. The rest of the output is
/// read too, so that the demo never waits on a full pipe.
fn announced(stdout: ChildStdout, within: Duration) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("Open ").and_then(|l| l.split_whitespace().next()) {
                let _ = tx.send(url.trim_end_matches('/').to_string());
            }
        }
    });
    rx.recv_timeout(within).ok()
}

/// A child process, killed when the test ends, passed or failed.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A demo started as `how` says (a [`Serve::Demo`]), its log in `log`,
/// and its base URL once it says it listens. Fails the test, with the
/// log, when it has not said so within a minute. Blocks its thread.
pub fn demo(bin: &str, how: Serve, log: &Path) -> (Running, String) {
    let mut demo = Running(serve(bin, how).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap());
    let Some(base) = announced(demo.0.stdout.take().unwrap(), Duration::from_secs(60)) else {
        panic!("the demo did not start:\n{}", std::fs::read_to_string(log).unwrap_or_default());
    };
    (demo, base)
}

/// Sends `sig` (`"TERM"`, `"HUP"`, `"STOP"`…) to process `pid`, as an
/// operator's `kill` does, failing the test if it could not be sent.
pub fn signal(pid: u32, sig: &str) {
    let sent = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -{sig} {pid}");
}

/// Stops a herald as an operator does (SIGTERM), failing the test unless
/// it exits cleanly.
pub fn stop(mut herald: Child) {
    signal(herald.id(), "TERM");
    let status = herald.wait().unwrap();
    assert!(status.success(), "SIGTERM stops herald cleanly (exit {status:?})");
}
