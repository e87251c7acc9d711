//! The `herald` command: `serve`, `demo`, `check`, `bench` and `bench-worker` (the benchmarks' step service).
//!
//! Messages and progress go to stderr; data (what `check` found) to stdout.

mod demo;

/// Many small, short-lived allocations across threads (JSON, HTTP): the
/// system allocator's arena locks showed in profiles; mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use herald_server::{Application, Config};

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Durable sagas between microservices, told honestly and live to the end user."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// How log lines are written: `text` for a person, `json` (one object a
    /// line, with the span's `operation_id`, `workflow`, `step` and
    /// `trace_id` where they apply) for a log pipeline.
    #[arg(long, global = true, env = "HERALD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve(ServerArgs),
    /// Run the server with the example shop and account services and the demo page.
    ///
    /// Workflow files in --workflows are added to the demo's own; one with
    /// the name of a demo workflow replaces it.
    Demo {
        #[command(flatten)]
        server: ServerArgs,
        /// How long each demo step takes, so the progress can be watched.
        #[arg(long, default_value = "700ms", value_parser = humantime_parse)]
        pace: std::time::Duration,
    },
    /// Run a standard benchmark workload (BENCH.md) against a herald started here.
    Bench(BenchArgs),
    /// The benchmarks' no-op step service (started by `bench`).
    #[command(hide = true)]
    BenchWorker {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// Check the workflow files in a folder without starting anything.
    Check {
        dir: PathBuf,
        #[arg(long, env = "HERALD_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ServerArgs {
    /// The configuration file (default: ./herald.toml if it exists).
    #[arg(long, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7070].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Where the embedded store keeps its data [default: ./herald-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where operations are stored, as a URL [default: the embedded store
    /// in the data directory]. Also `store` in the file, `HERALD_STORE`.
    #[arg(long)]
    store: Option<String>,
    /// Where topics live, as a URL (nats://… or amqp://…) [default: in the store].
    /// Also `broker` in the file, `HERALD_BROKER`.
    #[arg(long)]
    broker: Option<String>,
    /// A folder of workflow files.
    #[arg(long)]
    workflows: Option<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    /// w0 (one step), w1 (the order saga), w1-shed (w1 clean, then on a worker answering 503 to
    /// a fifth of first attempts), w2 (w1 with SSE watchers), accept (engine paused),
    /// w3 (pub/sub pushed to the worker), w3-pull (pub/sub pulled by the harness), w3-raw-nats and
    /// w3-raw-rabbit (w3's events straight into NATS JetStream or RabbitMQ at --broker, no herald:
    /// the yardstick), gateway (direct vs herald's gateway vs nginx; -c connections flat out, --watchers held open).
    #[arg(long, short, default_value = "w1", value_parser = ["w0", "w1", "w1-shed", "w2", "accept", "w3", "w3-pull", "w3-raw-nats", "w3-raw-rabbit", "gateway"])]
    workload: String,
    /// Operations to run (after the warm-up).
    #[arg(short, default_value_t = 2000)]
    n: usize,
    /// Operations in flight at once.
    #[arg(short, default_value_t = 50)]
    c: usize,
    /// Watchers for w2.
    #[arg(long, default_value_t = 10_000)]
    watchers: usize,
    /// Warm-up operations, not counted.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Benchmark a running herald (with the bench workflows) instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// Write a latency-percentile chart (SVG) here.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// w3: events per publish request (with -c requests in flight).
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// w3: publish at this many events a second instead of as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// w3: events herald pushes to the consumer in one request.
    #[arg(long, default_value_t = 1)]
    push_batch: usize,
    /// w3: events herald may have out to the consumer at once (the subscription's
    /// `max_in_flight`); the raw consumers hold up to 4 × 256.
    #[arg(long, default_value_t = 256)]
    push_in_flight: usize,
    /// gateway: seconds each scenario runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// The store of the heralds started here: `postgres://…` names a database, in which each run
    /// makes a schema of its own (`herald_bench_…`) and drops it after [default: the embedded store].
    #[arg(long)]
    store: Option<String>,
    /// Herald nodes to start on the store (w0, w1, accept; PostgreSQL): operations start on each
    /// in turn and are followed on another, so every event crosses nodes.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Topics of the heralds started here on this broker (nats://… or amqp://…), each run under a
    /// prefix of its own (`bench_…`), removed after; for w3-raw-nats and w3-raw-rabbit, the server
    /// it drives [default: topics in the store].
    #[arg(long)]
    broker: Option<String>,
}

fn humantime_parse(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<herald_core::Span>().map(|s| s.0)
}

impl ServerArgs {
    /// Defaults ← file ← `HERALD_…` env ← flags.
    fn config(&self) -> anyhow::Result<Config> {
        let default_file = PathBuf::from("herald.toml");
        let file = self.config.clone().or_else(|| default_file.exists().then_some(default_file));
        let mut c = Config::load(file.as_deref(), std::env::vars())?;
        if let Some(l) = self.listen {
            c.listen = l;
        }
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(s) = &self.store {
            c.store = Some(s.clone());
        }
        if let Some(b) = &self.broker {
            c.broker.url = Some(b.clone());
        }
        if let Some(w) = &self.workflows {
            c.workflows = Some(w.clone());
        }
        Ok(c)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    } else {
        // Colours for a person at a terminal, plain text for a log file.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    match cli.command {
        Cmd::Serve(args) => {
            let app = Application::build(args.config()?).await?;
            tracing::info!(address = %app.local_addr(), "herald is listening");
            app.run_until_stopped(shutdown_signal()).await
        }
        Cmd::Demo { server, pace } => demo::run(server.config()?, pace, shutdown_signal()).await,
        Cmd::Bench(b) => {
            let workload = match b.workload.as_str() {
                "w0" => herald_bench::Workload::W0,
                "w1-shed" => herald_bench::Workload::W1Shed,
                "w2" => herald_bench::Workload::W2,
                "accept" => herald_bench::Workload::Accept,
                "w3" => herald_bench::Workload::W3,
                "w3-pull" => herald_bench::Workload::W3Pull,
                "w3-raw-nats" => herald_bench::Workload::W3RawNats,
                "w3-raw-rabbit" => herald_bench::Workload::W3RawRabbit,
                "gateway" => herald_bench::Workload::Gateway,
                _ => herald_bench::Workload::W1,
            };
            let report = herald_bench::run(herald_bench::Options {
                workload,
                n: b.n,
                c: b.c,
                url: b.url,
                chart: b.chart,
                watchers: b.watchers,
                warmup: b.warmup,
                batch: b.batch,
                rate: b.rate,
                push_batch: b.push_batch,
                push_in_flight: b.push_in_flight,
                seconds: b.seconds,
                store: b.store,
                nodes: b.nodes,
                broker: b.broker,
            })
            .await?;
            eprint!("{}", report.table());
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Cmd::BenchWorker { listen } => herald_bench::worker::run(listen).await,
        Cmd::Check { dir, config } => {
            let c = Config::load(config.as_deref(), std::env::vars())?;
            let found =
                herald_server::workflows::read_dir(&dir, &c.services).with_context(|| "the workflows are not valid")?;
            let mut untranslated = 0;
            for (path, wf) in found {
                println!(
                    "{path}: workflow `{}` version {} — {} steps in {} stages, in {}",
                    wf.name,
                    wf.version,
                    wf.steps.len(),
                    wf.stages.len(),
                    wf.languages.join(", ")
                );
                // herald falls back to the first language, so these run; but a user would read the fallback.
                for (at, lang) in wf.untranslated() {
                    eprintln!("{path}: `{at}` has no `{lang}` text, and `{lang}` is one of its `languages`");
                    untranslated += 1;
                }
            }
            anyhow::ensure!(
                untranslated == 0,
                "{untranslated} text(s) missing from a language their workflow declares"
            );
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
