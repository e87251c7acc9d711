//! `[engine]`, `[webhook]` and `[email]`: how the engine runs, and where
//! notifications beyond the inbox go.

use herald_core::Span;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How often to look for due work that nobody announced (timers of
    /// other nodes, expired leases).
    pub poll_interval: Span,
    /// Step calls in flight at once, across all operations.
    pub max_in_flight: usize,
    /// How long a claimed task is this node's before another may take it.
    pub lease: Span,
    /// On shutdown, how long in-flight calls may take to finish.
    pub shutdown_grace: Span,
    /// Accept operations but run nothing (maintenance, or measuring the
    /// accept path alone). Their tasks wait, durable, for an unpaused run.
    pub paused: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            poll_interval: Span::from_millis(1000),
            max_in_flight: 1024,
            lease: Span(herald_store::DEFAULT_LEASE),
            shutdown_grace: Span::from_millis(10_000),
            paused: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Signs every body (see `Herald-Signature` in the README).
    pub secret: String,
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Defaults: 8 attempts from 1 s, doubling, up to 5 minutes apart.
    #[serde(default)]
    pub retry: Option<herald_core::workflow::raw::RawRetry>,
    /// The receiver's circuit breaker (as a service's `circuit`). While it
    /// is open, deliveries wait without spending attempts.
    #[serde(default)]
    pub circuit: Option<herald_gateway::registry::circuit::CircuitConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    #[serde(default = "smtp_port")]
    pub port: u16,
    /// `none` (a local sink), `starttls` or `tls`.
    #[serde(default)]
    pub tls: EmailTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, e.g. `"Shop <noreply@shop.example>"`.
    pub from: String,
    /// How long one attempt may take, the whole exchange with the server
    /// (10 s unless set).
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Defaults: 8 attempts from 1 s, doubling, up to 5 minutes apart.
    #[serde(default)]
    pub retry: Option<herald_core::workflow::raw::RawRetry>,
}

fn smtp_port() -> u16 {
    25
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTls {
    #[default]
    None,
    Starttls,
    Tls,
}
