//! A place of a test's own on a broker server: a prefix on NATS JetStream
//! or RabbitMQ, and on RabbitMQ herald's store as a PostgreSQL schema of
//! its own (it holds the prefix's subscription definitions, which removing
//! the prefix reads while herald still runs). All removed when dropped,
//! passed or failed. Without the servers the tests fail, saying what to
//! start.

use std::sync::Arc;

use herald_store::contract::postgres::TestSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Nats,
    Rabbit,
}

/// A prefix of the test's own on a broker server, removed when dropped.
pub struct BrokerPlace {
    pub engine: Engine,
    pub url: String,
    pub prefix: String,
    /// herald's store on RabbitMQ (see above), dropped after the prefix.
    schema: Option<TestSchema>,
}

impl BrokerPlace {
    /// NATS JetStream at 127.0.0.1:4222, or `NATS_ADDRESS`.
    pub fn nats() -> Self {
        let url = std::env::var("NATS_ADDRESS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        BrokerPlace { engine: Engine::Nats, url, prefix: prefix(), schema: None }
    }

    /// RabbitMQ at 127.0.0.1:5672 with guest/guest, or `RABBITMQ_ADDRESS`,
    /// and PostgreSQL for herald's store.
    pub async fn rabbit() -> Self {
        let url = std::env::var("RABBITMQ_ADDRESS").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let schema = Some(TestSchema::new().await);
        BrokerPlace { engine: Engine::Rabbit, url, prefix: prefix(), schema }
    }

    /// herald's configuration, pointed here.
    pub fn configure(&self, c: &mut herald_server::Config) {
        c.broker.url = Some(self.url.clone());
        c.broker.prefix = self.prefix.clone();
        if let Some(schema) = &self.schema {
            c.store = Some(schema.url());
        }
    }
}

fn prefix() -> String {
    format!("hp{:08x}", rand::random::<u32>())
}

impl Drop for BrokerPlace {
    fn drop(&mut self) {
        let (engine, url, prefix) = (self.engine, self.url.clone(), self.prefix.clone());
        let store = self.schema.as_ref().map(|s| s.url());
        // A Drop cannot wait on the test's runtime: a thread with its own
        // (and its own connections).
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(remove(engine, &url, &prefix, store))
        });
        if let Ok(Err(e)) = done.join() {
            eprintln!("could not remove the test's broker objects under {}: {e}", self.prefix);
        }
    }
}

async fn remove(engine: Engine, url: &str, prefix: &str, store: Option<String>) -> Result<(), String> {
    match engine {
        Engine::Nats => herald_nats::destroy(url, prefix).await.map(drop).map_err(|e| e.to_string()),
        Engine::Rabbit => {
            let store = store.ok_or("no store")?;
            let node = herald_store::Node { id: "cleanup".into(), lease: chrono::Duration::seconds(60) };
            let store = herald_store::postgres::PgStore::open(&store, node, 2).await.map_err(|e| e.to_string())?;
            let ledger = herald_store::BrokerLedger(Arc::new(store));
            herald_rabbit::destroy(url, prefix, herald_rabbit::DEFAULT_PARTITIONS, &ledger).await
        }
    }
}
