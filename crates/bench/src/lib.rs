//! herald's benchmark harness: the standard workloads of BENCH.md, run
//! against a real herald (started here, or given by URL) with the no-op step
//! worker in its own process.
//!
//! # Layout
//!
//! - [`procs`] — starting herald (one node or several) and the worker;
//!   their memory and CPU.
//! - [`pg`] — runs on PostgreSQL: a schema of the run's own, PostgreSQL's
//!   commits and CPU.
//! - [`worker`] — the no-op step service (`herald bench-worker`).
//! - [`client`] — the W0/W1 client: N operations, C in flight; [`starter`] —
//!   its lean connection for the start calls.
//! - [`watchers`] — W2: many SSE watchers while W1 runs.
//! - [`pubsub`] — W3: events published, pushed or pulled, and their lag;
//!   [`rawnats`], [`rawrabbit`] — the same events straight into NATS
//!   JetStream or RabbitMQ, herald's yardstick on that broker.
//! - [`gateway`] — the gateway beside direct calls and nginx.
//! - [`stats`] — percentiles and the report; [`chart`] — the SVG chart.

pub mod chart;
pub mod client;
pub mod gateway;
pub mod pg;
pub mod procs;
pub mod pubsub;
pub mod rawnats;
pub mod rawrabbit;
pub mod starter;
pub mod stats;
pub mod watchers;
pub mod worker;

use std::{path::PathBuf, sync::Arc, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use stats::{Report, histogram, latency};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// One no-op step.
    W0,
    /// The three-step order saga.
    W1,
    /// W1 clean, then W1 on a worker shedding a share of first attempts
    /// (503), in one run.
    W1Shed,
    /// W1 with many SSE watchers alongside.
    W2,
    /// Accepts only: the engine is paused, nothing runs.
    Accept,
    /// Pub/sub, pushed to the worker.
    W3,
    /// Pub/sub, pulled by this process.
    W3Pull,
    /// W3's events straight into NATS JetStream (`--broker`), no herald.
    W3RawNats,
    /// W3's events straight into RabbitMQ (`--broker`), no herald.
    W3RawRabbit,
    /// The synchronous gateway against direct calls and nginx.
    Gateway,
}

pub struct Options {
    pub workload: Workload,
    pub n: usize,
    pub c: usize,
    /// A running herald (with the bench workflows) instead of starting one.
    pub url: Option<String>,
    pub chart: Option<PathBuf>,
    pub watchers: usize,
    pub warmup: usize,
    /// W3: events per publish request.
    pub batch: usize,
    /// W3: events per second, paced.
    pub rate: Option<f64>,
    /// W3 push: events per delivery request.
    pub push_batch: usize,
    /// W3 push: events out to the consumer at once.
    pub push_in_flight: usize,
    /// Gateway: seconds per scenario.
    pub seconds: u64,
    /// The store of the heralds started here (`postgres://…`: a database, in
    /// which each run makes a schema of its own); the embedded one by default.
    pub store: Option<String>,
    /// Herald nodes to start on that store.
    pub nodes: usize,
    /// Where the heralds started here keep topics (`nats://…` or
    /// `amqp://…`; each run under a prefix of its own, removed after); in
    /// the store by default. The server `w3-raw-nats` or `w3-raw-rabbit`
    /// drives.
    pub broker: Option<String>,
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    b.set_message(what.to_string());
    b
}

pub async fn run(o: Options) -> anyhow::Result<Report> {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let _ = rustls::crypto::ring::default_provider().install_default();
    if o.nodes > 1 {
        anyhow::ensure!(
            matches!(o.workload, Workload::W0 | Workload::W1 | Workload::Accept),
            "--nodes above 1 is for w0, w1 and accept"
        );
        anyhow::ensure!(
            o.store.as_deref().is_some_and(pg::is_postgres) && o.url.is_none(),
            "--nodes above 1 needs a shared store: --store postgres://…"
        );
    }
    let engine = o.broker.as_deref().map(Engine::of).transpose()?;
    match o.workload {
        Workload::W3RawNats => {
            anyhow::ensure!(engine == Some(Engine::Nats), "w3-raw-nats drives a NATS server: --broker nats://…")
        }
        Workload::W3RawRabbit => {
            anyhow::ensure!(engine == Some(Engine::Rabbit), "w3-raw-rabbit drives a RabbitMQ server: --broker amqp://…")
        }
        _ => {}
    }
    anyhow::ensure!(o.broker.is_none() || o.url.is_none(), "--broker is for the heralds started here, not with --url");
    // Each run's streams, consumers and buckets under a prefix of its own,
    // so no run sees another's, and all removed after.
    let broker = o.broker.as_deref().map(|url| (url, format!("bench_{:08x}", rand::random::<u32>())));
    let mut schema = match o.store.as_deref() {
        Some(url) if pg::is_postgres(url) => Some(pg::Schema::create(url).await?),
        _ => None,
    };
    let out = match (&broker, o.workload) {
        (Some((url, prefix)), Workload::W3RawNats | Workload::W3RawRabbit) => run_raw(&o, url, prefix).await,
        _ => run_on(&o, &mut schema, broker.as_ref().map(|(u, p)| (*u, p.as_str()))).await,
    };
    if let Some(s) = schema {
        s.drop().await?;
    }
    // After the heralds stopped (`run_on` drops them), so none makes anything
    // again. On RabbitMQ, `run_on` removes what the heralds made while it
    // still has their store; the raw run made no subscription.
    if let Some((url, prefix)) = &broker {
        match engine {
            Some(Engine::Nats) => drop(herald_nats::destroy(url, prefix).await?),
            _ if o.workload == Workload::W3RawRabbit => {
                let dir = tempfile::tempdir()?;
                let store = herald_store::sqlite::SqliteStore::open(dir.path(), cleanup_node())?;
                destroy_rabbit(url, prefix, Arc::new(store)).await?;
            }
            _ => {}
        }
    }
    out
}

/// The store identity the harness reads a run's store with, once its
/// heralds have stopped.
fn cleanup_node() -> herald_store::Node {
    herald_store::Node { id: "bench-cleanup".into(), lease: chrono::Duration::seconds(60) }
}

/// Removes the run's prefix from RabbitMQ: every queue of every
/// subscription `store` names, the prefix's exchanges, and its rows.
async fn destroy_rabbit(url: &str, prefix: &str, store: Arc<dyn herald_store::Store>) -> anyhow::Result<()> {
    let ledger = herald_store::BrokerLedger(store);
    herald_rabbit::destroy(url, prefix, herald_rabbit::DEFAULT_PARTITIONS, &ledger)
        .await
        .map_err(|e| anyhow::anyhow!("removing the run's prefix from RabbitMQ: {e}"))
}

/// The broker engine a `--broker` URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Nats,
    Rabbit,
}

impl Engine {
    fn of(url: &str) -> anyhow::Result<Engine> {
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("nats") => Ok(Engine::Nats),
            Some("amqp") => Ok(Engine::Rabbit),
            _ => anyhow::bail!("--broker takes nats://… or amqp://…"),
        }
    }

    /// As the report names it.
    fn name(self) -> &'static str {
        match self {
            Engine::Nats => "nats",
            Engine::Rabbit => "rabbitmq",
        }
    }
}

/// [`run`], on the store `schema` holds if any, with topics on `broker`
/// (its URL and the run's prefix) if given.
async fn run_on(o: &Options, schema: &mut Option<pg::Schema>, broker: Option<(&str, &str)>) -> anyhow::Result<Report> {
    let store = schema.as_ref().map(|s| s.url.clone()).or(o.store.clone());
    let mut procs = procs::start(procs::Target {
        url: o.url.as_deref(),
        store: store.as_deref(),
        broker,
        nodes: o.nodes,
        engine_paused: o.workload == Workload::Accept,
    })?;
    let out = run_started(o, schema, &mut procs).await;
    if let Some((url, prefix)) = broker.filter(|(url, _)| Engine::of(url).ok() == Some(Engine::Rabbit)) {
        // The names of the subscriptions' queues are in the heralds' store.
        procs.stop_heralds();
        let store: Arc<dyn herald_store::Store> = match (store.as_deref(), procs.data_dir(0)) {
            (Some(pg), _) => Arc::new(herald_store::postgres::PgStore::open(pg, cleanup_node(), 2).await?),
            (None, Some(dir)) => Arc::new(herald_store::sqlite::SqliteStore::open(&dir, cleanup_node())?),
            (None, None) => anyhow::bail!("no store to find the run's RabbitMQ queues in"),
        };
        destroy_rabbit(url, prefix, store).await?;
    }
    out
}

/// [`run_on`]'s workload, on the heralds `procs` started.
async fn run_started(o: &Options, schema: &mut Option<pg::Schema>, procs: &mut procs::Procs) -> anyhow::Result<Report> {
    let pid = procs.heralds.first().map(|c| c.id());
    let http = reqwest::Client::builder().pool_max_idle_per_host(usize::MAX).tcp_nodelay(true).build()?;
    for url in &procs.herald_urls {
        procs::wait_ready(&http, url).await?;
    }
    let url = procs.herald_url.clone();
    let urls = procs.herald_urls.clone();
    if matches!(o.workload, Workload::W3 | Workload::W3Pull) {
        return run_pubsub(o, &http, procs, pid).await;
    }
    if o.workload == Workload::Gateway {
        return run_gateway(o, procs, pid).await;
    }
    if o.workload == Workload::W1Shed {
        return run_shed(o, &http, procs, pid).await;
    }
    let (workflow, follow) = match o.workload {
        Workload::W0 => ("w0", true),
        Workload::Accept => ("order", false),
        Workload::W1 | Workload::W2 | Workload::W1Shed => ("order", true),
        Workload::W3 | Workload::W3Pull | Workload::W3RawNats | Workload::W3RawRabbit | Workload::Gateway => {
            unreachable!("these run on their own")
        }
    };
    if o.warmup > 0 {
        client::run(&http, &urls, workflow, o.warmup, o.c.min(o.warmup), follow, ProgressBar::hidden()).await?;
    }

    let mut watch = None;
    let mut rss_before = None;
    if o.workload == Workload::W2 {
        let ops = watchers::hold_open(&http, &url, o.watchers).await?;
        rss_before = pid.and_then(procs::rss);
        let b = bar(o.watchers, "watchers");
        let w = watchers::open(&http, &url, ops, b.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while w.connected.load(std::sync::atomic::Ordering::Relaxed) < o.watchers {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the watchers did not all connect");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        b.finish();
        watch = Some(w);
    }
    let kib_per_watcher = match (rss_before, pid.and_then(procs::rss)) {
        (Some(a), Some(b)) if o.watchers > 0 => (b - a) * 1024.0 / o.watchers as f64,
        _ => 0.0,
    };
    let completer = watch.as_ref().map(|w| {
        tokio::spawn(watchers::complete_held(
            http.clone(),
            procs.worker_url.clone(),
            w.count,
            100,
            Duration::from_millis(20),
        ))
    });

    let b = bar(
        o.n,
        match o.workload {
            Workload::Accept => "accepted",
            _ => "finished",
        },
    );
    let before = Usage::now(procs, schema).await?;
    let run = client::run(&http, &urls, workflow, o.n, o.c, follow, b.clone()).await?;
    b.finish();
    let after = Usage::now(procs, &mut None).await?;
    let watchers = match (watch, completer) {
        (Some(w), Some(c)) => {
            c.await??;
            Some(w.finish(kib_per_watcher).await?)
        }
        _ => None,
    };

    let accept = histogram(run.samples.iter().map(|s| s.accept_us));
    let e2e = follow.then(|| histogram(run.samples.iter().filter_map(|s| s.e2e_us)));
    let mut figures = after.since(&before);
    if follow {
        let lags = || run.samples.iter().flat_map(|s| s.lags.iter());
        figures.events = lags().count();
        figures.live_events = lags().filter(|l| l.live).count();
        figures.lag = Some(latency(&histogram(lags().map(|l| l.us))));
        figures.live_lag = Some(latency(&histogram(lags().filter(|l| l.live).map(|l| l.us))));
        let cross = || run.samples.iter().flat_map(|s| s.cross_us.iter().copied());
        figures.cross_events = cross().count();
        figures.cross_lag = (figures.cross_events > 0).then(|| latency(&histogram(cross())));
    }
    let mut report = Report { watchers, run: Some(figures), ..report(o, run.wall, &accept, e2e.as_ref(), pid) };
    if let (Some(s), Some(before)) = (schema.as_mut(), &before.postgres) {
        // The nodes' connections close and their sessions report what
        // they still held to the statistics.
        procs.stop_heralds();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pg = s.snapshot().await?.since(before, o.n);
        report.run.as_mut().expect("set above").postgres = Some(pg);
    }
    if let Some(path) = &o.chart {
        let mut curves = vec![("accept", stats::curve(&accept))];
        if let Some(h) = &e2e {
            curves.push(("end to end", stats::curve(h)));
        }
        let title = format!("herald {} N={} C={}: {:.0}/s", report.workload, o.n, o.c, report.completed_per_s);
        chart::write(path, &title, &curves)?;
    }
    Ok(report)
}

/// CPU so far: each node's, the worker's, this process's, and PostgreSQL's
/// with its commits.
struct Usage {
    heralds: Vec<f64>,
    worker: f64,
    client: f64,
    postgres: Option<pg::PgSnapshot>,
}

impl Usage {
    async fn now(procs: &procs::Procs, schema: &mut Option<pg::Schema>) -> anyhow::Result<Usage> {
        let cpu = |c: &std::process::Child| procs::cpu_s(&c.id().to_string()).unwrap_or(0.0);
        let postgres = match schema {
            Some(s) => Some(s.snapshot().await?),
            None => None,
        };
        Ok(Usage {
            heralds: procs.heralds.iter().map(cpu).collect(),
            worker: procs.worker.as_ref().map_or(0.0, cpu),
            client: procs::cpu_s("self").unwrap_or(0.0),
            postgres,
        })
    }

    fn since(&self, before: &Usage) -> stats::RunFigures {
        stats::RunFigures {
            store: if before.postgres.is_some() { "postgres" } else { "sqlite" }.into(),
            nodes: self.heralds.len(),
            herald_cpu_s: self.heralds.iter().zip(&before.heralds).map(|(a, b)| a - b).collect(),
            worker_cpu_s: self.worker - before.worker,
            client_cpu_s: self.client - before.client,
            postgres: None,
            ..Default::default()
        }
    }
}

/// W1 clean, then W1 with the worker shedding: the same herald, the same
/// worker, one after the other.
async fn run_shed(
    o: &Options,
    http: &reqwest::Client,
    procs: &procs::Procs,
    pid: Option<u32>,
) -> anyhow::Result<Report> {
    let url = &procs.herald_urls;
    let load = format!("{}/load", procs.worker_url);
    let mut runs = Vec::new();
    for workflow in ["order", "order-shed"] {
        if o.warmup > 0 {
            client::run(http, url, workflow, o.warmup, o.c.min(o.warmup), true, ProgressBar::hidden()).await?;
        }
        http.get(&load).send().await?; // resets the worker's counts
        let b = bar(o.n, workflow);
        let run = client::run(http, url, workflow, o.n, o.c, true, b.clone()).await?;
        b.finish();
        let seen: worker::LoadSeen = http.get(&load).send().await?.json().await?;
        let e2e = histogram(run.samples.iter().filter_map(|s| s.e2e_us));
        let accept = histogram(run.samples.iter().map(|s| s.accept_us));
        runs.push((run.wall, accept, e2e, seen));
    }
    let (clean, shedding) = (&runs[0], &runs[1]);
    let mut report = report(o, shedding.0, &shedding.1, Some(&shedding.2), pid);
    report.shed = Some(stats::Shed {
        percent: procs::SHED_PERCENT,
        clean_per_s: o.n as f64 / clean.0.as_secs_f64(),
        clean_e2e: latency(&clean.2),
        clean_peak_in_flight: clean.3.peak_in_flight,
        peak_in_flight: shedding.3.peak_in_flight,
        calls: shedding.3.calls,
        shed: shedding.3.shed,
    });
    if let Some(path) = &o.chart {
        let curves = vec![("clean W1", stats::curve(&clean.2)), ("shedding W1", stats::curve(&shedding.2))];
        let title = format!("herald W1 N={} C={}, {}% of first attempts shed", o.n, o.c, procs::SHED_PERCENT);
        chart::write(path, &title, &curves)?;
    }
    Ok(report)
}

async fn run_pubsub(
    o: &Options,
    http: &reqwest::Client,
    procs: &procs::Procs,
    pid: Option<u32>,
) -> anyhow::Result<Report> {
    let consumer = if o.workload == Workload::W3 { pubsub::Consumer::Push } else { pubsub::Consumer::Pull };
    let plan = |n: usize| w3_plan(o, consumer, n);
    if o.warmup > 0 {
        let warm = plan(o.warmup * o.batch.max(1));
        pubsub::run(http, &procs.herald_url, &procs.worker_url, warm, ProgressBar::hidden()).await?;
    }
    let b = bar(o.n, "delivered");
    let run = pubsub::run(http, &procs.herald_url, &procs.worker_url, plan(o.n), b.clone()).await?;
    b.finish();
    pubsub_report(o, &run, pid)
}

/// W3's events straight into the broker (NATS JetStream or RabbitMQ): the
/// warm-up, then the run.
async fn run_raw(o: &Options, url: &str, prefix: &str) -> anyhow::Result<Report> {
    let plan = |n: usize| w3_plan(o, pubsub::Consumer::Pull, n);
    let raw = async |plan: pubsub::Plan, bar: ProgressBar| match o.workload {
        Workload::W3RawNats => rawnats::run(url, prefix, plan, bar).await,
        _ => rawrabbit::run(url, prefix, plan, bar).await,
    };
    if o.warmup > 0 {
        raw(plan(o.warmup * o.batch.max(1)), ProgressBar::hidden()).await?;
    }
    let b = bar(o.n, "acked");
    let run = raw(plan(o.n), b.clone()).await?;
    b.finish();
    pubsub_report(o, &run, None)
}

/// `n` of W3's events, published as the options say.
fn w3_plan(o: &Options, consumer: pubsub::Consumer, n: usize) -> pubsub::Plan {
    let (push_batch, push_in_flight) = (o.push_batch, o.push_in_flight);
    pubsub::Plan { consumer, n, c: o.c, batch: o.batch, rate: o.rate, push_batch, push_in_flight }
}

/// A W3 run's report (herald's or the raw broker's): events/s, each
/// publish's latency, each event's delivery lag.
fn pubsub_report(o: &Options, run: &pubsub::Run, pid: Option<u32>) -> anyhow::Result<Report> {
    let publish = histogram(run.publish_us.iter().copied());
    let lag = histogram(run.lag_us.iter().copied());
    let events = stats::Events {
        batch: o.batch,
        push_batch: (o.workload == Workload::W3).then_some(o.push_batch),
        push_in_flight: (o.workload == Workload::W3).then_some(o.push_in_flight),
        rate: o.rate,
        duplicates: run.duplicates,
        broker: o.broker.as_deref().and_then(|url| Engine::of(url).ok()).map(|e| e.name().to_string()),
    };
    let report = Report { events: Some(events), ..report(o, run.wall, &publish, Some(&lag), pid) };
    if let Some(path) = &o.chart {
        let curves = vec![("publish", stats::curve(&publish)), ("delivery", stats::curve(&lag))];
        let title =
            format!("herald {} N={} B={}: {:.0} events/s", report.workload, o.n, o.batch, report.completed_per_s);
        chart::write(path, &title, &curves)?;
    }
    Ok(report)
}

/// The figures every workload reports: throughput, the two latencies, and
/// herald's memory and CPU.
fn report(
    o: &Options,
    wall: Duration,
    accept: &hdrhistogram::Histogram<u64>,
    e2e: Option<&hdrhistogram::Histogram<u64>>,
    pid: Option<u32>,
) -> Report {
    let usage = pid.and_then(procs::usage);
    Report {
        workload: format!("{:?}", o.workload).to_lowercase(),
        n: o.n,
        c: o.c,
        wall_s: wall.as_secs_f64(),
        completed_per_s: o.n as f64 / wall.as_secs_f64(),
        accept: latency(accept),
        e2e: e2e.map(latency),
        herald_peak_rss_mb: usage.map(|u| u.0),
        herald_cpu_s: usage.map(|u| u.1),
        watchers: None,
        events: None,
        gateway: None,
        shed: None,
        run: None,
    }
}

/// Direct, herald's gateway and nginx, scenario by scenario, each target in
/// turn so they meet the same conditions.
async fn run_gateway(o: &Options, procs: &procs::Procs, pid: Option<u32>) -> anyhow::Result<Report> {
    let authority = |url: &str| url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let dir = tempfile::tempdir()?;
    let nginx = gateway::nginx(dir.path(), &authority(&procs.worker_url))?;
    let mut targets = vec![
        gateway::Target { name: "direct".into(), authority: authority(&procs.worker_url), path: "/ok".into() },
        gateway::Target {
            name: "herald".into(),
            authority: authority(&procs.herald_url),
            path: "/gw/worker/ok".into(),
        },
    ];
    if let Some(n) = &nginx {
        targets.push(gateway::Target { name: "nginx".into(), authority: n.authority.clone(), path: "/ok".into() });
    }
    let mut reports: Vec<gateway::TargetReport> =
        targets.iter().map(|t| gateway::TargetReport { name: t.name.clone(), ..Default::default() }).collect();
    let secs = o.seconds;
    let b = bar(targets.len() * 4, "scenarios");
    for t in &targets {
        gateway::flat_out(t, 1, o.c.max(1)).await?; // warm the pools
    }
    for rate in [1000u32, 5000] {
        for (t, r) in targets.iter().zip(reports.iter_mut()) {
            r.paced.push(gateway::paced(t, rate, secs, 16).await?);
            b.inc(1);
        }
    }
    for (t, r) in targets.iter().zip(reports.iter_mut()) {
        r.max_per_s = gateway::flat_out(t, secs, o.c.max(1)).await?;
        b.inc(1);
    }
    for (t, r) in targets.iter().zip(reports.iter_mut()) {
        r.held_connections = o.watchers;
        r.held_errors = gateway::hold(t, o.watchers, secs).await?;
        b.inc(1);
    }
    b.finish();
    if let Some(path) = &o.chart {
        let curves: Vec<(&str, Vec<(f64, f64)>)> =
            reports.iter().filter_map(|r| Some((r.name.as_str(), r.paced.last()?.curve.clone()))).collect();
        chart::write(path, "gateway latency at 5,000 requests/s: direct, herald, nginx", &curves)?;
    }
    let herald = &reports[1];
    let first = herald.paced.first().map(|p| p.latency).unwrap_or_default();
    let mut report = report(o, Duration::from_secs(secs), &histogram(std::iter::empty()), None, pid);
    report.accept = first;
    report.completed_per_s = herald.max_per_s;
    report.gateway = Some(reports);
    Ok(report)
}
