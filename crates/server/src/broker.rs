//! Where topics live: in the store (the default), or on the broker server
//! that `broker = "nats://…"` names. The rest of herald sees only the
//! `Broker` trait either way, and every backend's dead letters are the
//! store's.

use std::sync::Arc;

use anyhow::{Context, bail};
use herald_broker::Broker;
use herald_nats::{NatsBroker, NatsConfig};
use herald_store::{EventDeadLetters, Store};

use crate::config::BrokerConfig;

/// The broker `config.url` names, connected and set up; `None` without a
/// URL, when the store's own broker serves.
pub async fn open(config: &BrokerConfig, store: &Arc<dyn Store>) -> anyhow::Result<Option<Arc<dyn Broker>>> {
    let Some(url) = &config.url else { return Ok(None) };
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    match scheme {
        "nats" | "tls" => {
            let nats = NatsConfig {
                prefix: config.prefix.clone(),
                dedupe_window: config.dedupe_window.0,
                ..NatsConfig::new(url.clone())
            };
            let dead = Arc::new(EventDeadLetters(store.clone()));
            let broker =
                NatsBroker::connect(nats, dead).await.context("herald cannot start: its broker did not open")?;
            Ok(Some(Arc::new(broker)))
        }
        _ => bail!("the broker URL must start with nats:// (or tls://); without `broker`, topics live in the store"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let node = herald_store::Node { id: "test".into(), lease: chrono::Duration::seconds(60) };
        Arc::new(herald_store::sqlite::SqliteStore::open(dir.path(), node).unwrap())
    }

    #[tokio::test]
    async fn an_unknown_broker_is_refused_without_echoing_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig { url: Some("mqtt://guest:s3cret@mq/".into()), ..BrokerConfig::default() };
        let err = open(&config, &store(&dir)).await.err().unwrap().to_string();
        assert!(err.contains("nats://"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[tokio::test]
    async fn without_a_url_the_store_serves() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open(&BrokerConfig::default(), &store(&dir)).await.unwrap().is_none());
    }
}
