//! What the RabbitMQ tests share: the server's address, a prefix of a
//! test's own (removed when dropped, passed or failed, on the server and
//! in the store), herald's store of the test's own (its dead letters, and
//! the ledger of publish claims and definitions), and connecting with a
//! message that says what to start when no server answers.

#![allow(dead_code)] // each test binary uses its part

use std::sync::Arc;

use herald_broker::{DeadLetters, Ledger, contract};
use herald_rabbit::{RabbitBroker, RabbitConfig};
use herald_store::{
    BrokerLedger, EventDeadLetters, Node, Store, contract::postgres::TestSchema, postgres::PgStore, sqlite::SqliteStore,
};

/// Partitions in the tests: few queues to declare, and the contract
/// suite's keys `a` and `b` still apart.
pub const PARTITIONS: u16 = 4;

pub fn url() -> String {
    std::env::var("RABBITMQ_ADDRESS").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn node() -> Node {
    Node { id: "test".into(), lease: chrono::Duration::seconds(60) }
}

/// What a herald process keeps in its store, as the broker sees it.
#[derive(Clone)]
pub struct Kept {
    pub dead_letters: Arc<dyn DeadLetters>,
    pub ledger: Arc<dyn Ledger>,
}

impl Kept {
    pub fn in_store(store: Arc<dyn Store>) -> Self {
        Kept { dead_letters: Arc::new(EventDeadLetters(store.clone())), ledger: Arc::new(BrokerLedger(store)) }
    }
}

/// herald's store in `dir` (SQLite: one process at a time).
pub fn sqlite(dir: &std::path::Path) -> Kept {
    Kept::in_store(Arc::new(SqliteStore::open(dir, node()).expect("a store")))
}

/// herald's store on PostgreSQL at `url`, which other processes share.
pub async fn postgres(url: &str) -> Kept {
    Kept::in_store(Arc::new(PgStore::open(url, node(), 4).await.expect("a store on PostgreSQL")))
}

/// Where a prefix's herald processes keep their store.
enum Data {
    /// One SQLite store, shared by the processes of one test process.
    Sqlite(tempfile::TempDir),
    /// A PostgreSQL schema, for herald processes in processes of their own.
    Postgres(Box<TestSchema>),
}

/// A prefix of the test's own on the server, and the store of its herald
/// processes: all removed when this is dropped.
pub struct Prefix {
    pub url: String,
    pub name: String,
    pub kept: Kept,
    pub dead_letters: Arc<dyn DeadLetters>,
    data: Data,
}

impl Prefix {
    /// With a SQLite store, which the herald processes of this test
    /// process share.
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kept = sqlite(dir.path());
        Self::with(tag, kept, Data::Sqlite(dir))
    }

    /// With a PostgreSQL schema of its own, which herald processes in
    /// processes of their own share ([`Prefix::store_url`]).
    pub async fn on_postgres(tag: &str) -> Self {
        let schema = TestSchema::new().await;
        let kept = postgres(&schema.url()).await;
        Self::with(tag, kept, Data::Postgres(Box::new(schema)))
    }

    fn with(tag: &str, kept: Kept, data: Data) -> Self {
        let name = contract::prefix::name(tag);
        Prefix { url: url(), name, dead_letters: kept.dead_letters.clone(), kept, data }
    }

    /// The store's URL, for a herald process elsewhere: PostgreSQL only.
    pub fn store_url(&self) -> String {
        match &self.data {
            Data::Postgres(schema) => schema.url(),
            Data::Sqlite(_) => panic!("a SQLite store serves one process: use Prefix::on_postgres"),
        }
    }

    /// A herald process on this prefix: a connection of its own.
    pub async fn connect(&self) -> RabbitBroker {
        connect(&self.url, &self.name, self.kept.clone()).await
    }
}

/// A herald process on `prefix`, which the caller does not own.
pub async fn connect(url: &str, prefix: &str, kept: Kept) -> RabbitBroker {
    let config = RabbitConfig { prefix: prefix.to_string(), partitions: PARTITIONS, ..RabbitConfig::new(url) };
    RabbitBroker::connect(config, kept.dead_letters, kept.ledger).await.unwrap_or_else(|e| {
        panic!(
            "{e}\nthese tests need RabbitMQ 3.10 or later: start one at 127.0.0.1:5672 with guest/guest \
             (or set RABBITMQ_ADDRESS to one, amqp://user:password@host:port/vhost)"
        )
    })
}

impl Drop for Prefix {
    /// The SQLite store answers any runtime; PostgreSQL's connections
    /// belong to the test's, so the cleanup opens its own.
    fn drop(&mut self) {
        let (url, name, ledger) = (self.url.clone(), self.name.clone(), self.kept.ledger.clone());
        let store_url = match &self.data {
            Data::Postgres(schema) => Some(schema.url()),
            Data::Sqlite(_) => None,
        };
        contract::prefix::remove_on_own_thread(&self.name, move || async move {
            let ledger = match store_url {
                Some(store_url) => postgres(&store_url).await.ledger,
                None => ledger,
            };
            herald_rabbit::destroy(&url, &name, PARTITIONS, &*ledger).await
        });
    }
}
