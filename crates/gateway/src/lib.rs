//! The synchronous gateway: `ANY /gw/{service}/{path…}` goes to a healthy
//! instance of a registered service (and nowhere else: no request can make
//! herald call an arbitrary address), balanced, within the service's
//! timeouts, retried on another instance only when that is safe and the
//! retry budget allows, behind each instance's circuit breaker, and under a
//! per-client rate limit. A route declared `async` turns the request into
//! an operation instead (202 + `Location`), so one gateway serves both
//! styles.
//!
//! Nothing is public unless said: each service, and path prefixes within
//! it, names who may call it ([`access`]); herald's own step paths stay out
//! of reach; the caller's token is taken by herald and the instance learns
//! who called from `Herald-Caller`.
//!
//! Requests under `/gw/` are handed here by the server's listener loop
//! straight from hyper, past the API's router and layers: the gateway
//! passes answers on as the services gave them, and a proxied request costs
//! no more than it must. An `async` route is handed back to the server
//! ([`Handled::Operation`]), which starts the operation.
//!
//! - [`registry`] — services, their instances, health, circuit breakers,
//!   and admission (the limits and budgets every call to an instance obeys;
//!   the engine's step calls too).
//! - [`access`] — who may call which service and path.
//! - [`config`] — `[gateway]`.
//! - [`forward`] — the headers passed on and added.
//! - `proxy` — one request through to an instance, streamed both ways.
//! - `traced` — the gateway's span for a request, when tracing is on.
//! - `attempts` — which instance each try goes to, and whether another try is safe.
//! - [`affinity`] — a client connection's own connections to instances.
//! - [`express`] — plain HTTP/1.1 requests read and relayed by hand.

pub mod access;
pub mod affinity;
mod attempts;
pub mod config;
pub mod express;
pub mod forward;
mod proxy;
pub mod registry;
mod traced;

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    num::NonZeroU32,
    sync::Arc,
};

use axum::{
    extract::Request,
    http::HeaderName,
    response::{IntoResponse, Response},
};
pub use config::GatewayConfig;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use herald_http::{
    auth::{Auth, Caller},
    guard::Guard,
    problem::ApiError,
};
use registry::{Registry, Service};
use tokio_util::sync::CancellationToken;

pub struct Gateway {
    pub config: GatewayConfig,
    correlation: HeaderName,
    limiter: Option<(DefaultKeyedRateLimiter<String>, Key)>,
    /// The paths steps and compensations call, by service: not for clients.
    called: HashMap<String, BTreeSet<String>>,
    around: Around,
}

/// What the gateway uses of the server around it.
pub struct Around {
    pub registry: Arc<Registry>,
    pub auth: Arc<Auth>,
    /// Without credentials: which hosts and origins are answered.
    pub guard: Arc<Guard>,
    /// Cancelled when the server shuts down.
    pub stopping: CancellationToken,
    /// Where the gateway's spans go (nowhere unless tracing is on).
    pub tracer: herald_trace::Tracer,
}

enum Key {
    Ip,
    Header(HeaderName),
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        called: HashMap<String, BTreeSet<String>>,
        around: Around,
    ) -> anyhow::Result<Self> {
        let correlation = HeaderName::from_bytes(config.correlation_header.as_bytes())
            .map_err(|_| anyhow::anyhow!("gateway.correlation_header is not a header name"))?;
        let limiter = match &config.rate_limit {
            None => None,
            Some(r) => {
                let per_second = NonZeroU32::new(r.per_second)
                    .ok_or_else(|| anyhow::anyhow!("gateway.rate_limit.per_second must be at least 1"))?;
                let burst = NonZeroU32::new(r.burst.max(1)).expect("at least 1");
                let key = match r.key.as_str() {
                    "ip" => Key::Ip,
                    k => match k.strip_prefix("header:").map(|h| HeaderName::from_bytes(h.trim().as_bytes())) {
                        Some(Ok(h)) => Key::Header(h),
                        _ => anyhow::bail!("gateway.rate_limit.key must be `ip` or `header:<name>`"),
                    },
                };
                Some((RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)), key))
            }
        };
        for r in &config.routes {
            anyhow::ensure!(r.path.starts_with('/'), "gateway.routes: `{}` must start with `/`", r.path);
        }
        Ok(Gateway { config, correlation, limiter, called, around })
    }

    /// May the bearer of `authorization` call `path` of `svc` (after
    /// `/gw/{service}`, as [`access::checked`] gives it)? Answers who
    /// they are, or `None` when herald checked no token (a public path, or
    /// no `[auth]`): the token, if any, is then the instance's business and
    /// passes on.
    pub fn authorize(
        &self,
        svc: &Service,
        path: &str,
        authorization: Option<&[u8]>,
    ) -> Result<Option<Caller>, ApiError> {
        let access = access::decide(&svc.settings.gateway, self.called.get(&svc.name).into_iter().flatten(), path)?;
        // With no `[auth]` every caller is an admin and no token is checked.
        let auth = &self.around.auth;
        if access == access::Access::Public || auth.is_open() {
            return Ok(None);
        }
        let header = authorization.and_then(|v| std::str::from_utf8(v).ok());
        let caller = auth.identify(herald_http::auth::bearer(header))?;
        access::allows(access, &caller)?;
        Ok(Some(caller))
    }

    /// The `async` route a request takes, if any.
    fn async_route(&self, service: &str, path: &str, method: &str) -> Option<&config::AsyncRoute> {
        self.config
            .routes
            .iter()
            .find(|r| r.service == service && r.path == path && method.eq_ignore_ascii_case(&r.method))
    }

    /// Forgets idle clients' buckets, so the limiter's memory stays small.
    pub fn housekeep(&self) {
        if let Some((l, _)) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// `Err(retry_after_secs)` when the client is over its rate.
    fn admit<'a>(&self, header: impl Fn(&HeaderName) -> Option<&'a [u8]>, peer: &forward::Peer) -> Result<(), u64> {
        let Some((limiter, key)) = &self.limiter else { return Ok(()) };
        let key = match key {
            Key::Ip => peer.ip().to_string(),
            Key::Header(h) => header(h).and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("").to_string(),
        };
        limiter.check_key(&key).map_err(|not_until| {
            self.around.registry.metrics().gateway.rate_limited();
            let wait = not_until.wait_time_from(limiter.clock().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The client connection a request came on.
pub struct Client {
    /// Its address, written out once for the forwarding headers and the
    /// rate limit's key.
    peer: forward::Peer,
    affinity: Arc<affinity::Affinity>,
}

impl Client {
    /// `secure`: the connection is TLS.
    pub fn new(peer: SocketAddr, secure: bool, affinity: Arc<affinity::Affinity>) -> Client {
        Client { peer: forward::Peer::new(peer.ip(), secure), affinity }
    }
}

/// Is this request the gateway's?
pub fn owns(path: &str) -> bool {
    path.starts_with("/gw/")
}

/// What became of a request under `/gw/`.
pub enum Handled {
    Answered(Response),
    /// It takes an `async` route: the server starts an operation of this
    /// workflow with the request's body as its input.
    Operation(String, Request),
}

/// `ANY /gw/{service}/{path…}`.
pub async fn handle(gw: Arc<Gateway>, client: Arc<Client>, mut req: Request) -> Handled {
    if !gw.around.tracer.is_on() {
        return answer(route(gw, client, req).await);
    }
    let span = traced::GatewaySpan::begin(req.headers());
    req.extensions_mut().insert(span.clone());
    let (method, service) = (req.method().to_string(), split(req.uri().path()).0.to_string());
    let tracer = gw.around.tracer.clone();
    let handled = answer(route(gw, client, req).await);
    if let Handled::Answered(resp) = &handled {
        span.end(&tracer, &method, &service, resp.status());
    }
    handled
}

fn answer(routed: Result<Handled, ApiError>) -> Handled {
    match routed {
        Ok(h) => h,
        Err(e) => Handled::Answered(e.into_response()),
    }
}

async fn route(gw: Arc<Gateway>, client: Arc<Client>, req: Request) -> Result<Handled, ApiError> {
    if let Err(secs) = gw.admit(|h| req.headers().get(h).map(|v| v.as_bytes()), &client.peer) {
        return Err(ApiError::TooManyRequests(secs));
    }
    // Checked once: what the access rules see, and what is sent.
    let checked = access::checked(req.uri().path())?;
    let (service, rest) = split(req.uri().path());
    if let Some(r) = gw.async_route(service, rest, req.method().as_str()) {
        return Ok(Handled::Operation(r.workflow.clone(), req));
    }
    let svc = gw.reachable(service).ok_or_else(|| ApiError::UnknownService(service.to_string()))?;
    let authorization = req.headers().get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes());
    let caller = gw.authorize(&svc, split(&checked).1, authorization)?;
    let rest = rest.to_string();
    proxy::forward(&gw, svc, rest, &client, req, caller.as_ref()).await.map(Handled::Answered)
}

impl Gateway {
    /// Spans go somewhere: each request gets one.
    pub fn tracing(&self) -> bool {
        self.around.tracer.is_on()
    }

    /// A service the gateway may call: registered, and not one of herald's own.
    fn reachable(&self, service: &str) -> Option<Arc<Service>> {
        self.around.registry.service(service).filter(|s| !s.name.starts_with("herald."))
    }

    fn guard(&self) -> &Guard {
        &self.around.guard
    }
}

/// `/gw/shop/orders/7` → (`shop`, `/orders/7`).
fn split(path: &str) -> (&str, &str) {
    let after = path.strip_prefix("/gw/").unwrap_or("");
    match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    }
}
