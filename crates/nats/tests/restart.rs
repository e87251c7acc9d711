//! The NATS server restarted under load (SIGKILL, then started again on
//! the same port and store directory): no publish that was acknowledged is
//! lost, publishes retried across the outage are stored once, and
//! deliveries resume. The test's body is herald-broker's
//! (`contract::process`); here is the server it restarts.
//!
//! Runs a NATS server of its own (`nats-server` on the PATH), so the shared
//! one at 127.0.0.1:4222 is never restarted.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use herald_broker::contract::process;
use herald_testkit::eventually_blocking;

mod common;

/// A NATS server of the test's own, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let port = herald_testkit::free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = spawn(port, dir.path());
        let server = Server { child, port, dir };
        server.wait_listening();
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn wait_listening(&self) {
        let listening = || std::net::TcpStream::connect(("127.0.0.1", self.port)).ok();
        eventually_blocking(
            &format!("nats-server listening on port {}", self.port),
            Duration::from_secs(10),
            listening,
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(port: u16, dir: &std::path::Path) -> Child {
    Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("this test runs a NATS server of its own: install nats-server ({e})"))
}

impl process::Engine for Server {
    /// SIGKILL, then the same port and store directory again.
    fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = spawn(self.port, self.dir.path());
        self.wait_listening();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_restarted_under_load_loses_no_acknowledged_publish() {
    let mut server = Server::start();
    let letters = common::Letters::new();
    let broker = Arc::new(common::connect(&server.url(), "hr", letters.list.clone()).await);
    let pace = process::Pace {
        publish_within: Duration::from_secs(60),
        started_within: Duration::from_secs(20),
        retry_after: Duration::from_millis(50),
        empty_pause: Duration::from_millis(20),
    };
    process::a_restart_under_load_loses_no_acknowledged_publish(broker, &mut server, pace).await;
}
