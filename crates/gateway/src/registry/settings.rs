//! A service's settings as configured (`[services.<name>]`), checked once.

use std::{collections::BTreeMap, time::Duration};

use herald_core::Span;
use serde::{Deserialize, Serialize};

use super::{circuit::CircuitConfig, outlier::OutlierConfig};
use crate::access::{Access, Rules};

/// Calls in flight to one service at most, unless it says otherwise: a
/// quarter of the engine's default pool, so one slow or hanging service
/// cannot take it all.
pub const MAX_IN_FLIGHT: u32 = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Base URLs, as a list or one comma-separated string (handy in env
    /// vars). More can register at run time.
    #[serde(default, deserialize_with = "herald_http::lists::list_or_csv")]
    pub instances: Vec<String>,
    /// Caps every call to this service (a step's own `timeout` may be shorter).
    #[serde(default)]
    pub timeout: Option<Span>,
    /// How long connecting may take.
    #[serde(default)]
    pub connect_timeout: Option<Span>,
    /// `round_robin` (the default) or `least_loaded` (the less busy of two
    /// instances picked at random).
    #[serde(default)]
    pub balance: Balance,
    /// `http1` (the default) or `h2c` (HTTP/2 without TLS).
    #[serde(default)]
    pub protocol: Protocol,
    /// Active health checks; without them every instance counts as up.
    #[serde(default)]
    pub health: Option<HealthConfig>,
    /// The service's circuit breaker.
    #[serde(default)]
    pub circuit: CircuitConfig,
    /// Ejection of instances that keep failing.
    #[serde(default)]
    pub outlier: OutlierConfig,
    /// Calls in flight at once at most (the bulkhead); herald's adaptive
    /// limit stays at or under it.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// Retries may add at most this share of the service's requests.
    #[serde(default)]
    pub retry_budget: Option<f64>,
    /// When set, herald signs every request to the service (step calls and
    /// pushed events) with `Herald-Signature`, so it can tell herald's
    /// requests from anyone else's. At least 16 characters.
    #[serde(default)]
    pub secret: Option<String>,
    /// Who may call it through the gateway: `off`, `public`, `user`,
    /// `service` (the default) or `admin`.
    #[serde(default)]
    pub gateway: Access,
    /// Path prefixes that say otherwise, e.g. `"/catalog" = "public"`.
    #[serde(default)]
    pub gateway_paths: BTreeMap<String, Access>,
}

impl ServiceConfig {
    /// A service at these base URLs, with the default settings.
    pub fn new(instances: Vec<String>) -> Self {
        ServiceConfig {
            instances,
            timeout: None,
            connect_timeout: None,
            balance: Balance::default(),
            protocol: Protocol::default(),
            health: None,
            circuit: CircuitConfig::default(),
            outlier: OutlierConfig::default(),
            max_in_flight: None,
            retry_budget: None,
            secret: None,
            gateway: Access::default(),
            gateway_paths: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastLoaded,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Http1,
    H2c,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Requested with GET on each instance; 2xx is healthy.
    pub path: String,
    pub interval: Span,
    pub timeout: Span,
    /// Checks in a row that make a down instance up…
    pub healthy: u32,
    /// …and an up one down.
    pub unhealthy: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            path: "/healthz".into(),
            interval: Span::from_millis(5000),
            timeout: Span::from_millis(2000),
            healthy: 2,
            unhealthy: 3,
        }
    }
}

/// The settings a [`super::Service`] runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub instances: Vec<String>,
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub balance: Balance,
    pub protocol: Protocol,
    pub health: Option<HealthConfig>,
    pub circuit: CircuitConfig,
    pub outlier: OutlierConfig,
    pub max_in_flight: u32,
    pub retry_budget: f64,
    pub secret: Option<String>,
    pub gateway: Rules,
}

impl Settings {
    pub fn parse(name: &str, c: &ServiceConfig) -> anyhow::Result<Self> {
        let field = |f: &str, m: String| anyhow::anyhow!("services.{name}.{f}: {m}");
        // herald's own receivers (`herald.email`) may be reached by other means.
        for url in c.instances.iter().filter(|_| !name.starts_with("herald.")) {
            check_url(url).map_err(|m| field("instances", m))?;
        }
        if let Some(s) = &c.secret
            && s.len() < 16
        {
            return Err(field("secret", "needs at least 16 characters".into()));
        }
        let retry_budget = c.retry_budget.unwrap_or(0.2);
        if !(0.0..=1.0).contains(&retry_budget) {
            return Err(field("retry_budget", "must be between 0 and 1".into()));
        }
        if let Some(h) = &c.health
            && (!h.path.starts_with('/') || h.interval.0.is_zero() || h.timeout.0.is_zero())
        {
            return Err(field(
                "health",
                "needs a path starting with `/`, and an interval and timeout over zero".into(),
            ));
        }
        let k = &c.circuit;
        if !(0.0..=1.0).contains(&k.failure_rate) || k.consecutive_failures == 0 || k.half_open_probes == 0 {
            return Err(field(
                "circuit",
                "failure_rate must be between 0 and 1, consecutive_failures and half_open_probes at least 1".into(),
            ));
        }
        let o = &c.outlier;
        if o.consecutive_failures == 0 || o.max_ejection_percent > 100 || o.panic_threshold > 100 {
            return Err(field(
                "outlier",
                "consecutive_failures must be at least 1, the percentages at most 100".into(),
            ));
        }
        let max_in_flight = c.max_in_flight.unwrap_or(MAX_IN_FLIGHT);
        if max_in_flight == 0 {
            return Err(field("max_in_flight", "must be at least 1".into()));
        }
        let gateway = Rules::parse(c.gateway, &c.gateway_paths).map_err(|m| field("gateway_paths", m))?;
        Ok(Settings {
            gateway,
            instances: c.instances.clone(),
            timeout: c.timeout.map(|t| t.0),
            connect_timeout: c.connect_timeout.map(|t| t.0),
            balance: c.balance,
            protocol: c.protocol,
            health: c.health.clone(),
            circuit: c.circuit.clone(),
            outlier: c.outlier.clone(),
            max_in_flight,
            retry_budget,
            secret: c.secret.clone(),
        })
    }
}

/// An instance's base URL: http or https, a host, nothing after the path.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    let ok = rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or("");
        !host.is_empty() && !r.contains(['?', '#', ' '])
    });
    if ok { Ok(()) } else { Err(format!("`{url}` is not an http(s) base URL")) }
}
