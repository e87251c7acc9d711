//! W3's yardstick on NATS: the same events driven straight into JetStream,
//! no herald in between (`-w w3-raw-nats --broker nats://…`). What herald
//! on NATS reaches is judged against this, on the same server, so the
//! ratio says what herald's own work costs, not what the server does.
//!
//! It does the job herald's NATS backend does for W3, the engine's
//! cheapest way, and nothing more:
//!
//! - publishers: the same N events in the same batches, C in flight, each
//!   batch's publishes all sent before their acks are awaited (as herald's
//!   backend publishes a batch), with the same dedupe header, to a stream
//!   made as herald makes a topic's (file storage, interest retention);
//! - consumers: four (as W3 pull has four pullers), on one durable pull
//!   consumer, each taking up to 256 at a time; every message is
//!   acknowledged and the ack awaited (a request, as herald's acks are),
//!   so "received" means acknowledged.
//!
//! The stream is named under the run's prefix as herald names a topic's
//! (`{prefix}-t-…`), so `herald_nats::destroy` takes it away too should
//! the run fail half way.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, pull},
    stream::{self, RetentionPolicy, StorageType},
};
use futures::StreamExt;
use indicatif::ProgressBar;
use serde_json::Value;

use crate::pubsub::{self, Plan, Run, Seen};

/// Consumers pulling at once, and what each takes at a time: W3 pull's.
const PULLERS: usize = 4;
const PULL_MAX: usize = 256;

/// The header JetStream dedupes publishes by, set as herald sets it.
const MSG_ID: &str = "Nats-Msg-Id";

pub async fn run(url: &str, prefix: &str, plan: Plan, bar: ProgressBar) -> anyhow::Result<Run> {
    ensure!(plan.batch >= 1 && plan.c >= 1, "batch and c must be at least 1");
    let client = async_nats::ConnectOptions::new()
        .name("herald-bench")
        .connect(url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    let js = jetstream::new(client.clone());
    let topic = format!("w3raw-{:08x}", rand::random::<u32>());
    let name = format!("{prefix}-t-{topic}");
    let subject = format!("{prefix}.t.{topic}.u");
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.t.{topic}.*")],
            retention: RetentionPolicy::Interest,
            storage: StorageType::File,
            duplicate_window: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .context("making the stream")?;
    // Before the first publish: under interest retention, an event no
    // consumer is interested in is not kept.
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("w3".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            filter_subject: subject.clone(),
            ..Default::default()
        })
        .await
        .context("making the consumer")?;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let started = Instant::now();
    let mut pullers = Vec::new();
    for _ in 0..PULLERS {
        let messages = consumer.stream().max_messages_per_batch(PULL_MAX).messages().await?;
        pullers.push(tokio::spawn(consume(client.clone(), messages, plan.n, seen.clone())));
    }
    let publisher = js.clone();
    let publish_us = pubsub::publish_batches(&plan, started, bar, move |events: Vec<Value>| {
        let (js, subject) = (publisher.clone(), subject.clone());
        async move {
            let mut acks = Vec::with_capacity(events.len());
            for e in &events {
                let (source, id) = (e["source"].as_str().unwrap_or_default(), e["id"].as_str().unwrap_or_default());
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(MSG_ID, format!("{}:{source}:{id}", source.len()).as_str());
                acks.push(js.publish_with_headers(subject.clone(), headers, serde_json::to_vec(e)?.into()).await?);
            }
            for ack in acks {
                ack.await?;
            }
            Ok(())
        }
    })
    .await?;
    for p in pullers {
        p.await??;
    }
    let run = Seen::finish(seen, started, plan.n, publish_us)?;
    // Every event acknowledged: the stream is empty, and goes.
    js.delete_stream(&name).await.context("removing the stream")?;
    Ok(run)
}

/// Takes what arrives, up to [`PULL_MAX`] at once, acknowledges it and
/// waits for the server to confirm each ack; an event counts as received
/// only then. Ends when all `n` events are in.
async fn consume(
    client: async_nats::Client,
    messages: pull::Stream,
    n: usize,
    seen: Arc<Mutex<Seen>>,
) -> anyhow::Result<()> {
    pubsub::take_chunks(messages.ready_chunks(PULL_MAX), n, seen, |chunk| {
        let client = client.clone();
        async move {
            let mut got = Vec::with_capacity(chunk.len());
            let mut acks = Vec::with_capacity(chunk.len());
            for m in chunk {
                let m = m.map_err(|e| anyhow::anyhow!("pulling: {e}"))?;
                let event: Value = serde_json::from_slice(&m.payload)?;
                got.push(pubsub::lag_of(&event).context("an event without its send time")?);
                let reply = m.reply.clone().context("a message without an ack subject")?;
                let client = client.clone();
                acks.push(async move { client.request(reply, "+ACK".into()).await });
            }
            for ack in futures::future::join_all(acks).await {
                ack.context("acknowledging")?;
            }
            Ok(got)
        }
    })
    .await
}
