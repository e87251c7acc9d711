//! Waking consumers that wait for a subscription, without polling.
//!
//! In this process a publish wakes its topic's subscriptions at once.
//! Other herald processes on the same prefix hear a core NATS message on
//! `{prefix}.w.{topic}` ("look now": it carries nothing, and a lost one
//! costs only a poll, see `stats::next_due`). Acks and nacks that let a
//! key's next event go send one too.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::Notify;

use crate::names::Names;

#[derive(Default)]
pub struct Wakeups {
    subs: Mutex<HashMap<String, Waiting>>,
}

#[derive(Default)]
struct Waiting {
    notify: Arc<Notify>,
    /// The subscription's topic, once this process has read it.
    topic: Option<String>,
    /// When leases and delays handed out here end, in ms since the epoch.
    due: BTreeSet<i64>,
}

/// Lease ends remembered per subscription, at most.
const DUE_KEPT: usize = 4096;

impl Wakeups {
    pub fn get(&self, sub: &str) -> Arc<Notify> {
        self.subs.lock().expect("wakeups").entry(sub.to_string()).or_default().notify.clone()
    }

    pub fn set_topic(&self, sub: &str, topic: &str) {
        self.subs.lock().expect("wakeups").entry(sub.to_string()).or_default().topic = Some(topic.to_string());
    }

    pub fn wake(&self, sub: &str) {
        if let Some(w) = self.subs.lock().expect("wakeups").get(sub) {
            w.notify.notify_waiters();
        }
    }

    /// Wakes the subscriptions of `topic`, and those whose topic this
    /// process has not read yet (a needless wakeup costs one pull).
    pub fn wake_topic(&self, topic: &str) {
        for w in self.subs.lock().expect("wakeups").values() {
            if w.topic.as_deref().is_none_or(|t| t == topic) {
                w.notify.notify_waiters();
            }
        }
    }

    /// Something handed out here for `sub` comes back at `at`.
    pub fn due_at(&self, sub: &str, at: DateTime<Utc>) {
        let mut subs = self.subs.lock().expect("wakeups");
        let due = &mut subs.entry(sub.to_string()).or_default().due;
        due.insert(at.timestamp_millis());
        while due.len() > DUE_KEPT {
            due.pop_first();
        }
    }

    /// The earliest end after `now` of what was handed out here.
    pub fn next_due(&self, sub: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut subs = self.subs.lock().expect("wakeups");
        let due = &mut subs.get_mut(sub)?.due;
        *due = due.split_off(&(now.timestamp_millis() + 1));
        due.first().and_then(|ms| DateTime::from_timestamp_millis(*ms))
    }
}

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
