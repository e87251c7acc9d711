//! One way in: the store and the broker for a URL, whatever the backend.
//! The server names a URL and gets the two traits back; no caller sees a
//! backend's own types.

use std::{path::PathBuf, sync::Arc, time::Duration};

use herald_broker::Broker;

use crate::{
    Error, Node, Result, Store,
    postgres::{self, PgStore},
    sqlite::SqliteStore,
};

/// What [`open`] needs.
pub struct StoreConfig {
    /// `sqlite://<directory>` (a path alone is taken as that too), or
    /// `postgres://…` / `postgresql://…` (a libpq-style URL).
    pub url: String,
    /// This node, and how long its claims last.
    pub node: Node,
    /// How long a re-published event's source and id are recognised.
    pub dedupe_window: Duration,
    /// Connections a networked store (PostgreSQL) keeps open; `None`, its
    /// default. The embedded store has its own.
    pub pool: Option<u32>,
}

/// The store and the broker a URL names.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn Broker>,
}

/// Opens the backend `config.url` names (creating it if needed): on
/// PostgreSQL, connects and brings the schema up to date.
pub async fn open(config: &StoreConfig) -> Result<Opened> {
    let (scheme, rest) = config.url.split_once("://").unwrap_or(("sqlite", config.url.as_str()));
    match scheme {
        "sqlite" => {
            let sqlite = Arc::new(
                SqliteStore::open(&PathBuf::from(rest), config.node.clone())?.with_dedupe_window(config.dedupe_window),
            );
            Ok(Opened { store: sqlite.clone(), broker: sqlite })
        }
        "postgres" | "postgresql" => {
            let pg = Arc::new(
                PgStore::open(&config.url, config.node.clone(), config.pool.unwrap_or(postgres::POOL))
                    .await?
                    .with_dedupe_window(config.dedupe_window),
            );
            Ok(Opened { store: pg.clone(), broker: pg })
        }
        other => {
            Err(Error::Unsupported(format!("`{other}://` is not a store herald knows (sqlite://…, postgres://…)")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: String) -> StoreConfig {
        let node = Node { id: "n".into(), lease: chrono::Duration::seconds(60) };
        StoreConfig { url, node, dedupe_window: Duration::from_secs(60), pool: None }
    }

    #[tokio::test]
    async fn a_sqlite_url_or_a_bare_path_opens_the_embedded_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a").display());
        let opened = open(&config(url)).await.unwrap();
        assert!(opened.store.list(Default::default()).await.unwrap().is_empty());
        assert!(open(&config(dir.path().join("b").display().to_string())).await.is_ok());
        assert!(dir.path().join("b/herald.db").exists());
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_by_name() {
        let err = open(&config("mysql://x".into())).await.err().unwrap().to_string();
        assert!(err.contains("mysql"), "{err}");
    }

    #[tokio::test]
    async fn a_malformed_postgres_url_is_refused_without_its_password() {
        let err = open(&config("postgres://herald:s3cret@db:notaport/herald".into())).await.err().unwrap().to_string();
        assert!(err.contains("PostgreSQL URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
