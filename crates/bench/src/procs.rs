//! The processes under test: herald and the step worker, started from this
//! same binary in a temporary directory, or a herald given by URL.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use herald_testkit::{free_port, ready, workflow};

pub struct Procs {
    pub herald_url: String,
    pub worker_url: String,
    /// The herald process, when this harness started it (for RSS and CPU).
    pub herald: Option<Child>,
    worker: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for child in [self.herald.as_mut(), self.worker.as_mut()].into_iter().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The share of first attempts the worker sheds in `w1-shed`, in percent.
pub const SHED_PERCENT: u32 = 20;

/// The workflows of BENCH.md, on the worker at `worker`.
fn workflows(dir: &Path) -> anyhow::Result<()> {
    let timeout = "timeout = \"10s\"\n";
    let step = |name: &str, route: &str| workflow::call(name, "worker", &format!("/{route}/{name}"), timeout);
    const ORDER: [&str; 3] = ["reserve_inventory", "charge_payment", "send_confirmation"];
    std::fs::write(dir.join("w0.toml"), workflow::named("w0", [step("noop", "step")]))?;
    std::fs::write(dir.join("order.toml"), workflow::named("order", ORDER.map(|s| step(s, "step"))))?;
    std::fs::write(dir.join("watched.toml"), workflow::named("watched", [step("wait", "hold")]))?;
    // W1 on a worker shedding a share of first attempts; retried soon, so
    // the figure is herald's, not the retry policy's.
    let retry = "retry = { attempts = 5, initial = \"10ms\", max = \"100ms\" }\n";
    let shed = ORDER.map(|s| step(s, &format!("shed/{SHED_PERCENT}")) + retry);
    std::fs::write(dir.join("order-shed.toml"), workflow::named("order-shed", shed))?;
    Ok(())
}

/// Starts the worker, then herald (unless `url` names a running one).
pub fn start(url: Option<&str>, engine_paused: bool) -> anyhow::Result<Procs> {
    let exe = std::env::current_exe()?;
    let mut worker = Command::new(&exe)
        .args(["bench-worker", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the step worker")?;
    let worker_url = read_listening(&mut worker)?;
    if let Some(url) = url {
        let herald_url = url.trim_end_matches('/').into();
        return Ok(Procs { herald_url, worker_url, herald: None, worker: Some(worker), _dir: None });
    }
    let dir = tempfile::tempdir()?;
    let wf = dir.path().join("workflows");
    std::fs::create_dir(&wf)?;
    workflows(&wf)?;
    let port = free_port();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nworkflows = \"{}\"\n[engine]\npaused = {engine_paused}\n[services.worker]\ninstances = [\"{worker_url}\"]\n",
            dir.path().join("data").display(),
            wf.display()
        ),
    )?;
    let herald = Command::new(&exe)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting herald")?;
    let herald_url = format!("http://127.0.0.1:{port}");
    Ok(Procs { herald_url, worker_url, herald: Some(herald), worker: Some(worker), _dir: Some(dir) })
}

fn read_listening(child: &mut Child) -> anyhow::Result<String> {
    let out = child.stdout.take().context("worker stdout")?;
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    match line.trim().strip_prefix("listening ") {
        Some(url) => Ok(url.to_string()),
        None => bail!("the worker did not start: {line:?}"),
    }
}

pub async fn wait_ready(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    if !ready(http, url, Duration::from_secs(60)).await {
        bail!("herald at {url} did not become ready");
    }
    Ok(())
}

/// Peak resident memory (MiB) and CPU seconds of a process, from /proc.
pub fn usage(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((hwm_kb / 1024.0, ticks / 100.0))
}

/// Current resident memory (MiB).
pub fn rss(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}
