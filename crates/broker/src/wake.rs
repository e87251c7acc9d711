//! Waking consumers that wait for a subscription, without polling: one
//! [`Notify`] per subscription in this process. Each backend brings its
//! own way of hearing other processes' "look now" signals and calls
//! [`Wakeups::wake_topic`] (or [`Wakeups::wake_all`]) when one comes.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
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
    /// When leases and delays handed out here end, in ms since the epoch
    /// (kept by backends that cannot be told when one ends, see
    /// [`Wakeups::due_at`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_due_is_the_earliest_end_after_now() {
        let w = Wakeups::default();
        let at = |ms| DateTime::from_timestamp_millis(ms).unwrap();
        w.due_at("s", at(3_000));
        w.due_at("s", at(1_000));
        assert_eq!(w.next_due("s", at(0)), Some(at(1_000)));
        assert_eq!(w.next_due("s", at(1_000)), Some(at(3_000)), "an end that passed is forgotten");
        assert_eq!(w.next_due("s", at(3_000)), None);
        assert_eq!(w.next_due("other", at(0)), None);
    }
}
