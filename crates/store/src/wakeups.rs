//! Who waits for which subscription on this node: one `Notify` each,
//! notified after a commit that may have made its events due. Every
//! backend's broker keeps one.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Wakeups(Mutex<HashMap<String, Arc<Notify>>>);

impl Wakeups {
    /// The subscription's `Notify`, made on first use.
    pub fn get(&self, sub: &str) -> Arc<Notify> {
        self.0.lock().expect("wakeups").entry(sub.to_string()).or_default().clone()
    }

    /// Wakes whoever waits on these subscriptions now.
    pub fn wake(&self, subs: &[String]) {
        let map = self.0.lock().expect("wakeups");
        for name in subs {
            if let Some(n) = map.get(name) {
                n.notify_waiters();
            }
        }
    }
}
