//! The gateway's settings (`[gateway]`).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Largest request body passed on, in bytes (streamed, never held whole).
    pub max_body_bytes: u64,
    /// A request body up to this size is kept while it is sent, so a failed
    /// attempt can be tried again on another instance; a larger one is
    /// streamed and never retried.
    pub retry_buffer_bytes: u64,
    /// The header that carries a request's correlation id (added when absent).
    pub correlation_header: String,
    pub rate_limit: Option<RateLimit>,
    /// Requests that start an operation instead of being passed on.
    pub routes: Vec<AsyncRoute>,
    /// Carry plain HTTP/1.1 requests on herald's own express lane (`false`:
    /// every request goes through hyper; for comparison, or should the
    /// lane misbehave).
    pub express: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_body_bytes: 256 * 1024 * 1024,
            retry_buffer_bytes: 64 * 1024,
            correlation_header: "x-correlation-id".into(),
            rate_limit: None,
            routes: Vec::new(),
            express: true,
        }
    }
}

/// A token bucket per client key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests a second, sustained.
    pub per_second: u32,
    /// Requests allowed at once above the rate.
    pub burst: u32,
    /// `ip` (the client's address) or `header:<name>` (e.g. `header:x-api-key`).
    #[serde(default = "by_ip")]
    pub key: String,
}

fn by_ip() -> String {
    "ip".into()
}

/// `ANY /gw/{service}{path}` with this method starts an operation of
/// `workflow` with the request's body as its input (202 + `Location`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsyncRoute {
    pub service: String,
    #[serde(default = "post")]
    pub method: String,
    /// The exact path after `/gw/{service}`, starting with `/`.
    pub path: String,
    pub workflow: String,
}

fn post() -> String {
    "POST".into()
}
