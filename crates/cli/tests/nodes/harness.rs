//! Several real `herald serve` processes sharing one store: started from
//! one configuration on ports of their own, waited on until ready, and
//! killed, stopped, paused, resumed and restarted by signal. Every child is
//! killed when the [`Cluster`] is dropped, a panicking test's too, and
//! then a panicking test's node logs are printed.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Child,
    time::Duration,
};

use herald_testkit::{
    client_within, eventually, free_port,
    process::{Serve, serve},
    ready, until,
};

/// How the nodes of a [`Cluster`] are configured: all alike, but for the
/// port and data directory each gets.
pub struct Spec {
    pub nodes: usize,
    /// The shared store's URL (`postgres://…`).
    pub store: String,
    /// Workflow files, as (file name, text).
    pub workflows: Vec<(String, String)>,
    /// Services, as (name, instance URL).
    pub services: Vec<(String, String)>,
    /// TOML added after the top-level keys: `[engine]` and other tables.
    pub extra: String,
    /// `RUST_LOG` of every node (`warn` unless set).
    pub log: String,
}

impl Spec {
    /// `nodes` nodes on `store`, with no workflow, no service and herald's
    /// defaults until told otherwise.
    pub fn new(nodes: usize, store: impl Into<String>) -> Self {
        Spec {
            nodes,
            store: store.into(),
            workflows: vec![],
            services: vec![],
            extra: String::new(),
            log: "warn".into(),
        }
    }

    pub fn workflow(mut self, file: &str, text: impl Into<String>) -> Self {
        self.workflows.push((file.into(), text.into()));
        self
    }

    pub fn service(mut self, name: &str, url: &str) -> Self {
        self.services.push((name.into(), url.into()));
        self
    }

    /// Adds TOML (whole tables, e.g. `[engine]\nlease = "12s"\n`).
    pub fn toml(mut self, extra: &str) -> Self {
        self.extra.push_str(extra);
        self
    }
}

/// One node: its port, its configuration file, and its process while it runs.
pub struct Node {
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    config: PathBuf,
    log_file: PathBuf,
    filter: String,
    child: Option<Child>,
}

impl Node {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the node wrote to stderr (its log) so far, across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "node on port {} is already running", self.port);
        let log = File::options().create(true).append(true).open(&self.log_file).unwrap();
        let child = serve(env!("CARGO_BIN_EXE_herald"), Serve::Config(&self.config))
            .env("RUST_LOG", &self.filter)
            .stderr(log)
            .spawn()
            .expect("the herald binary starts");
        self.child = Some(child);
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().unwrap_or_else(|| panic!("node on port {} is not running", self.port));
        herald_testkit::process::signal(pid, signal);
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// Every request with a deadline (30 s), so a hung one fails the test.
    pub http: reqwest::Client,
    /// The nodes' configurations, data directories and logs.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Writes the configuration and starts every node, waiting until each
    /// is ready.
    pub async fn start(spec: Spec) -> Self {
        let mut cluster = Self::configure(spec);
        for i in 0..cluster.nodes.len() {
            cluster.nodes[i].spawn();
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_ready(i).await;
        }
        cluster
    }

    /// The nodes' files, none of them started.
    pub fn configure(spec: Spec) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let wf_dir = dir.path().join("workflows");
        std::fs::create_dir_all(&wf_dir).unwrap();
        for (file, text) in &spec.workflows {
            std::fs::write(wf_dir.join(file), text).unwrap();
        }
        let nodes = (0..spec.nodes).map(|i| node_files(dir.path(), i, &wf_dir, &spec)).collect();
        Cluster { nodes, http: client_within(Duration::from_secs(30)), _dir: dir }
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// The nodes' process ids, of those running.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }

    /// Starts node `i` again, on its port and configuration.
    pub fn spawn(&mut self, i: usize) {
        self.nodes[i].spawn();
    }

    /// Waits (30 s at most) until node `i` answers `/readyz` with 200.
    pub async fn wait_ready(&self, i: usize) {
        let node = &self.nodes[i];
        if !ready(&self.http, &node.base, Duration::from_secs(30)).await {
            panic!("node {i} (port {}) did not become ready; its log:\n{}", node.port, node.log());
        }
    }

    /// Restarts node `i` on the same port and waits until it is ready.
    pub async fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.wait_ready(i).await;
    }

    /// SIGKILL, and reaps the process.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.nodes[i].child.take().expect("a running node");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, and waits (within `within`) for the node to exit; its exit
    /// status.
    pub async fn terminate(&mut self, i: usize, within: Duration) -> std::process::ExitStatus {
        self.nodes[i].signal("TERM");
        let child = self.nodes[i].child.as_mut().unwrap();
        let what = format!("node {i} exits after SIGTERM");
        let status = eventually(&what, within, || std::future::ready(child.try_wait().unwrap())).await;
        self.nodes[i].child = None;
        status
    }

    /// SIGSTOP: the process is frozen until [`Cluster::resume`].
    pub fn pause(&self, i: usize) {
        self.nodes[i].signal("STOP");
    }

    /// SIGCONT.
    pub fn resume(&self, i: usize) {
        self.nodes[i].signal("CONT");
    }

    /// Waits until node `i`'s log holds `text`; `None` after `within`.
    pub async fn logged(&self, i: usize, text: &str, within: Duration) -> Option<()> {
        until(within, || std::future::ready(self.nodes[i].log().contains(text).then_some(()))).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // SIGKILL ends a stopped process too.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for (i, node) in self.nodes.iter().enumerate() {
                let log = node.log();
                let tail: String =
                    log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                eprintln!("--- node {i} (port {}), the end of its log:\n{tail}", node.port);
            }
        }
    }
}

fn node_files(dir: &Path, i: usize, wf_dir: &Path, spec: &Spec) -> Node {
    let port = free_port();
    let mut toml = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nworkflows = \"{}\"\nstore = \"{}\"\n{}\n",
        dir.join(format!("data-{i}")).display(),
        wf_dir.display(),
        spec.store,
        spec.extra
    );
    for (name, url) in &spec.services {
        toml.push_str(&format!("[services.{name}]\ninstances = [\"{url}\"]\n"));
    }
    let config = dir.join(format!("herald-{i}.toml"));
    std::fs::write(&config, toml).unwrap();
    Node {
        port,
        base: format!("http://127.0.0.1:{port}"),
        config,
        log_file: dir.join(format!("node-{i}.log")),
        filter: spec.log.clone(),
        child: None,
    }
}
