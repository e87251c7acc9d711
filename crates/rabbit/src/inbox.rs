//! Each herald process's inbox: an exclusive queue `{prefix}.p.{process}`
//! (gone with the process's connection), bound to the fanout exchange
//! `{prefix}.wake`. It takes two kinds of message:
//!
//! - `wake`: another process published to a topic (the body); waiting
//!   consumers of its subscriptions look now.
//! - `call`: an ack or nack for deliveries this process holds, sent by the
//!   process a consumer happened to reach. The answer goes back through
//!   RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`), with no queue of
//!   the caller's own. A call nobody answers in time (the holder ended,
//!   and its leases with it) answers its ids unknown.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use herald_broker::Redelivery;
use lapin::{
    BasicProperties, Channel, Connection,
    options::{BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::{Inner, ack_id::AckId, names::Names, storage};

type BResult<T> = herald_broker::Result<T>;

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// How long a forwarded answer waits for the holder's reply.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum Redo {
    Backoff,
    AfterMs(u64),
    Never,
    UnsentMs(u64),
}

impl From<Redelivery> for Redo {
    fn from(r: Redelivery) -> Self {
        let ms = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
        match r {
            Redelivery::Backoff => Redo::Backoff,
            Redelivery::After(d) => Redo::AfterMs(ms(d)),
            Redelivery::Never => Redo::Never,
            Redelivery::Unsent(d) => Redo::UnsentMs(ms(d)),
        }
    }
}

impl From<Redo> for Redelivery {
    fn from(r: Redo) -> Self {
        match r {
            Redo::Backoff => Redelivery::Backoff,
            Redo::AfterMs(ms) => Redelivery::After(Duration::from_millis(ms)),
            Redo::Never => Redelivery::Never,
            Redo::UnsentMs(ms) => Redelivery::Unsent(Duration::from_millis(ms)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Call {
    Ack { sub: String, ids: Vec<String> },
    Nack { sub: String, ids: Vec<String>, redelivery: Redo, error: String },
}

/// Calls to other processes' inboxes, and their replies.
/// Calls waiting for their reply, by correlation id.
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>>;

pub struct Calls {
    channel: Channel,
    pending: Pending,
    next: AtomicU64,
}

impl Calls {
    pub async fn open(conn: &Connection) -> BResult<(Calls, tokio::task::AbortHandle)> {
        let channel = conn.create_channel().await.map_err(storage)?;
        // Direct reply-to: consumed, without acks, on the channel that publishes.
        let options = BasicConsumeOptions { no_ack: true, ..Default::default() };
        let mut replies = channel.basic_consume(REPLY_TO, "", options, FieldTable::default()).await.map_err(storage)?;
        let pending: Pending = Arc::default();
        let waiting = pending.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(reply)) = replies.next().await {
                let Some(id) = reply.properties.correlation_id().as_ref().map(|c| c.to_string()) else { continue };
                if let Some(tx) = waiting.lock().expect("calls").remove(&id) {
                    let _ = tx.send(reply.data);
                }
            }
        });
        Ok((Calls { channel, pending, next: AtomicU64::new(0) }, task.abort_handle()))
    }

    /// The holder's reply, or `None` when it gave none in time.
    pub async fn call(&self, names: &Names, process: &str, call: &Call) -> BResult<Option<Vec<u8>>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("calls").insert(id.clone(), tx);
        let body = serde_json::to_vec(call).map_err(storage)?;
        let props = BasicProperties::default()
            .with_type("call".into())
            .with_reply_to(REPLY_TO.into())
            .with_correlation_id(id.clone().into());
        let sent =
            self.channel.basic_publish("", &names.inbox(process), BasicPublishOptions::default(), &body, props).await;
        if let Err(e) = sent {
            self.pending.lock().expect("calls").remove(&id);
            return Err(storage(e));
        }
        let reply = tokio::time::timeout(CALL_TIMEOUT, rx).await;
        self.pending.lock().expect("calls").remove(&id);
        Ok(reply.ok().and_then(Result::ok))
    }
}

/// Declares this process's inbox and serves it until aborted.
pub async fn serve(
    conn: &Connection,
    names: &Names,
    inner: Weak<Inner>,
    process: &str,
) -> BResult<tokio::task::AbortHandle> {
    let ch = conn.create_channel().await.map_err(storage)?;
    let queue = names.inbox(process);
    let options = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
    ch.queue_declare(&queue, options, FieldTable::default()).await.map_err(storage)?;
    ch.queue_bind(&queue, &names.wake_exchange(), "", QueueBindOptions::default(), FieldTable::default())
        .await
        .map_err(storage)?;
    let options = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let mut messages = ch.basic_consume(&queue, "", options, FieldTable::default()).await.map_err(storage)?;
    let task = tokio::spawn(async move {
        while let Some(Ok(m)) = messages.next().await {
            let Some(inner) = inner.upgrade() else { return };
            let kind = m.properties.kind().as_ref().map(|k| k.to_string());
            match kind.as_deref() {
                Some("wake") => inner.wakeups.wake_topic(&String::from_utf8_lossy(&m.data)),
                Some("call") => {
                    let ch = ch.clone();
                    tokio::spawn(async move { answer(&inner, &ch, m).await });
                }
                _ => {}
            }
        }
    });
    Ok(task.abort_handle())
}

async fn answer(inner: &Inner, ch: &Channel, m: lapin::message::Delivery) {
    let (Some(reply_to), Some(id)) = (m.properties.reply_to().clone(), m.properties.correlation_id().clone()) else {
        return;
    };
    let Ok(call) = serde_json::from_slice::<Call>(&m.data) else { return };
    let reply = match handle(inner, call).await {
        Ok(r) => r,
        Err(e) => {
            // No reply: the caller answers the ids unknown in time.
            tracing::warn!(error = %e, "a forwarded answer failed");
            return;
        }
    };
    let props = BasicProperties::default().with_correlation_id(id);
    if let Err(e) = ch.basic_publish("", reply_to.as_str(), BasicPublishOptions::default(), &reply, props).await {
        tracing::warn!(error = %e, "a forwarded answer's reply was not sent");
    }
}

async fn handle(inner: &Inner, call: Call) -> BResult<Vec<u8>> {
    let here = |ids: &[String]| -> Vec<(String, AckId)> {
        ids.iter()
            .filter_map(|raw| AckId::parse(raw).filter(|id| id.process == inner.process).map(|id| (raw.clone(), id)))
            .collect()
    };
    match call {
        Call::Ack { sub, ids } => {
            let Some(s) = inner.find(&sub).await? else { return serde_json::to_vec(&ids).map_err(storage) };
            let mut unknown = inner.acknowledge_here(&s, &here(&ids)).await?;
            unknown.extend(
                ids.iter().filter(|raw| AckId::parse(raw).is_none_or(|id| id.process != inner.process)).cloned(),
            );
            serde_json::to_vec(&unknown).map_err(storage)
        }
        Call::Nack { sub, ids, redelivery, error } => {
            let Some(s) = inner.find(&sub).await? else {
                let n = herald_broker::Nacked { unknown: ids, ..Default::default() };
                return serde_json::to_vec(&n).map_err(storage);
            };
            let mut n = inner.give_back_here(&s, &here(&ids), redelivery.into(), &error).await?;
            n.unknown.extend(
                ids.iter().filter(|raw| AckId::parse(raw).is_none_or(|id| id.process != inner.process)).cloned(),
            );
            serde_json::to_vec(&n).map_err(storage)
        }
    }
}

/// Tells every herald process on the prefix to look at `topic` now.
pub async fn signal(publisher: &Channel, names: &Names, topic: &str) {
    let props = BasicProperties::default().with_type("wake".into());
    let sent = publisher
        .basic_publish(&names.wake_exchange(), "", BasicPublishOptions::default(), topic.as_bytes(), props)
        .await;
    if let Err(e) = sent {
        tracing::debug!(topic, error = %e, "a look-now signal was not sent; others will poll");
    }
}
