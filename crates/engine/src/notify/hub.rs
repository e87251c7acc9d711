//! Live fan-out to watchers: an operation's timeline events (SSE,
//! `Prefer: wait`) and a subject's inbox changes.
//!
//! One broadcast channel per watched key, created by the first watcher and
//! dropped once nobody listens, so publishing to an unwatched key costs one
//! map lookup and no watcher ever polls the store. A watcher that falls
//! behind is told (`Lagged`) and reads the gap from the store; the store is
//! the truth, the hub only says "look now". Changes made on other nodes
//! arrive as [`Live::Look`]: watchers read them from the store.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
};

use tokio::sync::broadcast;

/// Items buffered per key before a slow watcher lags.
const CAPACITY: usize = 16;

/// What a watcher hears.
#[derive(Debug)]
pub enum Live<V> {
    /// The next item, committed on this node.
    Item(Arc<V>),
    /// Something changed elsewhere: look at the store.
    Look,
}

impl<V> Clone for Live<V> {
    fn clone(&self) -> Self {
        match self {
            Live::Item(v) => Live::Item(v.clone()),
            Live::Look => Live::Look,
        }
    }
}

pub struct Hub<K, V> {
    channels: Arc<Mutex<HashMap<K, broadcast::Sender<Live<V>>>>>,
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
    pub fn subscribe(&self, key: &K) -> broadcast::Receiver<Live<V>> {
        let mut map = self.channels.lock().expect("hub");
        map.entry(key.clone()).or_insert_with(|| broadcast::channel(CAPACITY).0).subscribe()
    }

    /// Sends `items` to the key's watchers; `last` closes the channel after
    /// them (nothing more will come: the operation has ended).
    pub fn publish(&self, key: &K, items: impl IntoIterator<Item = V>, last: bool) {
        let mut map = self.channels.lock().expect("hub");
        let Some(tx) = map.get(key) else { return };
        for item in items {
            let _ = tx.send(Live::Item(Arc::new(item)));
        }
        if last || tx.receiver_count() == 0 {
            map.remove(key);
        }
    }

    /// Tells the key's watchers, if any, to look at the store.
    pub fn look(&self, key: &K) {
        if let Some(tx) = self.channels.lock().expect("hub").get(key) {
            let _ = tx.send(Live::Look);
        }
    }

    /// Tells every watcher to look at the store.
    pub fn look_all(&self) {
        for tx in self.channels.lock().expect("hub").values() {
            let _ = tx.send(Live::Look);
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
