//! Delivering subscriptions' events. For every push subscription (and
//! herald's own listeners for `await` steps) one loop pulls due events from
//! the broker, as many as the subscription may have in flight, and hands
//! each to its consumer: acknowledged on success, given back with the
//! error otherwise, so the broker's retries, ordering and dead letters
//! apply to pushed events exactly as to pulled ones.
//!
//! - [`push`] — one event POSTed to a service.

pub mod push;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use herald_broker::{Broker, Delivery, Message, Redelivery, Subscription};
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::engine::Engine;

/// How long a loop sleeps when nothing is due and nothing wakes it: only
/// a safety net, since publishes and answers wake it.
const IDLE: Duration = Duration::from_secs(30);

/// A pushed event is the dispatcher's this much longer than the call may
/// take, so a crash mid-call hands it to the next run.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Events herald matches against `await` steps at once.
const INTERNAL_IN_FLIGHT: usize = 32;

#[derive(Clone)]
pub struct Dispatcher(Arc<Inner>);

struct Inner {
    engine: Engine,
    loops: Mutex<HashMap<String, (Subscription, CancellationToken)>>,
    tracker: TaskTracker,
    stopping: CancellationToken,
}

/// Why a delivery did not land, and when to try again.
pub struct Failure {
    pub error: String,
    pub redelivery: Redelivery,
}

impl Dispatcher {
    pub fn new(engine: Engine) -> Self {
        Dispatcher(Arc::new(Inner {
            engine,
            loops: Mutex::default(),
            tracker: TaskTracker::new(),
            stopping: CancellationToken::new(),
        }))
    }

    fn broker(&self) -> &Arc<dyn Broker> {
        self.0.engine.broker()
    }

    /// Runs the loop a subscription needs, restarting it if its definition
    /// changed; a pull subscription needs none.
    pub fn sync(&self, sub: &Subscription) {
        if self.0.engine.is_paused() || self.0.stopping.is_cancelled() {
            return;
        }
        let mut loops = self.0.loops.lock().expect("dispatch loops");
        if loops.get(&sub.name).is_some_and(|(running, _)| running == sub) {
            return;
        }
        if let Some((_, stop)) = loops.remove(&sub.name) {
            stop.cancel();
        }
        if sub.delivery == Delivery::Pull {
            return;
        }
        let stop = self.0.stopping.child_token();
        loops.insert(sub.name.clone(), (sub.clone(), stop.clone()));
        let this = self.clone();
        let sub = sub.clone();
        self.0.tracker.spawn(async move { this.run(sub, stop).await });
    }

    /// Stops a deleted subscription's loop.
    pub fn stop(&self, name: &str) {
        if let Some((_, stop)) = self.0.loops.lock().expect("dispatch loops").remove(name) {
            stop.cancel();
        }
    }

    /// Stops every loop and waits (up to `grace`) for deliveries in flight;
    /// events still out go to the next run when their leases end.
    pub async fn shutdown(&self, grace: Duration) {
        self.0.stopping.cancel();
        self.0.tracker.close();
        if tokio::time::timeout(grace, self.0.tracker.wait()).await.is_err() {
            tracing::warn!("deliveries still in flight at shutdown; their events go out again after their leases");
        }
    }

    async fn run(self, sub: Subscription, stop: CancellationToken) {
        let (limit, lease) = match &sub.delivery {
            Delivery::Push { max_in_flight, timeout, .. } => (*max_in_flight, *timeout + LEASE_MARGIN),
            Delivery::Internal => (INTERNAL_IN_FLIGHT, Duration::from_secs(60)),
            Delivery::Pull => return,
        };
        let sub = Arc::new(sub);
        let permits = Arc::new(Semaphore::new(limit));
        let wake = self.broker().wakeup(&sub.name);
        loop {
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let free = permits.available_permits();
            let mut wait = IDLE;
            if free > 0 {
                match self.broker().pull(&sub.name, free, lease).await {
                    Ok(messages) if !messages.is_empty() => {
                        for m in messages {
                            let permit =
                                permits.clone().try_acquire_owned().expect("pulled no more than the free permits");
                            let (this, sub, wake) = (self.clone(), sub.clone(), wake.clone());
                            self.0.tracker.spawn(async move {
                                this.deliver(&sub, m).await;
                                drop(permit);
                                wake.notify_waiters();
                            });
                        }
                        continue;
                    }
                    Ok(_) => {
                        if let Ok(Some(due)) = self.broker().next_due(&sub.name).await {
                            wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(IDLE);
                        }
                    }
                    Err(herald_broker::Error::UnknownSubscription(_)) => return,
                    Err(e) => {
                        tracing::error!(subscription = %sub.name, error = %e, "pulling events to deliver failed");
                        wait = Duration::from_secs(1);
                    }
                }
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    async fn deliver(&self, sub: &Subscription, m: Message) {
        let outcome = match &sub.delivery {
            Delivery::Push { service, path, timeout, .. } => match self.0.engine.services().pick(service) {
                Some(target) => push::post(self.0.engine.http(), &target, path, *timeout, sub, &m).await,
                None => Err(Failure {
                    error: format!("service {service} has no instance"),
                    redelivery: Redelivery::Backoff,
                }),
            },
            Delivery::Internal => self.0.engine.event_arrived(&sub.topic, &m.event).await.map_err(|e| Failure {
                error: format!("matching the event to waiting operations failed: {e}"),
                redelivery: Redelivery::Backoff,
            }),
            Delivery::Pull => return,
        };
        let answered = match outcome {
            Ok(()) => self.broker().ack(&sub.name, std::slice::from_ref(&m.ack_id)).await.map(drop),
            Err(f) => {
                tracing::debug!(subscription = %sub.name, event = %m.event.id, attempt = m.attempt, error = %f.error, "delivery failed");
                self.broker().nack(&sub.name, std::slice::from_ref(&m.ack_id), f.redelivery, &f.error).await.map(drop)
            }
        };
        if let Err(e) = answered {
            tracing::warn!(subscription = %sub.name, error = %e, "answering a delivery failed; the event goes out again after its lease");
        }
    }
}
