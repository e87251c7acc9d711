//! Connections that hold a place without using it.
//!
//! Each connection holds one of `limits.max_connections` places. One that
//! sits idle — before its first request or between two — gives its place
//! back after [`IDLE_TIMEOUT`], or at once when the server is full and a
//! new client waits (as Envoy's overload manager shortens idle timeouts
//! under pressure). A request in progress is never cut short for this: its
//! head, body and answer have timeouts of their own.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a client waits for a place, shared by every connection.
#[derive(Clone, Default)]
pub struct Idle {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    full: AtomicBool,
    news: Notify,
}

impl Idle {
    /// A client waits for a place: idle connections close, now and until
    /// [`Idle::room`].
    pub fn full(&self) {
        self.shared.full.store(true, Ordering::SeqCst);
        self.shared.news.notify_waiters();
    }

    /// The waiting client has its place.
    pub fn room(&self) {
        self.shared.full.store(false, Ordering::SeqCst);
    }

    /// Resolves while a client waits for a place.
    pub async fn pressed(&self) {
        // Registered before the flag is read, so no signal falls between.
        let news = self.shared.news.notified();
        if !self.shared.full.load(Ordering::SeqCst) {
            news.await;
        }
    }

    /// `wait`'s output, or `None` when the idle connection should close
    /// first: idle too long, a client waiting for its place, or herald
    /// stopping.
    pub async fn wait<F: Future>(&self, stopping: &CancellationToken, wait: F) -> Option<F::Output> {
        tokio::select! {
            out = tokio::time::timeout(IDLE_TIMEOUT, wait) => out.ok(),
            _ = self.pressed() => None,
            _ = stopping.cancelled() => None,
        }
    }
}
