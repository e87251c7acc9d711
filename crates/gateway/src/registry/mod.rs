//! The service registry: every service herald calls, by name, and its
//! instances — from the configuration, or registered at run time with a
//! TTL heartbeat. Every call herald makes (step calls, pushed events,
//! webhooks, the gateway) picks an instance here and reports how it went,
//! so all of them get the same balancing, health checks and circuit
//! breakers.
//!
//! - [`allow`] — where instances registered at run time may be.
//! - [`admit`] — the one way to a call: the service's breaker, its
//!   concurrency limit and an instance, taken together or refused with
//!   when to ask again; and the [`Lease`] that reports the answer.
//! - [`circuit`] — the service's circuit breaker.
//! - [`limit`] — its adaptive concurrency limit (and bulkhead).
//! - [`outlier`] — ejection of failing instances, never all of them.
//! - [`health`] — active health checks.
//! - [`settings`] — a service's settings, as configured.
//! - [`shared`] — instances registered at run time, as the store holds them
//!   for every node: applied, and reconciled on each refresh.
//! - `view` — what `GET /v1/services` shows.
//! - `budget` — how many retries a service may take.

pub mod admit;
pub mod allow;
mod budget;
pub mod circuit;
pub mod health;
pub mod limit;
pub mod outlier;
pub mod settings;
pub mod shared;
mod view;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    time::Instant,
};

use serde::Serialize;
use serde_json::Value;

pub use admit::{Lease, Refusal, Verdict};
use circuit::Circuit;
pub use herald_core::instance::{Registered, RegisteredInstance};
use limit::Limit;
use outlier::Outlier;
pub use settings::{Balance, Protocol, ServiceConfig};
pub use shared::Reconciled;
pub use view::{CircuitView, InstanceView, ServiceView};

/// What the health checks last said of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not checked (yet): taken as up.
    Unknown,
    Up,
    Down,
}

/// How the instances written in the configuration are named (`config-0`,
/// `config-1`…); the API registers no id that begins so.
pub const CONFIGURED: &str = "config-";

pub struct Instance {
    pub id: String,
    /// Base URL, no trailing slash.
    pub base: String,
    /// `host:port` and path prefix of a plain-HTTP base, for connections
    /// the gateway opens itself.
    pub origin: Option<Origin>,
    pub metadata: Value,
    /// Registered at run time: gone when this passes without a heartbeat
    /// (the stored expiry, on this node's clock). `None` for instances
    /// from the configuration.
    expires_at: Mutex<Option<Instant>>,
    health: AtomicU8,
    /// Consecutive check results in the current direction (for thresholds).
    streak: Mutex<(bool, u32)>,
    in_flight: AtomicUsize,
    outlier: Mutex<Outlier>,
    /// Moving average of answered calls' latency, µs.
    latency_us: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
}

/// Where a plain-HTTP instance is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `host:port`, to connect to.
    pub authority: String,
    /// The `Host` header requests carry.
    pub host: axum::http::HeaderValue,
    /// The base URL's path, no trailing slash (often empty).
    pub prefix: String,
}

impl Origin {
    fn of(base: &str) -> Option<Origin> {
        let uri: axum::http::Uri = base.parse().ok()?;
        if uri.scheme_str() != Some("http") {
            return None;
        }
        let authority = uri.authority()?;
        let port = authority.port_u16().unwrap_or(80);
        Some(Origin {
            authority: format!("{}:{port}", authority.host()),
            host: authority.as_str().parse().ok()?,
            prefix: uri.path().trim_end_matches('/').into(),
        })
    }
}

impl Instance {
    fn new(id: String, base: String, metadata: Value, expires_at: Option<Instant>) -> Self {
        let base = base.trim_end_matches('/').to_string();
        Instance {
            id,
            origin: Origin::of(&base),
            base,
            metadata,
            expires_at: Mutex::new(expires_at),
            health: AtomicU8::new(0),
            streak: Mutex::new((true, 0)),
            in_flight: AtomicUsize::new(0),
            outlier: Mutex::new(Outlier::default()),
            latency_us: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Relaxed) {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }

    /// Counts a health check; the state flips after `threshold` in a row.
    pub fn checked(&self, up: bool, healthy: u32, unhealthy: u32) {
        let mut streak = self.streak.lock().expect("streak");
        *streak = if streak.0 == up { (up, streak.1 + 1) } else { (up, 1) };
        let threshold = if up { healthy } else { unhealthy };
        let unknown = self.health() == Health::Unknown;
        if streak.1 >= threshold.max(1) || unknown {
            self.health.store(if up { 1 } else { 2 }, Ordering::Relaxed);
        }
    }
}

/// The gateway's client: bare hyper, so a proxied request costs no more
/// than it must (reqwest's conveniences serve the engine's JSON calls).
pub type ProxyClient =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, axum::body::Body>;

pub struct Service {
    pub name: String,
    pub settings: settings::Settings,
    client: reqwest::Client,
    proxy: ProxyClient,
    instances: RwLock<Vec<Arc<Instance>>>,
    next: AtomicUsize,
    budget: Mutex<budget::Budget>,
    /// The breaker and the concurrency limit, under one lock: a call is
    /// admitted by both at once or by neither.
    gate: Mutex<Gate>,
    /// Woken when a call ends or the service may take calls again, for
    /// the work waiting its turn.
    turn: tokio::sync::Notify,
    /// Tasks waiting their turn now.
    waiting: AtomicUsize,
    /// Connections the gateway's client connections hold of their own
    /// (`gateway::affinity`).
    pub affine: AtomicUsize,
    /// The gateway's answers for this service, counted for `/metrics`.
    pub calls: herald_metrics::gateway::ServiceCalls,
}

struct Gate {
    circuit: Circuit,
    limit: Limit,
}

impl Service {
    fn new(name: &str, settings: settings::Settings, metrics: &herald_metrics::Metrics) -> anyhow::Result<Self> {
        // Redirects are the caller's business: herald passes a 3xx on as it came.
        let mut b = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(t) = settings.connect_timeout {
            b = b.connect_timeout(t);
        }
        if settings.protocol == Protocol::H2c {
            b = b.http2_prior_knowledge();
        }
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(settings.connect_timeout);
        let proxy = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .http2_only(settings.protocol == Protocol::H2c)
            .build(connector);
        let instances = settings
            .instances
            .iter()
            .enumerate()
            .map(|(i, url)| Arc::new(Instance::new(format!("{CONFIGURED}{i}"), url.clone(), Value::Null, None)))
            .collect();
        let now = Instant::now();
        Ok(Service {
            name: name.to_string(),
            client: b.build()?,
            proxy,
            instances: RwLock::new(instances),
            next: AtomicUsize::new(0),
            budget: Mutex::new(budget::Budget::new(now)),
            gate: Mutex::new(Gate { circuit: Circuit::new(now), limit: Limit::new(settings.max_in_flight) }),
            turn: tokio::sync::Notify::new(),
            waiting: AtomicUsize::new(0),
            affine: AtomicUsize::new(0),
            calls: metrics.gateway.service(name),
            settings,
        })
    }

    /// The HTTP client of this service's calls (its pool, timeouts, protocol).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The same, for the gateway's streamed requests.
    pub fn proxy(&self) -> &ProxyClient {
        &self.proxy
    }

    /// `Herald-Signature` for a request to this service, when it has a secret.
    pub fn signature(&self, method: &str, url: &str, body: &[u8]) -> Option<String> {
        let secret = self.settings.secret.as_deref()?;
        sign(secret.as_bytes(), method, url, body)
    }

    pub fn instances(&self) -> Vec<Arc<Instance>> {
        self.instances.read().expect("instances").clone()
    }

    /// May one more retry go out, within the retry budget?
    pub fn allow_retry(&self) -> bool {
        self.budget.lock().expect("budget").retry(Instant::now(), self.settings.retry_budget)
    }
}

/// Every service herald knows.
#[derive(Default)]
pub struct Registry {
    services: RwLock<HashMap<String, Arc<Service>>>,
    allow: allow::Allow,
    metrics: Arc<herald_metrics::Metrics>,
}

impl Registry {
    pub fn from_config<'a>(
        config: impl IntoIterator<Item = (&'a String, &'a ServiceConfig)>,
        registry: &allow::RegistryConfig,
        metrics: Arc<herald_metrics::Metrics>,
    ) -> anyhow::Result<Self> {
        let r = Registry { allow: allow::Allow::parse(registry)?, metrics, ..Registry::default() };
        for (name, c) in config {
            r.add(name, c)?;
        }
        Ok(r)
    }

    /// Adds (or replaces) a service from its configuration.
    pub fn add(&self, name: &str, config: &ServiceConfig) -> anyhow::Result<()> {
        let settings = settings::Settings::parse(name, config)?;
        let service = Arc::new(Service::new(name, settings, &self.metrics)?);
        self.services.write().expect("services").insert(name.to_string(), service);
        Ok(())
    }

    /// What this herald counts, for `/metrics`.
    pub fn metrics(&self) -> &Arc<herald_metrics::Metrics> {
        &self.metrics
    }

    pub fn service(&self, name: &str) -> Option<Arc<Service>> {
        self.services.read().expect("services").get(name).cloned()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.services.read().expect("services").contains_key(name)
    }

    pub fn all(&self) -> Vec<Arc<Service>> {
        let mut v: Vec<_> = self.services.read().expect("services").values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// `Herald-Signature` for `method url` with `body`, signed now. It covers
/// the path and query as they go on the request line: those of the URL as
/// reqwest parses and sends it. `None` for a URL that does not parse (its
/// request fails before anything is sent).
pub fn sign(secret: &[u8], method: &str, url: &str, body: &[u8]) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    Some(herald_core::signature::sign(secret, chrono::Utc::now().timestamp(), method, &target, body))
}
