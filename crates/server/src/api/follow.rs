//! Following a numbered sequence live: an operation's timeline, a
//! subject's inbox. The backlog after the client's last id comes from the
//! store, then live items from the hub; an item is sent only if its number
//! is the next one, and a gap (a lagging watcher) is filled from the store,
//! so a client sees every item once, in order, across reconnects.
//!
//! A follower lives in the response stream itself (no task or channel of
//! its own), so a watcher costs little more than its connection.

use std::{collections::VecDeque, future::Future, sync::Arc};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::{engine::notify::hub::Live, streams::Slot};

/// Items read from the store per round trip.
pub const PAGE: usize = 500;

/// Where a follower's items come from.
pub trait Source: Send + 'static {
    type Item: Send + Sync + 'static;
    /// What `/metrics` calls these streams.
    const KIND: &'static str;
    /// When the item was committed, where it says.
    fn committed_at(_item: &Self::Item) -> Option<chrono::DateTime<chrono::Utc>> {
        None
    }
    /// The item's number; consecutive live items differ by one.
    fn seq(item: &Self::Item) -> u64;
    /// Nothing follows this item.
    fn ends(item: &Self::Item) -> bool;
    /// Stored items numbered after `after`, in order (`None` if the store failed).
    fn page(&self, after: u64) -> impl Future<Output = Option<Vec<Self::Item>>> + Send;
    /// The follower has gone (tell the hub).
    fn release(&self);
}

pub struct Follow<S: Source> {
    source: S,
    stopping: CancellationToken,
    /// The last number sent.
    last: u64,
    live: Option<broadcast::Receiver<Live<S::Item>>>,
    backlog: VecDeque<Arc<S::Item>>,
    /// Nothing newer is in the store than what was sent or queued.
    caught_up: bool,
    done: bool,
    /// The end user's place among their open streams, freed with the follower.
    _slot: Option<Slot>,
    /// Counted among the open streams while it lives.
    watched: herald_metrics::live::Watched,
    /// Items committed since are timed from commit to send.
    opened_at: chrono::DateTime<chrono::Utc>,
}

impl<S: Source> Follow<S> {
    /// `live` must be subscribed before `first_page` was read, so nothing
    /// committed in between is missed. `slot` is held as long as the follower.
    pub fn new(
        source: S,
        stopping: CancellationToken,
        after: u64,
        live: broadcast::Receiver<Live<S::Item>>,
        first_page: Vec<S::Item>,
        slot: Option<Slot>,
        metrics: &herald_metrics::Metrics,
    ) -> Self {
        let caught_up = first_page.len() < PAGE;
        let backlog = first_page.into_iter().map(Arc::new).collect();
        let watched = metrics.live.watch(S::KIND);
        Follow {
            source,
            stopping,
            last: after,
            live: Some(live),
            backlog,
            caught_up,
            done: false,
            _slot: slot,
            watched,
            opened_at: chrono::Utc::now(),
        }
    }

    /// The next item, or `None` once the last one went out, the store
    /// failed, or the server is stopping.
    pub async fn next(&mut self) -> Option<Arc<S::Item>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(item) = self.backlog.pop_front() {
                return Some(self.emit(item));
            }
            if !self.caught_up {
                let page = self.source.page(self.last).await?;
                self.caught_up = page.len() < PAGE;
                self.backlog.extend(page.into_iter().map(Arc::new));
                continue;
            }
            let live = self.live.as_mut()?;
            let next = tokio::select! {
                r = live.recv() => r,
                _ = self.stopping.cancelled() => return None,
            };
            match next {
                Ok(Live::Item(item)) if S::seq(&item) <= self.last => {}
                Ok(Live::Item(item)) if S::seq(&item) == self.last + 1 => return Some(self.emit(item)),
                // A gap, a lag, or a change on another node: the store has it all.
                Ok(_) | Err(RecvError::Lagged(_)) => self.caught_up = false,
                // The channel ends after the last item: read what is left.
                Err(RecvError::Closed) => {
                    self.live = None;
                    self.caught_up = false;
                }
            }
        }
    }

    /// Sends `item`; one committed while the stream was open is timed
    /// from its commit, whether the hub or the store brought it (on
    /// several nodes, another node's commits come by the store).
    fn emit(&mut self, item: Arc<S::Item>) -> Arc<S::Item> {
        let lag = S::committed_at(&item)
            .filter(|at| *at >= self.opened_at)
            .map(|at| (chrono::Utc::now() - at).to_std().unwrap_or_default());
        self.watched.sent(lag);
        self.last = S::seq(&item);
        self.done = S::ends(&item);
        item
    }
}

impl<S: Source> Drop for Follow<S> {
    fn drop(&mut self) {
        // Our receiver goes first, so the hub sees whether anyone is left.
        self.live = None;
        self.source.release();
    }
}
