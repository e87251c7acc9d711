//! Putting the parts together: storage, workflows, engine, HTTP.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use herald_core::Workflow;
use herald_store::{Node, Opened, StoreConfig};
use tokio::net::TcpListener;

use crate::{
    config::Config,
    dispatch::Dispatcher,
    engine::{Engine, Parts, tokens::Tokens},
    registry::Registry,
    router,
    state::AppState,
    workflows::{self, Workflows},
};
use herald_gateway::{Around, Gateway};

pub struct Application {
    listener: TcpListener,
    tls: Option<crate::serve::Tls>,
    engine: Engine,
    dispatcher: Dispatcher,
    router: axum::Router,
    state: AppState,
}

impl Application {
    /// Opens storage, loads the workflows from `config.workflows`, and binds
    /// the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let files = match &config.workflows {
            Some(dir) => workflows::read_dir(dir, &config.services)?.into_iter().map(|(_, wf)| wf).collect(),
            None => Vec::new(),
        };
        Self::build_with(config, files).await
    }

    /// As [`Application::build`], with workflow definitions given directly.
    pub async fn build_with(mut config: Config, definitions: Vec<Workflow>) -> anyhow::Result<Self> {
        install_crypto();
        check_lease(&config, &definitions)?;
        check_channels(&config, &definitions)?;
        check_store_pool(&config)?;
        let tls = config.tls.as_ref().map(crate::serve::Tls::load).transpose()?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        config.listen = listener.local_addr()?;
        let node = Node { id: node_id(), lease: config.engine.lease.as_chrono() };
        let Opened { store, broker } = herald_store::open(&StoreConfig {
            url: config.store_url(),
            node,
            dedupe_window: config.broker.dedupe_window.0,
            pool: config.store_pool,
        })
        .await
        .context("herald cannot start: its store did not open")?;
        let broker = crate::broker::open(&config.broker, &store).await?.unwrap_or(broker);
        let workflows = Arc::new(Workflows::load(definitions, store.as_ref()).await?);
        // What this herald counts: the registry's services and the engine share it.
        let metrics = Arc::new(herald_metrics::Metrics::default());
        let services = Arc::new(Registry::from_config(&config.services, &config.registry, metrics)?);
        crate::subscriptions::install(&config.subscriptions, &services, broker.as_ref(), &workflows).await?;
        let secret = store.secret(rand::random::<[u8; 32]>().to_vec()).await?;
        let engine = Engine::new(Parts {
            webhook: config.webhook.clone(),
            email: config.email.clone(),
            store,
            broker: broker.clone(),
            workflows,
            services,
            tokens: Tokens::new(secret),
            public_url: config.public_url(),
            config: config.engine.clone(),
            tracer: herald_trace::Tracer::start(&config.tracing)?,
        })?;
        // Instances registered before this start (on SQLite, before a
        // restart; on PostgreSQL, through any node) are routed to at once.
        engine.refresh_instances().await?;
        let dispatcher = Dispatcher::new(engine.clone());
        for sub in broker.subscriptions().await? {
            dispatcher.sync(&sub);
        }
        let auth = std::sync::Arc::new(herald_http::auth::Auth::new(&config.auth)?);
        let guard =
            herald_http::guard::Guard::new(auth.lets_in_without_token(), config.listen, config.public_url.as_deref());
        let guard = Arc::new(guard);
        let around = Around {
            registry: engine.services().clone(),
            auth: auth.clone(),
            guard: guard.clone(),
            stopping: engine.stopping(),
            tracer: engine.tracer().clone(),
        };
        let gateway = Arc::new(Gateway::new(config.gateway.clone(), engine.workflows().called_paths(), around)?);
        let state = AppState {
            engine: engine.clone(),
            gateway: gateway.clone(),
            dispatcher: dispatcher.clone(),
            limits: config.limits.clone(),
            events: config.broker.clone(),
            auth,
            guard,
            streams: Arc::new(crate::streams::Streams::new(config.limits.max_streams_per_user)),
        };
        let router = router::router(state.clone());
        Ok(Application { listener, tls, engine, dispatcher, router, state })
    }

    /// Adds routes beside herald's own (the demo's pages and helpers).
    pub fn merge(mut self, routes: axum::Router) -> Self {
        self.router = self.router.merge(routes);
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` resolves, then stops taking requests and
    /// work, lets calls in flight finish, and gives held tasks back.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let poller = self.engine.spawn_poller();
        let hints = self.engine.spawn_hints();
        let housekeeping = spawn_housekeeping(self.engine.clone(), self.state.gateway.clone());
        let health = tokio::spawn(crate::registry::health::run(self.engine.services().clone(), self.engine.stopping()));
        let reloads = self.tls.as_ref().map(crate::serve::Tls::reload_on_hangup).transpose()?;
        let engine = self.engine.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down");
            // Ends live streams so the server can drain.
            engine.stopping().cancel();
        };
        crate::serve::serve(self.listener, router::harden(self.router), self.state, self.tls, signal).await;
        self.dispatcher.shutdown(self.engine.shutdown_grace()).await;
        self.engine.shutdown().await;
        // Sending the last spans blocks (the exporter's client is blocking).
        let tracer = self.engine.tracer().clone();
        let _ = tokio::task::spawn_blocking(move || tracer.shutdown()).await;
        poller.abort();
        if let Some(h) = hints {
            h.abort();
        }
        housekeeping.abort();
        health.abort();
        if let Some(r) = reloads {
            r.abort();
        }
        Ok(())
    }
}

/// This node's name on the leases it takes: its process id (for a person
/// reading the logs) and random bytes, since nodes in containers all tend
/// to be process 1 and two nodes sharing a name would each take the
/// other's tasks for its own.
fn node_id() -> String {
    format!("node-{}-{}", std::process::id(), hex::encode(rand::random::<[u8; 4]>()))
}

/// How often the broker forgets what nobody needs any more.
const HOUSEKEEPING: std::time::Duration = std::time::Duration::from_secs(60);
/// How often the registry is refreshed from the store: instances
/// registered through other nodes appear, and expired or deregistered
/// ones go, within this.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

fn spawn_housekeeping(engine: Engine, gateway: Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(REFRESH);
        let mut last_broker = tokio::time::Instant::now();
        let mut refreshing = true;
        loop {
            every.tick().await;
            match engine.refresh_instances().await {
                Ok(_) if !refreshing => {
                    refreshing = true;
                    tracing::info!("the registry is refreshed from the store again");
                }
                Ok(_) => {}
                Err(e) => {
                    if refreshing {
                        tracing::warn!(error = %e, "the registry cannot be refreshed from the store; \
                            registered instances go when their last stored expiry passes");
                    }
                    refreshing = false;
                    engine.services().sweep(std::time::Instant::now());
                }
            }
            if last_broker.elapsed() >= HOUSEKEEPING {
                last_broker = tokio::time::Instant::now();
                gateway.housekeep();
                if let Err(e) = engine.broker().maintain().await {
                    tracing::warn!(error = %e, "broker housekeeping failed; it runs again in a minute");
                }
                if let Err(e) = engine.store().prune_instances(chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "expired instances cannot be pruned; it runs again in a minute");
                }
            }
        }
    })
}

/// A call must end before its task's lease does, or another run of the
/// poller would take the task and call the step a second time.
fn check_lease(config: &Config, definitions: &[Workflow]) -> anyhow::Result<()> {
    let lease = config.engine.lease.0;
    let too_long = definitions.iter().flat_map(|wf| wf.steps.iter().map(move |s| (wf, s)));
    if let Some((wf, s)) = too_long.into_iter().find(|(_, s)| s.timeout.0 + std::time::Duration::from_secs(10) > lease)
    {
        anyhow::bail!(
            "workflow `{}`, step `{}`: timeout {} must be at least 10s shorter than engine.lease ({})",
            wf.name,
            s.name,
            s.timeout,
            config.engine.lease
        );
    }
    Ok(())
}

/// A workflow that notifies by webhook needs a webhook to notify.
/// A pool of one would leave no connection beside the one listening for
/// the other nodes.
fn check_store_pool(config: &Config) -> anyhow::Result<()> {
    match config.store_pool {
        Some(n) if !(STORE_POOL_MIN..=STORE_POOL_MAX).contains(&n) => {
            anyhow::bail!("store_pool is {n}: it must be between {STORE_POOL_MIN} and {STORE_POOL_MAX}")
        }
        _ => Ok(()),
    }
}

const STORE_POOL_MIN: u32 = 2;
const STORE_POOL_MAX: u32 = 1000;

fn check_channels(config: &Config, definitions: &[Workflow]) -> anyhow::Result<()> {
    use herald_core::notify::Channel;
    if let Some(wf) = definitions.iter().find(|wf| wf.notify.channels.contains(&Channel::Webhook)) {
        anyhow::ensure!(
            config.webhook.is_some(),
            "workflow `{}` notifies by webhook, but [webhook] is not configured",
            wf.name
        );
    }
    if let Some(wf) = definitions.iter().find(|wf| wf.notify.channels.contains(&Channel::Email)) {
        anyhow::ensure!(
            config.email.is_some(),
            "workflow `{}` notifies by email, but [email] is not configured",
            wf.name
        );
    }
    Ok(())
}

/// One TLS provider for the whole process (ring), chosen before any client exists.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_store_pool_out_of_range_is_refused_and_one_in_range_is_taken() {
        let with = |n: Option<u32>| super::Config { store_pool: n, ..Default::default() };
        for bad in [0, 1, 1001] {
            let e = super::check_store_pool(&with(Some(bad))).unwrap_err().to_string();
            assert!(e.contains("between 2 and 1000"), "{e}");
        }
        for good in [None, Some(2), Some(64)] {
            super::check_store_pool(&with(good)).unwrap();
        }
    }

    #[test]
    fn nodes_in_one_process_never_share_a_name() {
        let (a, b) = (super::node_id(), super::node_id());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("node-{}-", std::process::id())), "{a}");
    }
}
