//! The client of W0/W1: N operations, C in flight, each started (accept
//! latency: the 202, the operation durable) and then followed over SSE
//! until its final event (end-to-end latency). With several nodes, each
//! operation is started on the next node in turn and followed on another,
//! so every event it sees crossed from one node to the other. One
//! operation in [`PAIRED_EVERY`] is also followed on the node that started
//! it, where an event arrives as soon as it is committed (the node's own
//! hub): the other node's arrival minus that one is what crossing nodes
//! adds, commit to receipt, with the commit's own time left out.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures::StreamExt;
use indicatif::ProgressBar;
use serde::Deserialize;

use crate::starter::Starter;

/// One operation's times, in microseconds.
#[derive(Clone, Debug)]
pub struct Sample {
    pub accept_us: u64,
    pub e2e_us: Option<u64>,
    /// Each event seen: when it arrived minus its `at`.
    pub lags: Vec<Lag>,
    /// Paired operations only: for each event committed after both streams
    /// were open, its arrival on the other node minus on the starting one.
    pub cross_us: Vec<u64>,
}

/// One operation in this many is followed on two nodes (when there are).
pub const PAIRED_EVERY: usize = 10;

#[derive(Clone, Copy, Debug)]
pub struct Lag {
    pub us: u64,
    /// Committed after the watcher asked for the stream: delivered live,
    /// not read back from the store when the stream opened.
    pub live: bool,
}

pub struct Run {
    pub samples: Vec<Sample>,
    pub wall: Duration,
}

/// Starts `n` operations of `workflow`, `c` at a time, on the nodes at
/// `urls` in turn.
pub async fn run(
    http: &reqwest::Client,
    urls: &[String],
    workflow: &str,
    n: usize,
    c: usize,
    follow: bool,
    bar: ProgressBar,
) -> anyhow::Result<Run> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients = (0..c.max(1)).map(|_| {
        let (http, next, bar) = (http.clone(), next.clone(), bar.clone());
        let (urls, workflow) = (urls.to_vec(), workflow.to_string());
        tokio::spawn(async move {
            let mut out = Vec::new();
            let mut starters = Vec::with_capacity(urls.len());
            for url in &urls {
                starters.push(Starter::connect(url, &workflow).await?);
            }
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(out);
                }
                let (at, watch) = (i % urls.len(), (i + 1) % urls.len());
                let paired = (urls.len() > 1 && i % PAIRED_EVERY == 0).then(|| urls[at].as_str());
                out.push(one(&http, &urls[watch], paired, &mut starters[at], i, follow).await?);
                bar.inc(1);
            }
        })
    });
    let mut samples = Vec::with_capacity(n);
    for r in futures::future::join_all(clients).await {
        samples.extend(r??);
    }
    Ok(Run { samples, wall: started.elapsed() })
}

/// Starts operation `i` with `starter`, and follows it on the node at
/// `url` (and on `paired` too, when given).
async fn one(
    http: &reqwest::Client,
    url: &str,
    paired: Option<&str>,
    starter: &mut Starter,
    i: usize,
    follow: bool,
) -> anyhow::Result<Sample> {
    let t0 = Instant::now();
    let id = starter.start(format!("{{\"n\": {i}}}")).await?;
    let accept_us = t0.elapsed().as_micros() as u64;
    if !follow {
        return Ok(Sample { accept_us, e2e_us: None, lags: vec![], cross_us: vec![] });
    }
    let asked = chrono::Utc::now();
    let remote = arrivals(http, url, &id);
    let (remote, local) = match paired {
        Some(local) => {
            let (r, l) = tokio::join!(remote, arrivals(http, local, &id));
            (r?, Some(l?))
        }
        None => (remote.await?, None),
    };
    let lags = remote
        .events
        .iter()
        .map(|(e, _, now)| Lag { us: (*now - e.at).num_microseconds().unwrap_or(0).max(0) as u64, live: e.at >= asked })
        .collect();
    let cross_us = local.map(|l| crossing(&remote, &l)).unwrap_or_default();
    let status = remote.events.last().map(|(e, ..)| e.kind.as_str()).unwrap_or_default();
    if status != "succeeded" {
        bail!("operation {id} ended {status}, expected succeeded");
    }
    Ok(Sample { accept_us, e2e_us: Some(t0.elapsed().as_micros() as u64), lags, cross_us })
}

/// An operation's events as one stream saw them: each with when it came
/// (monotonic, and the wall clock for comparing with `at`), and when the
/// stream was open.
struct Arrivals {
    open: chrono::DateTime<chrono::Utc>,
    events: Vec<(SeenEvent, Instant, chrono::DateTime<chrono::Utc>)>,
}

async fn arrivals(http: &reqwest::Client, url: &str, id: &str) -> anyhow::Result<Arrivals> {
    let mut events = Vec::with_capacity(8);
    let open = follow(http, url, id, |e| events.push((e.clone(), Instant::now(), chrono::Utc::now()))).await?;
    Ok(Arrivals { open, events })
}

/// For each event both streams saw live, how much later the remote one
/// had it.
fn crossing(remote: &Arrivals, local: &Arrivals) -> Vec<u64> {
    let open = remote.open.max(local.open);
    remote
        .events
        .iter()
        .filter(|(e, ..)| e.at > open)
        .filter_map(|(e, there, _)| {
            let (_, here, _) = local.events.iter().find(|(l, ..)| l.at == e.at && l.kind == e.kind)?;
            Some(there.saturating_duration_since(*here).as_micros() as u64)
        })
        .collect()
}

#[derive(Deserialize, Clone)]
pub struct SeenEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Reads an operation's SSE stream until its final event; answers the
/// final type. `seen` gets every event with the time it arrived.
pub async fn follow_to_end(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    mut seen: impl FnMut(&SeenEvent),
) -> anyhow::Result<String> {
    let mut last = String::new();
    follow(http, url, id, |e| {
        last = e.kind.clone();
        seen(e)
    })
    .await?;
    Ok(last)
}

/// Reads an operation's SSE stream until its final event, giving `seen`
/// each; answers when the stream was open (its answer's head came).
async fn follow(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    mut seen: impl FnMut(&SeenEvent),
) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let resp = http.get(format!("{url}/v1/operations/{id}/events")).send().await?;
    if resp.status() != 200 {
        bail!("events of {id} answered {}", resp.status());
    }
    let open = chrono::Utc::now();
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let chunk = tokio::time::timeout_at(deadline, body.next()).await.context("no final event within 120 s")?;
        let Some(chunk) = chunk else { bail!("the stream of {id} ended before its final event") };
        buf.extend_from_slice(&chunk?);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..end + 2).collect();
            for line in frame.split(|b| *b == b'\n') {
                let Some(data) = line.strip_prefix(b"data: ") else { continue };
                let e: SeenEvent = serde_json::from_slice(data)?;
                seen(&e);
                if matches!(e.kind.as_str(), "succeeded" | "failed" | "cancelled") {
                    return Ok(open);
                }
            }
        }
    }
}
