//! One way in: the store and the broker for a URL, whatever the backend.
//! The server names a URL and gets the two traits back; no caller sees a
//! backend's own types.

use std::{path::PathBuf, sync::Arc, time::Duration};

use herald_broker::Broker;

use crate::{Error, Node, Result, Store, sqlite::SqliteStore};

/// What [`open`] needs.
pub struct StoreConfig {
    /// `sqlite://<directory>` (a path alone is taken as that too).
    pub url: String,
    /// This node, and how long its claims last.
    pub node: Node,
    /// How long a re-published event's source and id are recognised.
    pub dedupe_window: Duration,
}

/// The store and the broker a URL names.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn Broker>,
}

/// Opens the backend `config.url` names (creating it if needed).
pub fn open(config: &StoreConfig) -> Result<Opened> {
    let (scheme, rest) = config.url.split_once("://").unwrap_or(("sqlite", config.url.as_str()));
    match scheme {
        "sqlite" => {
            let sqlite = Arc::new(
                SqliteStore::open(&PathBuf::from(rest), config.node.clone())?.with_dedupe_window(config.dedupe_window),
            );
            Ok(Opened { store: sqlite.clone(), broker: sqlite })
        }
        other => Err(Error::Unsupported(format!("`{other}://` is not a store herald knows (sqlite://…)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: String) -> StoreConfig {
        let node = Node { id: "n".into(), lease: chrono::Duration::seconds(60) };
        StoreConfig { url, node, dedupe_window: Duration::from_secs(60) }
    }

    #[tokio::test]
    async fn a_sqlite_url_or_a_bare_path_opens_the_embedded_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a").display());
        let opened = open(&config(url)).unwrap();
        assert!(opened.store.list(Default::default()).await.unwrap().is_empty());
        assert!(open(&config(dir.path().join("b").display().to_string())).is_ok());
        assert!(dir.path().join("b/herald.db").exists());
    }

    #[test]
    fn an_unknown_scheme_is_refused_by_name() {
        let err = open(&config("mysql://x".into())).err().unwrap().to_string();
        assert!(err.contains("mysql"), "{err}");
    }
}
