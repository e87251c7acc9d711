//! The processes under test: herald and the step worker, started from this
//! same binary in a temporary directory, or a herald given by URL.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use herald_testkit::{
    free_port,
    process::{Serve, serve},
    ready, workflow,
};

pub struct Procs {
    /// The first node's URL.
    pub herald_url: String,
    /// Every node's URL, the first first.
    pub herald_urls: Vec<String>,
    pub worker_url: String,
    /// The herald processes, when this harness started them (for RSS and
    /// CPU), one a node.
    pub heralds: Vec<Child>,
    pub worker: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Procs {
    /// Where node `node` started here keeps its embedded store.
    pub fn data_dir(&self, node: usize) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|d| d.path().join(format!("data-{node}")))
    }

    /// Stops the herald nodes (their connections close, so the store sees
    /// them gone).
    pub fn stop_heralds(&mut self) {
        for child in &mut self.heralds {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.heralds.clear();
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.stop_heralds();
        if let Some(child) = self.worker.as_mut() {
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

/// What herald to run the workload against.
pub struct Target<'a> {
    /// A running herald (with the bench workflows) instead of starting one.
    pub url: Option<&'a str>,
    /// The store of the heralds started here; the embedded one by default.
    pub store: Option<&'a str>,
    /// Their broker's URL and the prefix of the run's names on it; topics
    /// live in the store by default.
    pub broker: Option<(&'a str, &'a str)>,
    /// Herald processes to start on that store.
    pub nodes: usize,
    pub engine_paused: bool,
}

/// Starts the worker, then herald's nodes (unless `url` names a running
/// herald).
pub fn start(t: Target) -> anyhow::Result<Procs> {
    let exe = std::env::current_exe()?;
    let mut worker = Command::new(&exe)
        .args(["bench-worker", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the step worker")?;
    let worker_url = read_listening(&mut worker)?;
    if let Some(url) = t.url {
        let herald_url: String = url.trim_end_matches('/').into();
        let herald_urls = vec![herald_url.clone()];
        return Ok(Procs { herald_url, herald_urls, worker_url, heralds: vec![], worker: Some(worker), _dir: None });
    }
    let dir = tempfile::tempdir()?;
    let wf = dir.path().join("workflows");
    std::fs::create_dir(&wf)?;
    workflows(&wf)?;
    let store = t.store.map_or(String::new(), |s| format!("store = {}\n", serde_json::Value::from(s)));
    let broker = t.broker.map_or(String::new(), |(url, prefix)| {
        format!("[broker]\nurl = {}\nprefix = {}\n", serde_json::Value::from(url), serde_json::Value::from(prefix))
    });
    let mut procs = Procs {
        herald_url: String::new(),
        herald_urls: vec![],
        worker_url: worker_url.clone(),
        heralds: vec![],
        worker: Some(worker),
        _dir: None,
    };
    for node in 0..t.nodes.max(1) {
        let port = free_port();
        let config = dir.path().join(format!("herald-{node}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nworkflows = \"{}\"\n{store}[engine]\npaused = {}\n[services.worker]\ninstances = [\"{worker_url}\"]\n{broker}",
                dir.path().join(format!("data-{node}")).display(),
                wf.display(),
                t.engine_paused,
            ),
        )?;
        let herald = serve(&exe, Serve::Config(&config))
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .spawn()
            .context("starting herald")?;
        procs.heralds.push(herald);
        procs.herald_urls.push(format!("http://127.0.0.1:{port}"));
    }
    procs.herald_url = procs.herald_urls[0].clone();
    procs._dir = Some(dir);
    Ok(procs)
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
    Some((hwm_kb / 1024.0, cpu_s(&pid.to_string())?))
}

/// CPU (user + system) seconds of a process (`self` for this one).
pub fn cpu_s(pid: &str) -> Option<f64> {
    let (_, [user, system, ..]) = cpu_ticks(pid)?;
    Some((user + system) as f64 / 100.0)
}

/// A process's command name and its CPU ticks: user, system, and those of
/// its children it has waited for (user, system).
pub fn cpu_ticks(pid: &str) -> Option<(String, [u64; 4])> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let (head, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let name = head.split_once('(')?.1.to_string();
    Some((name, [tick(11)?, tick(12)?, tick(13)?, tick(14)?]))
}

/// Current resident memory (MiB).
pub fn rss(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}
