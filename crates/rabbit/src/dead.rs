//! What RabbitMQ dead-lettered: messages returned to their queue more
//! often than its delivery limit (each return is a herald process whose
//! channel closed holding it: one that died, say, on that very event). The
//! dead-letter exchange puts them in `{prefix}.dead`; each process drains
//! it into herald's dead letters, acknowledging each once kept there.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use futures::StreamExt;
use herald_broker::{CloudEvent, DeadEvent, DeadLetters};
use herald_core::retry::AttemptError;
use lapin::{
    Connection,
    options::{BasicConsumeOptions, BasicNackOptions, BasicQosOptions},
    types::FieldTable,
};

use crate::{headers, names::Names, storage, topology::DELIVERY_LIMIT};

type BResult<T> = herald_broker::Result<T>;

/// What each attempt of such a message left as its error.
const RETURNED: &str = "the herald process holding it ended before it was answered";

pub async fn drain(conn: &Connection, names: Names, dead: Arc<dyn DeadLetters>) -> BResult<tokio::task::AbortHandle> {
    let ch = conn.create_channel().await.map_err(storage)?;
    ch.basic_qos(8, BasicQosOptions::default()).await.map_err(storage)?;
    let mut messages = ch
        .basic_consume(&names.dead_queue(), "", BasicConsumeOptions::default(), FieldTable::default())
        .await
        .map_err(storage)?;
    let task = tokio::spawn(async move {
        while let Some(Ok(m)) = messages.next().await {
            let queue = headers::get(&m.properties, headers::FIRST_DEATH_QUEUE).and_then(headers::as_string);
            let sub = queue.as_deref().and_then(|q| names.sub_of_queue(q)).map(|(sub, _)| sub);
            let (Some(sub), Ok(event)) = (sub, serde_json::from_slice::<CloudEvent>(&m.data)) else {
                tracing::error!(queue, "a dead-lettered message that is no subscription's event; dropped");
                let _ = m.acker.ack(Default::default()).await;
                continue;
            };
            let stamp = headers::stamp(&m.properties);
            let now = Utc::now();
            // The server drops `x-delivery-count` when it dead-letters; over
            // the limit, it was delivered once more than the limit.
            let reason = headers::get(&m.properties, headers::FIRST_DEATH_REASON).and_then(headers::as_string);
            let over_limit = reason.as_deref() == Some("delivery_limit");
            let limit = if over_limit { DELIVERY_LIMIT as u32 + 1 } else { 1 };
            let attempts = stamp.returned.max(limit);
            let errors =
                (1..=attempts).map(|attempt| AttemptError { attempt, at: now, error: RETURNED.into() }).collect();
            let letter = DeadEvent { subscription: sub, topic: stamp.topic, attempts, errors, event, at: now };
            match dead.add(letter).await {
                Ok(()) => {
                    let _ = m.acker.ack(Default::default()).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "a dead letter could not be kept; it is tried again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let _ = m.acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
                }
            }
        }
    });
    Ok(task.abort_handle())
}
