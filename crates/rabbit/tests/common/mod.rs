//! What the RabbitMQ tests share: the server's address, a prefix of a
//! test's own (removed when dropped, passed or failed), herald's dead
//! letters in a store of the test's own, and connecting with a message
//! that says what to start when no server answers.

#![allow(dead_code)] // each test binary uses its part

use std::sync::Arc;

use herald_broker::DeadLetters;
use herald_rabbit::{RabbitBroker, RabbitConfig};
use herald_store::{EventDeadLetters, Node, sqlite::SqliteStore};

/// Partitions in the tests: few queues to declare, and the contract
/// suite's keys `a` and `b` still apart.
pub const PARTITIONS: u16 = 4;

pub fn url() -> String {
    std::env::var("RABBITMQ_ADDRESS").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A prefix of the test's own on the server, and the dead letters of its
/// herald processes: all removed when this is dropped.
pub struct Prefix {
    pub url: String,
    pub name: String,
    pub dead_letters: Arc<dyn DeadLetters>,
    _dir: tempfile::TempDir,
}

impl Prefix {
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Prefix {
            url: url(),
            name: format!("{tag}{:08x}", rand::random::<u32>()),
            dead_letters: dead_letters(dir.path()),
            _dir: dir,
        }
    }

    /// A herald process on this prefix: a connection of its own.
    pub async fn connect(&self) -> RabbitBroker {
        connect(&self.url, &self.name, self.dead_letters.clone()).await
    }
}

/// herald's dead letters in a store of their own in `dir`.
pub fn dead_letters(dir: &std::path::Path) -> Arc<dyn DeadLetters> {
    let node = Node { id: "test".into(), lease: chrono::Duration::seconds(60) };
    Arc::new(EventDeadLetters(Arc::new(SqliteStore::open(dir, node).expect("a store"))))
}

/// A herald process on `prefix`, which the caller does not own.
pub async fn connect(url: &str, prefix: &str, dead_letters: Arc<dyn DeadLetters>) -> RabbitBroker {
    let config = RabbitConfig { prefix: prefix.to_string(), partitions: PARTITIONS, ..RabbitConfig::new(url) };
    RabbitBroker::connect(config, dead_letters).await.unwrap_or_else(|e| {
        panic!(
            "{e}\nthese tests need RabbitMQ 3.10 or later: start one at 127.0.0.1:5672 with guest/guest \
             (or set RABBITMQ_ADDRESS to one, amqp://user:password@host:port/vhost)"
        )
    })
}

impl Drop for Prefix {
    /// On a thread of its own: a `Drop` cannot wait on the test's runtime,
    /// and runs when a test panics too.
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(herald_rabbit::destroy(&url, &name, PARTITIONS))
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("could not remove the test's queues under {}: {e}", self.name);
        }
    }
}
