//! Waking consumers that wait for a subscription, without polling.
//!
//! In this process, a publish wakes its topic's subscriptions, and a
//! delivery arriving wakes its own. Other herald processes on the prefix
//! get a "look now" message on the fanout exchange `{prefix}.wake`
//! (carrying the topic; a lost one costs only a poll), which their inbox
//! receives (see `inbox`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Wakeups {
    subs: Mutex<HashMap<String, Waiting>>,
}

#[derive(Default)]
struct Waiting {
    notify: Arc<Notify>,
    /// The subscription's topic, once this process has read it.
    topic: Option<String>,
}

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

    pub fn wake_all(&self) {
        for w in self.subs.lock().expect("wakeups").values() {
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
}
