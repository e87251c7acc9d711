//! The NATS server restarted under load (SIGKILL, then started again on
//! the same port and store directory): no publish that was acknowledged is
//! lost, publishes retried across the outage are stored once, and
//! deliveries resume.
//!
//! Runs a NATS server of its own (`nats-server` on the PATH), so the shared
//! one at 127.0.0.1:4222 is never restarted.

use std::{
    collections::BTreeSet,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use herald_broker::{Broker, contract};
use serde_json::json;

mod common;

const EVENTS: usize = 300;

/// A NATS server of the test's own, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = spawn(port, dir.path());
        let server = Server { child, port, dir };
        server.wait_listening();
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, then the same port and store directory again.
    fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = spawn(self.port, self.dir.path());
        self.wait_listening();
    }

    fn wait_listening(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nats-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_restarted_under_load_loses_no_acknowledged_publish() {
    let mut server = Server::start();
    let letters = common::Letters::new();
    let broker = Arc::new(common::connect(&server.url(), "hr", letters.list.clone()).await);
    let sub = json!({"topic": "t", "retry": {"attempts": 20}});
    broker.put_subscription(&contract::subscription("s", sub)).await.unwrap();

    // One publisher, each event retried until the server acknowledges it.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let publisher = {
        let (broker, acked) = (broker.clone(), acked.clone());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            for i in 0..EVENTS {
                let key = ["a", "b", "c"][i % 3];
                let e = contract::event(&format!("e{i:03}"), "T", (i % 2 == 0).then_some(key));
                loop {
                    assert!(tokio::time::Instant::now() < deadline, "publishing never came back");
                    match broker.publish("t", vec![e.clone()]).await {
                        Ok(p) => {
                            acked.lock().unwrap().push((p[0].id.clone(), p[0].seq));
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < EVENTS / 3 {
        assert!(tokio::time::Instant::now() < deadline, "publishing did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_kill = acked.lock().unwrap().len();
    tokio::task::block_in_place(|| server.restart());
    publisher.await.unwrap();

    // Every acknowledged event comes out, whatever the outage cost.
    let acked: Vec<(String, u64)> = acked.lock().unwrap().clone();
    let mut delivered = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while delivered.len() < EVENTS {
        assert!(tokio::time::Instant::now() < deadline, "deliveries stopped at {} of {EVENTS}", delivered.len());
        let Ok(msgs) = broker.pull("s", 50, Duration::from_secs(30)).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let ids: Vec<String> = msgs.iter().map(|m| m.ack_id.clone()).collect();
        delivered.extend(msgs.into_iter().map(|m| m.event.id));
        if !ids.is_empty() {
            broker.ack("s", &ids).await.unwrap();
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    assert!(at_kill < EVENTS, "the server was killed while events were still being published");
    assert_eq!(acked.len(), EVENTS, "every event was acknowledged in the end");
    let stored: BTreeSet<u64> = acked.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(stored.len(), EVENTS, "a publish retried across the outage was stored once");
    let published: BTreeSet<String> = acked.into_iter().map(|(id, _)| id).collect();
    assert_eq!(delivered, published, "every acknowledged publish was delivered");
}
