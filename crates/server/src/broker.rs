//! Where topics live: in the store (the default), or on the broker server
//! that `broker = "nats://…"` or `broker = "amqp://…"` names. The rest of
//! herald sees only the `Broker` trait either way, and every backend's
//! dead letters are the store's. RabbitMQ keeps its publish claims and
//! subscription definitions in the store too (its ledger).

use std::sync::Arc;

use anyhow::{Context, bail};
use herald_broker::{Broker, EngineConfig};
use herald_nats::NatsBroker;
use herald_rabbit::RabbitBroker;
use herald_store::{BrokerLedger, EventDeadLetters, Store};

use crate::config::BrokerConfig;

/// The broker `config.url` names, connected and set up; `None` without a
/// URL, when the store's own broker serves. NATS and RabbitMQ keep their
/// dead letters in `store`, herald's one list; RabbitMQ its ledger too.
pub async fn open(config: &BrokerConfig, store: &Arc<dyn Store>) -> anyhow::Result<Option<Arc<dyn Broker>>> {
    let Some(url) = &config.url else { return Ok(None) };
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let engine =
        EngineConfig { prefix: config.prefix.clone(), dedupe_window: config.dedupe_window.0, ..EngineConfig::new(url) };
    let dead = Arc::new(EventDeadLetters(store.clone()));
    match scheme {
        "nats" | "tls" => {
            let broker =
                NatsBroker::connect(engine, dead).await.context("herald cannot start: its broker did not open")?;
            Ok(Some(Arc::new(broker)))
        }
        "amqp" => {
            let ledger = Arc::new(BrokerLedger(store.clone()));
            let broker = RabbitBroker::connect(engine, dead, ledger)
                .await
                .context("herald cannot start: its broker did not open")?;
            Ok(Some(Arc::new(broker)))
        }
        _ => bail!(
            "the broker URL must start with nats:// (or tls://) or amqp://; without `broker`, topics live in the store"
        ),
    }
}

#[cfg(test)]
mod tests {
    use herald_store::{Node, sqlite::SqliteStore};

    use super::*;

    fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let node = Node { id: "test".into(), lease: chrono::Duration::seconds(60) };
        Arc::new(SqliteStore::open(dir.path(), node).unwrap())
    }

    #[tokio::test]
    async fn an_unknown_broker_is_refused_without_echoing_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig { url: Some("kafka://guest:s3cret@mq/".into()), ..BrokerConfig::default() };
        let err = open(&config, &store(&dir)).await.err().unwrap().to_string();
        assert!(err.contains("nats://") && err.contains("amqp://"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[tokio::test]
    async fn a_rabbitmq_that_does_not_answer_is_named_without_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            BrokerConfig { url: Some("amqp://guest:s3cret@127.0.0.1:1/%2f".into()), ..BrokerConfig::default() };
        let err = format!("{:#}", open(&config, &store(&dir)).await.err().unwrap());
        assert!(err.contains("RabbitMQ"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[tokio::test]
    async fn without_a_url_the_store_serves() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open(&BrokerConfig::default(), &store(&dir)).await.unwrap().is_none());
    }
}
