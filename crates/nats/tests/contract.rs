//! The NATS JetStream broker against the broker contract: the same tests
//! as the embedded backends.
//!
//! Each test has a prefix of its own (its streams, consumers, buckets and
//! subjects), removed when the test ends, passed or failed. Without a
//! server they fail, saying what to start.

use std::sync::Arc;

use herald_broker::{Broker, contract::Harness};
use herald_nats::{NatsBroker, NatsConfig};

struct Nats {
    broker: Arc<NatsBroker>,
    url: String,
    prefix: String,
}

impl Harness for Nats {
    fn broker(&self) -> Arc<dyn Broker> {
        self.broker.clone()
    }
}

impl Drop for Nats {
    /// Removes the test's prefix, on a thread of its own: a `Drop` cannot
    /// wait on the test's runtime, and runs when a test panics too.
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(herald_nats::destroy(&url, &prefix))
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("could not remove the test's streams under {}: {e}", self.prefix);
        }
    }
}

fn url() -> String {
    std::env::var("NATS_ADDRESS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn nats() -> Nats {
    let url = url();
    let prefix = format!("ht{:08x}", rand::random::<u32>());
    let config = NatsConfig { prefix: prefix.clone(), ..NatsConfig::new(&url) };
    let broker = NatsBroker::connect(config).await.unwrap_or_else(|e| {
        panic!(
            "{e}\nthese tests need NATS with JetStream: start `nats-server -js` at 127.0.0.1:4222 \
             (or set NATS_ADDRESS to one)"
        )
    });
    Nats { broker: Arc::new(broker), url, prefix }
}

mod contract_suite {
    use super::*;
    herald_broker::contract_tests!(nats());
}
