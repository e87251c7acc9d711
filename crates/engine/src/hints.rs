//! What other nodes sharing the store changed, heard as hints
//! ([`herald_store::hints`]): watchers here look at the store, the poller
//! looks for free tasks, consumers for due events.
//!
//! Hints can be lost (a dropped connection is followed by a resync, but a
//! node that failed to send is not); so, where the store is shared,
//! watchers also look every poll interval: polling is the fallback.

use herald_store::hints::Hint;
use tokio::sync::broadcast::error::RecvError;

use crate::Engine;

impl Engine {
    /// Acts on other nodes' hints until shutdown; nothing to do where no
    /// other node shares the store.
    pub fn spawn_hints(&self) -> Option<tokio::task::JoinHandle<()>> {
        let mut heard = self.0.store.hints()?;
        let this = self.clone();
        Some(tokio::spawn(async move {
            let mut every = tokio::time::interval(this.0.config.poll_interval.0);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    hint = heard.recv() => match hint {
                        Ok(hint) => this.heard(hint),
                        Err(RecvError::Lagged(_)) => this.heard(Hint::Resync),
                        Err(RecvError::Closed) => return,
                    },
                    _ = every.tick() => this.look_everywhere(),
                    _ = this.0.stopping.cancelled() => return,
                }
            }
        }))
    }

    fn heard(&self, hint: Hint) {
        match hint {
            Hint::Operation(id) => self.0.hub.look(&id),
            Hint::Inbox(subject) => self.0.inbox.look(&subject),
            Hint::Tasks => self.0.wake.notify_one(),
            Hint::Subscription(name) => self.0.broker.wakeup(&name).notify_waiters(),
            // The registry refreshes from the store on its own interval.
            Hint::Services => {}
            Hint::Resync => {
                self.look_everywhere();
                self.0.wake.notify_one();
                let broker = self.0.broker.clone();
                tokio::spawn(async move {
                    for sub in broker.subscriptions().await.unwrap_or_default() {
                        broker.wakeup(&sub.name).notify_waiters();
                    }
                });
            }
        }
    }

    fn look_everywhere(&self) {
        self.0.hub.look_all();
        self.0.inbox.look_all();
    }
}
