//! Waking consumers that wait for a subscription, without polling.
//!
//! In this process a publish wakes its topic's subscriptions at once.
//! Other herald processes on the same prefix hear a core NATS message on
//! `{prefix}.w.{topic}` ("look now": it carries nothing, and a lost one
//! costs only a poll, see `stats::next_due`). Acks and nacks that let a
//! key's next event go send one too.

use std::sync::Arc;

use futures::StreamExt;
pub use herald_broker::Wakeups;

use crate::names::Names;

/// Listens for other processes' signals; ends when aborted.
pub async fn listen(
    client: &async_nats::Client,
    names: &Names,
    wakeups: Arc<Wakeups>,
) -> Result<tokio::task::AbortHandle, String> {
    let mut signals = client.subscribe(names.wake_subjects()).await.map_err(|e| e.to_string())?;
    let names = names.clone();
    let task = tokio::spawn(async move {
        while let Some(m) = signals.next().await {
            if let Some(topic) = names.topic_of_wake(&m.subject) {
                wakeups.wake_topic(&topic);
            }
        }
    });
    Ok(task.abort_handle())
}

/// Tells every herald process on the prefix to look at `topic` now.
pub async fn signal(client: &async_nats::Client, names: &Names, topic: &str) {
    if let Err(e) = client.publish(names.wake_subject(topic), bytes::Bytes::new()).await {
        tracing::debug!(topic, error = %e, "a look-now signal was not sent; others will poll");
    }
}
