//! A RabbitMQ stream read as a shared, ordered log: every herald process on
//! the prefix appends records to it and replays all of them, in the same
//! order, into a state of its own (a [`Fold`]).
//!
//! An append returns once this process has read its own record back: by
//! then its state holds every record before it, whoever appended them, so
//! what the fold answered for the record (a duplicate? which `seq`?) is the
//! same answer every process would give. The record's offset in the
//! stream is a number every process agrees on, and grows in append order.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection,
    options::{BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use crate::{confirmed, storage};

type BResult<T> = herald_broker::Result<T>;

/// How long an append waits to read its record back.
const READ_BACK: Duration = Duration::from_secs(10);

/// Records read from the stream before they are acknowledged (a stream
/// consumer needs a prefetch).
const PREFETCH: u16 = 500;

pub trait Fold: Send + 'static {
    type Record: Serialize + DeserializeOwned + Send;
    /// What applying a record tells the process that appended it.
    type Outcome: Send + 'static;

    fn apply(&mut self, offset: u64, record: Self::Record) -> Self::Outcome;
}

#[derive(Serialize, Deserialize)]
struct Envelope<R> {
    /// The appending reader and its count, so it knows its record again.
    by: String,
    n: u64,
    record: R,
}

/// Where a new reader starts.
pub enum From {
    First,
    /// The first chunk written at or after this many seconds since the epoch.
    Time(u64),
}

/// Appends waiting to read their record back, by their count: the
/// record's offset and outcome go to each.
type Waiting<O> = Mutex<HashMap<u64, oneshot::Sender<(u64, O)>>>;

pub struct Log<F: Fold> {
    stream: String,
    /// The appender's name in its records: this process and this reader.
    by: String,
    publisher: Channel,
    pub state: Mutex<F>,
    waiting: Waiting<F::Outcome>,
    next: AtomicU64,
    /// The reader stopped (the connection or the stream went away).
    ended: AtomicBool,
}

/// The stream's arguments: a stream queue; `max_age` lets the server drop
/// old segments (small ones, so that it can).
pub fn stream_arguments(max_age: Option<Duration>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("stream".into()));
    if let Some(age) = max_age {
        args.insert("x-max-age".into(), AMQPValue::LongString(format!("{}s", age.as_secs().max(1)).into()));
        args.insert("x-stream-max-segment-size-bytes".into(), AMQPValue::LongLongInt(8_000_000));
    }
    args
}

impl<F: Fold> Log<F> {
    /// Declares the stream, reads it from `from` into `state`, and keeps
    /// reading new records until the task is aborted.
    pub async fn open(
        conn: &Connection,
        publisher: Channel,
        stream: String,
        process: String,
        state: F,
        max_age: Option<Duration>,
        from: From,
    ) -> BResult<(Arc<Self>, tokio::task::AbortHandle)> {
        let ch = conn.create_channel().await.map_err(storage)?;
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare(&stream, durable, stream_arguments(max_age)).await.map_err(storage)?;
        ch.basic_qos(PREFETCH, BasicQosOptions::default()).await.map_err(storage)?;
        let mut args = FieldTable::default();
        let offset = match from {
            From::First => AMQPValue::LongString("first".into()),
            From::Time(secs) => AMQPValue::Timestamp(secs),
        };
        args.insert("x-stream-offset".into(), offset);
        let mut consumer =
            ch.basic_consume(&stream, "", BasicConsumeOptions::default(), args).await.map_err(storage)?;
        let log = Arc::new(Log {
            stream,
            // Each reader its own name: a process that opens the log again
            // (a new session) replays its earlier records, whose counts
            // would otherwise answer its new appends.
            by: format!("{process}-{:016x}", rand::random::<u64>()),
            publisher,
            state: Mutex::new(state),
            waiting: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        });
        let reader = log.clone();
        let task = tokio::spawn(async move {
            let _channel = ch;
            while let Some(delivery) = consumer.next().await {
                let delivery = match delivery {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(stream = %reader.stream, error = %e, "reading the stream failed");
                        break;
                    }
                };
                let offset = delivery
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("x-stream-offset"))
                    .and_then(crate::headers::as_u64);
                match (offset, serde_json::from_slice::<Envelope<F::Record>>(&delivery.data)) {
                    (Some(offset), Ok(env)) => reader.apply(offset, env),
                    _ => tracing::warn!(stream = %reader.stream, "a record herald cannot read; passed over"),
                }
                if let Err(e) = delivery.acker.ack(Default::default()).await {
                    tracing::error!(stream = %reader.stream, error = %e, "acknowledging a stream record failed");
                    break;
                }
            }
            reader.ended.store(true, Ordering::Relaxed);
            tracing::warn!(stream = %reader.stream, "no longer reading the stream");
        });
        Ok((log, task.abort_handle()))
    }

    pub fn reading(&self) -> bool {
        !self.ended.load(Ordering::Relaxed)
    }

    fn apply(&self, offset: u64, env: Envelope<F::Record>) {
        let outcome = self.state.lock().expect("log state").apply(offset, env.record);
        if env.by == self.by
            && let Some(tx) = self.waiting.lock().expect("log waiters").remove(&env.n)
        {
            let _ = tx.send((offset, outcome));
        }
    }

    /// Appends the records, in order, and answers each one's offset and
    /// outcome once read back.
    pub async fn append(&self, records: Vec<F::Record>) -> BResult<Vec<(u64, F::Outcome)>> {
        let mut confirms = Vec::with_capacity(records.len());
        let mut answers = Vec::with_capacity(records.len());
        for record in records {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            self.waiting.lock().expect("log waiters").insert(n, tx);
            answers.push((n, rx));
            let body = serde_json::to_vec(&Envelope { by: self.by.clone(), n, record }).map_err(storage)?;
            let props = BasicProperties::default().with_delivery_mode(2);
            let sent = self.publisher.basic_publish("", &self.stream, BasicPublishOptions::default(), &body, props);
            confirms.push(sent.await.map_err(storage)?);
        }
        for c in confirms {
            confirmed(c.await)?;
        }
        let mut out = Vec::with_capacity(answers.len());
        for (n, rx) in answers {
            match tokio::time::timeout(READ_BACK, rx).await {
                Ok(Ok(answer)) => out.push(answer),
                _ => {
                    self.waiting.lock().expect("log waiters").remove(&n);
                    return Err(storage(format!("a record appended to {} was not read back", self.stream)));
                }
            }
        }
        Ok(out)
    }
}
