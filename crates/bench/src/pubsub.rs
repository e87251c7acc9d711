//! W3, pub/sub: publishers send N events to a topic through herald's API (B
//! events a request, C requests in flight, or at a fixed rate); a push
//! subscription delivers each to the worker process, or pullers in this
//! process take them in batches and acknowledge them. Every event carries
//! the time it was sent, so the consumer measures publish-to-delivery lag;
//! the run ends when every event has been received.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use indicatif::ProgressBar;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumer {
    /// herald pushes each event to the worker process.
    Push,
    /// Pullers here take up to this many events a request.
    Pull,
}

pub struct Plan {
    pub consumer: Consumer,
    pub n: usize,
    /// Publish requests in flight at once.
    pub c: usize,
    /// Events per publish request.
    pub batch: usize,
    /// Events per second, paced; `None` publishes as fast as it goes.
    pub rate: Option<f64>,
    /// Push: events per delivery request.
    pub push_batch: usize,
    /// Push: events out to the consumer at once.
    pub push_in_flight: usize,
}

pub struct Run {
    pub wall: Duration,
    /// Each publish request's latency (durable when answered), µs.
    pub publish_us: Vec<u64>,
    /// Each event's lag from just before its publish to its receipt, µs.
    pub lag_us: Vec<u64>,
    /// Events received more than once (at-least-once redeliveries).
    pub duplicates: usize,
}

/// Microseconds since the epoch: the publisher's and the consumer's clock
/// are the same machine's.
pub fn now_us() -> u64 {
    chrono::Utc::now().timestamp_micros() as u64
}

/// The lag of an event whose data carries the time it was sent.
pub fn lag_of(event: &Value) -> Option<(u64, u64)> {
    let sent = event["data"]["t"].as_u64()?;
    let i = event["data"]["i"].as_u64()?;
    Some((i, now_us().saturating_sub(sent)))
}

pub async fn run(http: &reqwest::Client, url: &str, worker: &str, plan: Plan, bar: ProgressBar) -> anyhow::Result<Run> {
    ensure!(plan.batch >= 1 && plan.c >= 1, "batch and c must be at least 1");
    let topic = format!("w3-{:08x}", rand::random::<u32>());
    let mut sub = json!({"topic": topic, "retry": {"attempts": 10, "initial": "100ms"}});
    if plan.consumer == Consumer::Push {
        sub["push"] = json!({"service": "worker", "path": "/events", "max_in_flight": plan.push_in_flight, "batch": plan.push_batch});
        // Start from an empty record of what the worker received.
        http.get(format!("{worker}/events/lags")).send().await?;
    }
    let put = http.put(format!("{url}/v1/subscriptions/{topic}")).json(&sub).send().await?;
    ensure!(put.status().is_success(), "creating the subscription answered {}", put.status());

    let seen = Arc::new(Mutex::new(Seen::default()));
    let started = Instant::now();
    let pullers = match plan.consumer {
        Consumer::Pull => (0..4)
            .map(|_| tokio::spawn(pull(http.clone(), url.to_string(), topic.clone(), plan.n, seen.clone())))
            .collect(),
        Consumer::Push => Vec::new(),
    };
    let publish_us = publish(http, url, &topic, &plan, started, bar).await?;
    match plan.consumer {
        Consumer::Pull => {
            for p in pullers {
                p.await??;
            }
        }
        Consumer::Push => collect_pushed(http, worker, plan.n, &seen).await?,
    }
    let run = Seen::finish(seen, started, plan.n, publish_us)?;
    let _ = http.delete(format!("{url}/v1/subscriptions/{topic}")).send().await;
    Ok(run)
}

/// What the consumers have received so far, shared between them.
#[derive(Default)]
pub struct Seen {
    ids: HashSet<u64>,
    lags: Vec<u64>,
    duplicates: usize,
    /// When the latest new event was recorded.
    last: Option<Instant>,
}

impl Seen {
    pub fn record(&mut self, i: u64, lag: u64) {
        if self.ids.insert(i) {
            self.lags.push(lag);
            self.last = Some(Instant::now());
        } else {
            self.duplicates += 1;
        }
    }

    /// Distinct events recorded.
    pub fn count(&self) -> usize {
        self.ids.len()
    }

    /// The run, once every consumer is done: timed until the last new
    /// event was recorded, not until the consumers' last long poll ended.
    pub fn finish(seen: Arc<Mutex<Seen>>, started: Instant, n: usize, publish_us: Vec<u64>) -> anyhow::Result<Run> {
        let seen = Arc::try_unwrap(seen)
            .map_err(|_| anyhow::anyhow!("a consumer outlived the run"))?
            .into_inner()
            .expect("seen");
        let wall = seen.last.map_or_else(|| started.elapsed(), |last| last - started);
        ensure!(seen.ids.len() == n, "{} of {} events were received", seen.ids.len(), n);
        Ok(Run { wall, publish_us, lag_us: seen.lags, duplicates: seen.duplicates })
    }
}

/// Event `i` of a run, carrying `t`, the time it was sent (µs since the epoch).
pub fn event(i: usize, t: u64) -> Value {
    json!({"specversion": "1.0", "id": format!("e{i}"), "source": "/bench", "type": "Tick", "data": {"i": i, "t": t}})
}

/// herald's publishers: each batch one request to the topic's events.
async fn publish(
    http: &reqwest::Client,
    url: &str,
    topic: &str,
    plan: &Plan,
    started: Instant,
    bar: ProgressBar,
) -> anyhow::Result<Vec<u64>> {
    let endpoint = format!("{url}/v1/topics/{topic}/events");
    let http = http.clone();
    publish_batches(plan, started, bar, move |events| {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        async move {
            let resp = http
                .post(&endpoint)
                .header("content-type", "application/cloudevents-batch+json")
                .body(serde_json::to_vec(&events)?)
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("publish answered {}: {}", resp.status(), resp.text().await.unwrap_or_default());
            }
            resp.bytes().await?;
            Ok(())
        }
    })
    .await
}

/// Sends the plan's N events in batches of B through `send`, C batches in
/// flight (or each batch when `rate` makes it due); answers how long each
/// `send` took, µs. Every publisher of W3 (herald's API, raw NATS, raw
/// RabbitMQ) goes
/// through this, so they differ only in what `send` does.
pub async fn publish_batches<F, Fut>(
    plan: &Plan,
    started: Instant,
    bar: ProgressBar,
    send: F,
) -> anyhow::Result<Vec<u64>>
where
    F: Fn(Vec<Value>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let batches = plan.n.div_ceil(plan.batch);
    let tasks = (0..plan.c).map(|_| {
        let (next, bar, send) = (next.clone(), bar.clone(), send.clone());
        let (n, batch, rate) = (plan.n, plan.batch, plan.rate);
        tokio::spawn(async move {
            let mut took = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return anyhow::Ok(took);
                }
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64((b * batch) as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t = now_us();
                let events: Vec<Value> = (b * batch..((b + 1) * batch).min(n)).map(|i| event(i, t)).collect();
                let count = events.len();
                let t0 = Instant::now();
                send(events).await?;
                took.push(t0.elapsed().as_micros() as u64);
                bar.inc(count as u64);
            }
        })
    });
    let mut all = Vec::new();
    for t in futures::future::join_all(tasks).await {
        all.extend(t??);
    }
    Ok(all)
}

/// The raw engines' consumer loop (`rawnats`, `rawrabbit`): takes the
/// chunks of deliveries as they come, hands each to `take` (which
/// acknowledges them and answers each event's index and lag), and records
/// what it answers; ends once all `n` events are in, whoever took them.
pub async fn take_chunks<S, T, F, Fut>(
    mut chunks: S,
    n: usize,
    seen: Arc<Mutex<Seen>>,
    mut take: F,
) -> anyhow::Result<()>
where
    S: futures::Stream<Item = Vec<T>> + Unpin,
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<(u64, u64)>>>,
{
    use futures::StreamExt;
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.lock().expect("seen").count() < n {
        ensure!(Instant::now() < deadline, "the consumers stopped receiving events");
        // Now and then, to see whether the others have taken the rest.
        let Ok(chunk) = tokio::time::timeout(Duration::from_millis(100), chunks.next()).await else { continue };
        let got = take(chunk.context("the consumer's message stream ended")?).await?;
        let mut s = seen.lock().expect("seen");
        for (i, lag) in got {
            s.record(i, lag);
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct Pulled {
    messages: Vec<PulledMessage>,
}

#[derive(Deserialize)]
struct PulledMessage {
    ack_id: String,
    event: Value,
}

/// Pulls and acknowledges until all `n` events were seen. An event counts
/// once its ack is answered, as the raw consumers' do. The ack of one
/// batch is in flight while the next pull goes out (one ack at a time),
/// as the raw consumers' message stream has its next pull request out
/// while a chunk is acknowledged.
async fn pull(http: reqwest::Client, url: String, sub: String, n: usize, seen: Arc<Mutex<Seen>>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut acking: Option<tokio::task::JoinHandle<anyhow::Result<()>>> = None;
    while seen.lock().expect("seen").count() < n {
        ensure!(Instant::now() < deadline, "the pullers stopped receiving events");
        let resp = http
            .post(format!("{url}/v1/subscriptions/{sub}:pull"))
            .json(&json!({"max": 256, "wait": "1s"}))
            .send()
            .await?;
        ensure!(resp.status().is_success(), "pull answered {}", resp.status());
        let pulled: Pulled = resp.json().await?;
        if let Some(previous) = acking.take() {
            previous.await??;
        }
        if pulled.messages.is_empty() {
            continue;
        }
        let lags = pulled
            .messages
            .iter()
            .map(|m| lag_of(&m.event).context("an event without its send time"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ids: Vec<String> = pulled.messages.into_iter().map(|m| m.ack_id).collect();
        let ack = http.post(format!("{url}/v1/subscriptions/{sub}:ack")).json(&json!({"ack_ids": ids}));
        let seen = seen.clone();
        acking = Some(tokio::spawn(async move {
            let resp = ack.send().await?;
            ensure!(resp.status().is_success(), "ack answered {}", resp.status());
            let mut s = seen.lock().expect("seen");
            for (i, lag) in lags {
                s.record(i, lag);
            }
            Ok(())
        }));
    }
    if let Some(last) = acking {
        last.await??;
    }
    Ok(())
}

/// Waits for the worker to have received all `n` pushed events, then takes its record.
async fn collect_pushed(http: &reqwest::Client, worker: &str, n: usize, seen: &Arc<Mutex<Seen>>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let got: Vec<(u64, u64)> = http.get(format!("{worker}/events/lags")).send().await?.json().await?;
        let all = {
            let mut s = seen.lock().expect("seen");
            for (i, lag) in got {
                s.record(i, lag);
            }
            s.count() >= n
        };
        if all {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the pushed events stopped arriving");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
