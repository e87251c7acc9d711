//! Live fan-out to watchers: an operation's timeline events (SSE,
//! `Prefer: wait`) and a subject's inbox changes.
//!
//! One broadcast channel per watched key, created by the first watcher and
//! dropped once nobody listens, so publishing to an unwatched key costs one
//! map lookup and no watcher ever polls the store. A watcher that falls
//! behind is told (`Lagged`) and reads the gap from the store; the store is
//! the truth, the hub only says "look now".

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
};

use tokio::sync::broadcast;

/// Items buffered per key before a slow watcher lags.
const CAPACITY: usize = 16;

pub struct Hub<K, V> {
    channels: Arc<Mutex<HashMap<K, broadcast::Sender<Arc<V>>>>>,
}

impl<K, V> Clone for Hub<K, V> {
    fn clone(&self) -> Self {
        Hub { channels: self.channels.clone() }
    }
}

impl<K, V> Default for Hub<K, V> {
    fn default() -> Self {
        Hub { channels: Arc::default() }
    }
}

impl<K: Hash + Eq + Clone, V> Hub<K, V> {
    pub fn subscribe(&self, key: &K) -> broadcast::Receiver<Arc<V>> {
        let mut map = self.channels.lock().expect("hub");
        map.entry(key.clone()).or_insert_with(|| broadcast::channel(CAPACITY).0).subscribe()
    }

    /// Sends `items` to the key's watchers; `last` closes the channel after
    /// them (nothing more will come: the operation has ended).
    pub fn publish(&self, key: &K, items: impl IntoIterator<Item = V>, last: bool) {
        let mut map = self.channels.lock().expect("hub");
        let Some(tx) = map.get(key) else { return };
        for item in items {
            let _ = tx.send(Arc::new(item));
        }
        if last || tx.receiver_count() == 0 {
            map.remove(key);
        }
    }

    /// Drops the channel if its last watcher has gone.
    pub fn release(&self, key: &K) {
        let mut map = self.channels.lock().expect("hub");
        if map.get(key).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(key);
        }
    }
}
