//! W2: many live SSE watchers, each following an operation held open, while
//! W1 runs beside them. The held operations complete at a steady pace; the
//! lag is from an event's commit (its `at`) to its arrival at the watcher.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, bail};
use indicatif::ProgressBar;

use crate::{
    client,
    stats::{self, Watchers},
    worker::Held,
};

pub struct Watch {
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    lags_us: Arc<Mutex<Vec<u64>>>,
    pub count: usize,
    pub connected: Arc<std::sync::atomic::AtomicUsize>,
}

/// Opens a watcher on each operation (from [`hold_open`]).
pub fn open(http: &reqwest::Client, url: &str, ops: Vec<String>, bar: ProgressBar) -> Watch {
    let count = ops.len();
    let lags_us = Arc::new(Mutex::new(Vec::new()));
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(count);
    for id in ops {
        let (http, url, lags, connected, bar) =
            (http.clone(), url.to_string(), lags_us.clone(), connected.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let mut first = true;
            let end = client::follow_to_end(&http, &url, &id, |e| {
                if first {
                    first = false;
                    connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    bar.inc(1);
                }
                // Only events committed after we were watching measure live delivery.
                if matches!(e.kind.as_str(), "step_succeeded" | "succeeded") {
                    let lag = (chrono::Utc::now() - e.at).num_microseconds().unwrap_or(0).max(0) as u64;
                    lags.lock().expect("lags").push(lag);
                }
            })
            .await?;
            if end != "succeeded" {
                bail!("watched operation {id} ended {end}");
            }
            Ok(())
        }));
    }
    Watch { tasks, lags_us, count, connected }
}

/// Starts `count` operations of `watched`, each held open by its step.
pub async fn hold_open(http: &reqwest::Client, url: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    let chunks: Vec<usize> = (0..count).collect();
    for chunk in chunks.chunks(200) {
        let starts = chunk.iter().map(|i| {
            let http = http.clone();
            let url = format!("{url}/v1/workflows/watched/operations");
            let body = format!("{{\"n\": {i}}}");
            async move {
                let r = http.post(url).header("content-type", "application/json").body(body).send().await?;
                let v: serde_json::Value = r.json().await?;
                v["id"].as_str().map(str::to_string).context("no id in the start answer")
            }
        });
        for id in futures::future::join_all(starts).await {
            ids.push(id?);
        }
    }
    Ok(ids)
}

/// Completes the held operations, `per_tick` every `tick`, until none is left.
pub async fn complete_held(
    http: reqwest::Client,
    worker_url: String,
    total: usize,
    per_tick: usize,
    tick: Duration,
) -> anyhow::Result<()> {
    let mut pending: Vec<Held> = Vec::new();
    let mut done = 0;
    let mut ticker = tokio::time::interval(tick);
    while done < total {
        ticker.tick().await;
        if pending.len() < per_tick {
            let more: Vec<Held> = http.get(format!("{worker_url}/held")).send().await?.json().await?;
            pending.extend(more);
        }
        let batch: Vec<Held> = pending.drain(..per_tick.min(pending.len())).collect();
        let calls = batch.iter().map(|h| {
            http.post(&h.url)
                .bearer_auth(&h.token)
                .header("content-type", "application/json")
                .body("{\"result\": {}}")
                .send()
        });
        for r in futures::future::join_all(calls).await {
            let r = r?;
            if !r.status().is_success() {
                bail!("a callback answered {}", r.status());
            }
            done += 1;
        }
    }
    Ok(())
}

impl Watch {
    pub async fn finish(self, kib_per_watcher: f64) -> anyhow::Result<Watchers> {
        for t in self.tasks {
            t.await??;
        }
        let lags = self.lags_us.lock().expect("lags").clone();
        let h = stats::histogram(lags.iter().copied());
        Ok(Watchers {
            count: self.count,
            events_received: lags.len(),
            lag: stats::latency(&h),
            herald_kib_per_watcher: kib_per_watcher,
        })
    }
}
