//! What the NATS tests share: the server's address, a prefix of a test's
//! own (removed when dropped, passed or failed), a dead-letter list (a
//! store in a temporary directory, as herald's would be), and connecting
//! with a message that says what to start when no server answers.

#![allow(dead_code)] // each test binary uses its part

use std::sync::Arc;

use herald_broker::{DeadLetters, contract};
use herald_nats::{NatsBroker, NatsConfig};
use herald_store::{EventDeadLetters, Node, sqlite::SqliteStore};

/// herald's dead-letter list: a store of its own, removed when dropped.
pub struct Letters {
    pub list: Arc<dyn DeadLetters>,
    _dir: tempfile::TempDir,
}

impl Letters {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = Node { id: "test".into(), lease: chrono::Duration::seconds(60) };
        let store = Arc::new(SqliteStore::open(dir.path(), node).unwrap());
        Letters { list: Arc::new(EventDeadLetters(store)), _dir: dir }
    }
}

pub fn url() -> String {
    std::env::var("NATS_ADDRESS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A prefix of the test's own on the server: its streams, consumers,
/// buckets and subjects, all removed when this is dropped.
pub struct Prefix {
    pub url: String,
    pub name: String,
    /// Shared by every process on the prefix, as herald's store would be.
    pub letters: Letters,
}

impl Prefix {
    pub fn new(tag: &str) -> Self {
        Prefix { url: url(), name: contract::prefix::name(tag), letters: Letters::new() }
    }

    /// A herald process on this prefix: a connection of its own.
    pub async fn connect(&self) -> NatsBroker {
        connect(&self.url, &self.name, self.letters.list.clone()).await
    }
}

/// A herald process on `prefix`, which the caller does not own.
pub async fn connect(url: &str, prefix: &str, dead: Arc<dyn DeadLetters>) -> NatsBroker {
    let config = NatsConfig { prefix: prefix.to_string(), ..NatsConfig::new(url) };
    NatsBroker::connect(config, dead).await.unwrap_or_else(|e| {
        panic!(
            "{e}\nthese tests need NATS with JetStream: start `nats-server -js` at 127.0.0.1:4222 \
             (or set NATS_ADDRESS to one)"
        )
    })
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        contract::prefix::remove_on_own_thread(
            &self.name,
            move || async move { herald_nats::destroy(&url, &name).await },
        );
    }
}
