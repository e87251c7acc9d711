//! The server's settings: defaults, then `herald.toml`, then `HERALD_…`
//! environment variables (`HERALD_DATA_DIR`, `HERALD_SERVICES__AUDIT__INSTANCES`),
//! then command-line flags, each layer overriding the one before.

mod broker;
mod load;

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use herald_core::Span;
use serde::Deserialize;

pub use crate::registry::ServiceConfig;
pub use herald_engine::config::{EmailConfig, EmailTls, EngineConfig, WebhookConfig};
pub use herald_http::auth::config::{AuthConfig, JwtAlgorithm, StaticRole, StaticToken, UserTokens};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The store's URL: `postgres://…` for several nodes on one database.
    /// By default, the embedded store in `data_dir`.
    pub store: Option<String>,
    /// Connections each node keeps to a PostgreSQL store (16 unless set;
    /// one of them listens for the other nodes). Not used by the embedded
    /// store.
    pub store_pool: Option<u32>,
    /// A folder of workflow files (`*.toml`).
    pub workflows: Option<PathBuf>,
    /// How services reach this server for step callbacks; defaults to
    /// `http://{listen}` (`https://` with `tls`).
    pub public_url: Option<String>,
    /// HTTPS on the listener, for those who expose herald without a proxy
    /// in front. Plain HTTP unless set.
    pub tls: Option<TlsConfig>,
    pub services: BTreeMap<String, ServiceConfig>,
    /// Where instances registered at run time may be.
    pub registry: crate::registry::allow::RegistryConfig,
    pub engine: EngineConfig,
    pub limits: Limits,
    pub auth: AuthConfig,
    /// Where workflows with `channels = ["webhook"]` send their notifications.
    pub webhook: Option<WebhookConfig>,
    /// The SMTP server for `channels = ["email"]`.
    pub email: Option<EmailConfig>,
    /// Subscriptions to topics, by name (more can be made at run time).
    pub subscriptions: BTreeMap<String, herald_broker::RawSubscription>,
    /// Topics and subscriptions: `broker = "nats://…"` (the URL alone), or
    /// a `[broker]` table with `url` and the settings below.
    #[serde(deserialize_with = "broker::url_or_table")]
    pub broker: BrokerConfig,
    /// The synchronous gateway, `ANY /gw/{service}/{path…}`.
    pub gateway: crate::gateway::GatewayConfig,
    /// Where spans go: read from the standard `OTEL_*` variables, never
    /// from the file (see `herald_trace::Settings`).
    #[serde(skip)]
    pub tracing: herald_trace::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:7070".parse().expect("a valid address"),
            data_dir: PathBuf::from("./herald-data"),
            store: None,
            store_pool: None,
            workflows: None,
            public_url: None,
            tls: None,
            services: BTreeMap::new(),
            registry: Default::default(),
            engine: EngineConfig::default(),
            limits: Limits::default(),
            auth: AuthConfig::default(),
            webhook: None,
            email: None,
            subscriptions: BTreeMap::new(),
            broker: BrokerConfig::default(),
            gateway: crate::gateway::GatewayConfig::default(),
            tracing: herald_trace::Settings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Where topics live: `nats://host:port` for NATS JetStream,
    /// `amqp://user:password@host:port/vhost` for RabbitMQ. By default, in
    /// the store.
    pub url: Option<String>,
    /// On a broker server, the names herald makes (streams, consumers,
    /// buckets, subjects) start with this, so deployments share a server
    /// apart.
    pub prefix: String,
    /// How long a re-publish of the same `source` and `id` is recognised
    /// and not stored again.
    pub dedupe_window: Span,
    /// Largest event accepted, in bytes of its JSON form.
    pub max_event_bytes: usize,
    /// Most events in one batch publish.
    pub max_batch: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            url: None,
            prefix: "herald".into(),
            dedupe_window: Span::from_millis(600_000),
            max_event_bytes: 256 * 1024,
            max_batch: 1000,
        }
    }
}

/// The listener's certificate and key: PEM files, read at start and again
/// on SIGHUP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Longest `Prefer: wait=N` honoured, in seconds.
    pub max_wait_seconds: u64,
    /// Open connections at once; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Event streams (timelines and the inbox) one end user may hold open
    /// at once; past it, 429. Services and admins are not counted.
    pub max_streams_per_user: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body_bytes: 1024 * 1024, max_wait_seconds: 60, max_connections: 16_384, max_streams_per_user: 8 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// `origin` is the file with the line and column, or the variable;
    /// `message` never holds a value of the configuration.
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Config {
    /// Defaults ← the file (if any) ← `HERALD_…` variables from `env`;
    /// tracing from its `OTEL_…` variables.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut config = load::load(file, env.iter().cloned())?;
        let otel = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        config.tracing = herald_trace::Settings::from_env(otel)
            .map_err(|e| ConfigError::Invalid { origin: "tracing".into(), message: e.to_string() })?;
        Ok(config)
    }

    /// The store's URL: `store`, or the embedded store in `data_dir`.
    pub fn store_url(&self) -> String {
        self.store.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.display()))
    }

    pub fn public_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.public_url.clone().unwrap_or_else(|| format!("{scheme}://{}", self.listen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_the_file_and_reads_lists_and_numbers() {
        let env = [
            ("HERALD_LISTEN".to_string(), "127.0.0.1:9".to_string()),
            ("HERALD_SERVICES__AUDIT__INSTANCES".to_string(), "http://127.0.0.1:1,http://127.0.0.1:2".to_string()),
            ("HERALD_ENGINE__MAX_IN_FLIGHT".to_string(), "7".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
            ("HERALD_CONFIG".to_string(), "elsewhere.toml".to_string()),
        ];
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.listen.port(), 9);
        assert_eq!(c.services["audit"].instances.len(), 2);
        assert_eq!(c.engine.max_in_flight, 7);
    }

    #[test]
    fn the_store_is_the_embedded_one_unless_a_url_is_given() {
        let c = Config::load(None, [("HERALD_DATA_DIR".to_string(), "/srv/h".to_string())]).unwrap();
        assert_eq!(c.store_url(), "sqlite:///srv/h");
        let url = "postgres://herald@db.internal/herald";
        let c = Config::load(None, [("HERALD_STORE".to_string(), url.to_string())]).unwrap();
        assert_eq!(c.store_url(), url);
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let env = [("HERALD_LISTNE".to_string(), "x".to_string())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("listne"), "{err}");
    }
}
