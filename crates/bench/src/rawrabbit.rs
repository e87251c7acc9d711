//! W3's yardstick on RabbitMQ: the same events driven straight into the
//! server, no herald in between (`-w w3-raw-rabbit --broker amqp://…`).
//! What herald on RabbitMQ reaches is judged against this, on the same
//! server, so the ratio says what herald's own work costs.
//!
//! It does the job herald's RabbitMQ backend does for W3, the engine's
//! cheapest way, and nothing more:
//!
//! - the topology herald makes (`herald_rabbit::topology`): the prefix's
//!   topic exchange, and one quorum queue with herald's arguments (delivery
//!   limit, dead-letter exchange) bound to the topic's keyless routing key;
//! - publishers: the same N events in the same batches, C in flight, on one
//!   channel in confirm mode (as herald's publisher is), persistent; each
//!   batch's publishes all sent, then their confirms awaited;
//! - consumers: four (as W3 pull has four pullers), each `basic.consume` on
//!   a channel of its own with a prefetch of [`PREFETCH`]; every message is
//!   acknowledged one by one (`basic.ack`, not `multiple`) and counted
//!   received once its ack is written to the socket. AMQP has no answer to
//!   an ack, so there is nothing more to wait for: the raw consumer's ack is
//!   cheaper than herald's, whose ack request is answered only after herald
//!   has sent its own `basic.ack`.
//!
//! Everything is named under the run's prefix as herald names it, so
//! `herald_rabbit::destroy` takes the exchanges away after; the queue goes
//! at the end of the run.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::{Context, ensure};
use futures::StreamExt;
use herald_rabbit::{
    names::{Names, Part},
    topology,
};
use indicatif::ProgressBar;
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    publisher_confirm::Confirmation,
    types::FieldTable,
};
use serde_json::Value;

use crate::pubsub::{self, Plan, Run, Seen};

/// Consumers at once: W3 pull's four pullers.
const CONSUMERS: usize = 4;
/// Unacknowledged deliveries a consumer may hold, and what it takes at a
/// time: as many as a W3 puller asks for.
const PREFETCH: u16 = 256;

pub async fn run(url: &str, prefix: &str, plan: Plan, bar: ProgressBar) -> anyhow::Result<Run> {
    ensure!(plan.batch >= 1 && plan.c >= 1, "batch and c must be at least 1");
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    let conn = Connection::connect(url, props)
        .await
        .with_context(|| format!("connecting to RabbitMQ at {}", herald_rabbit::redact(url)))?;
    let names = Names::new(prefix, herald_rabbit::DEFAULT_PARTITIONS);
    let topic = format!("w3raw{:08x}", rand::random::<u32>());
    let queue = names.queue(&topic, Part::Keyless);
    let routing_key = names.routing_key(&topic, Part::Keyless);

    let setup = conn.create_channel().await?;
    topology::declare_base(&setup, &names).await.context("declaring the exchanges")?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    setup.queue_declare(&queue, durable, topology::queue_arguments(&names, Part::Keyless)).await?;
    let (exchange, no_args) = (names.topics_exchange(), FieldTable::default());
    setup.queue_bind(&queue, &exchange, &routing_key, QueueBindOptions::default(), no_args).await?;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let started = Instant::now();
    let mut consumers = Vec::new();
    let mut channels = Vec::new();
    for _ in 0..CONSUMERS {
        let ch = conn.create_channel().await?;
        ch.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
        let deliveries = ch.basic_consume(&queue, "", BasicConsumeOptions::default(), FieldTable::default()).await?;
        consumers.push(tokio::spawn(consume(deliveries, plan.n, seen.clone())));
        channels.push(ch);
    }
    let publisher = conn.create_channel().await?;
    publisher.confirm_select(ConfirmSelectOptions::default()).await?;
    let publish_us = pubsub::publish_batches(&plan, started, bar, move |events: Vec<Value>| {
        let (ch, exchange, routing_key) = (publisher.clone(), exchange.clone(), routing_key.clone());
        async move {
            let mut confirms = Vec::with_capacity(events.len());
            for e in &events {
                let props = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/cloudevents+json".into());
                let body = serde_json::to_vec(e)?;
                confirms.push(
                    ch.basic_publish(&exchange, &routing_key, BasicPublishOptions::default(), &body, props).await?,
                );
            }
            for c in confirms {
                ensure!(!matches!(c.await?, Confirmation::Nack(_)), "the server refused a publish (nack)");
            }
            Ok(())
        }
    })
    .await?;
    for c in consumers {
        c.await??;
    }
    let run = Seen::finish(seen, started, plan.n, publish_us)?;
    // The consumers' channels close first: a queue deleted under its
    // consumers has the server cancel them while lapin may be cancelling
    // them too, and a cancel-ok nobody awaits is a connection error.
    for ch in channels {
        ch.close(200, "done").await.context("closing a consumer's channel")?;
    }
    // Every event acknowledged: the queue is empty, and goes.
    setup.queue_delete(&queue, QueueDeleteOptions::default()).await.context("removing the queue")?;
    let _ = conn.close(200, "done").await;
    Ok(run)
}

/// Takes what arrives, up to [`PREFETCH`] at once, and acknowledges each
/// message; an event counts as received once its ack is written. Ends when
/// all `n` events are in.
async fn consume(deliveries: lapin::Consumer, n: usize, seen: Arc<Mutex<Seen>>) -> anyhow::Result<()> {
    pubsub::take_chunks(deliveries.ready_chunks(PREFETCH.into()), n, seen, |chunk| async move {
        let mut got = Vec::with_capacity(chunk.len());
        let mut acks = Vec::with_capacity(chunk.len());
        for d in chunk {
            let d = d.context("consuming")?;
            let event: Value = serde_json::from_slice(&d.data)?;
            got.push(pubsub::lag_of(&event).context("an event without its send time")?);
            acks.push(async move { d.acker.ack(BasicAckOptions::default()).await });
        }
        for ack in futures::future::join_all(acks).await {
            ack.context("acknowledging")?;
        }
        Ok(got)
    })
    .await
}
