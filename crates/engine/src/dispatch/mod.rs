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

use herald_gateway::registry::Lease;

use crate::Engine;

/// How long a loop sleeps when nothing is due and nothing wakes it: only
/// a safety net, since publishes and answers wake it.
const IDLE: Duration = Duration::from_secs(30);

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
#[derive(Clone)]
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
        let limit = match &sub.delivery {
            Delivery::Push { max_in_flight, .. } => *max_in_flight,
            Delivery::Internal => INTERNAL_IN_FLIGHT,
            Delivery::Pull => return,
        };
        let Some(lease) = sub.dispatch_lease() else { return };
        let sub = Arc::new(sub);
        let permits = Arc::new(Semaphore::new(limit));
        let wake = self.broker().wakeup(&sub.name);
        // Deliveries report here; their answers go to the broker together,
        // many acknowledgements in one write.
        let (answers, answered) = tokio::sync::mpsc::unbounded_channel();
        self.0.tracker.spawn(self.clone().answer(sub.clone(), answered, wake.clone()));
        let per_request = match &sub.delivery {
            Delivery::Push { batch, .. } => *batch,
            _ => 1,
        };
        loop {
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            // Room at the service too: an event pulled is an attempt, so
            // no more are pulled than the service would take now.
            let service = match &sub.delivery {
                Delivery::Push { service, .. } => self.0.engine.services().service(service),
                _ => None,
            };
            let turn = async {
                match &service {
                    Some(s) => s.turn().await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(turn);
            let room = match (&sub.delivery, &service) {
                (_, Some(s)) => s.room().saturating_mul(per_request),
                (Delivery::Push { .. }, None) => 0, // not registered (yet): nothing can go
                _ => usize::MAX,
            };
            let free = permits.available_permits().min(room);
            let mut wait = if room == 0 { Duration::from_secs(1) } else { IDLE };
            if free > 0 {
                match self.broker().pull(&sub.name, free, lease).await {
                    Ok(messages) if !messages.is_empty() => {
                        let mut messages = messages.into_iter().peekable();
                        while messages.peek().is_some() {
                            let chunk: Vec<Message> = messages.by_ref().take(per_request).collect();
                            let permit = permits
                                .clone()
                                .try_acquire_many_owned(chunk.len() as u32)
                                .expect("pulled no more than the free permits");
                            // The act is the check: a chunk the service does
                            // not admit after all goes back unsent.
                            let admitted = service.as_ref().map(|s| {
                                s.try_admit(&[]).map_err(|no| Failure {
                                    error: no.describe(&s.name),
                                    redelivery: Redelivery::Unsent(no.retry_after()),
                                })
                            });
                            let (this, sub, answers) = (self.clone(), sub.clone(), answers.clone());
                            self.0.tracker.spawn(async move {
                                let outcome = match admitted {
                                    Some(Ok(lease)) => this.deliver(&sub, &chunk, Some(lease)).await,
                                    Some(Err(refused)) => Err(refused),
                                    None => this.deliver(&sub, &chunk, None).await,
                                };
                                drop(permit);
                                for m in chunk {
                                    let _ = answers.send((m.ack_id, outcome.clone()));
                                }
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
                    // Deleted meanwhile: a broker on a server of its own may
                    // fail the pull on what went with it (its consumers).
                    Err(_) if matches!(self.broker().subscription(&sub.name).await, Ok(None)) => return,
                    Err(e) => {
                        tracing::error!(subscription = %sub.name, error = %e, "pulling events to deliver failed");
                        wait = Duration::from_secs(1);
                    }
                }
            }
            tokio::select! {
                _ = woken => {}
                _ = &mut turn, if room == 0 => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Acknowledges what landed, many at a time, and gives back what did not.
    async fn answer(
        self,
        sub: Arc<Subscription>,
        mut answered: tokio::sync::mpsc::UnboundedReceiver<(String, Result<(), Failure>)>,
        wake: Arc<tokio::sync::Notify>,
    ) {
        let mut batch = Vec::new();
        while answered.recv_many(&mut batch, 1024).await > 0 {
            let mut acks = Vec::new();
            for (ack_id, outcome) in batch.drain(..) {
                match outcome {
                    Ok(()) => acks.push(ack_id),
                    Err(f) => {
                        if let Err(e) = self.broker().nack(&sub.name, &[ack_id], f.redelivery, &f.error).await {
                            tracing::warn!(subscription = %sub.name, error = %e, "giving an event back failed; it goes out again after its lease");
                        }
                    }
                }
            }
            if !acks.is_empty()
                && let Err(e) = self.broker().ack(&sub.name, &acks).await
            {
                tracing::warn!(subscription = %sub.name, error = %e, "acknowledging failed; those events go out again after their leases");
            }
            // Room for more: the loop pulls again.
            wake.notify_waiters();
        }
    }

    /// Hands one event (or a push subscription's batch) to its consumer.
    async fn deliver(&self, sub: &Subscription, chunk: &[Message], lease: Option<Lease>) -> Result<(), Failure> {
        match (&sub.delivery, lease) {
            (Delivery::Push { path, timeout, .. }, Some(lease)) => {
                let delivery = push::Delivery::begin(chunk);
                let result = push::post(lease, path, *timeout, sub, chunk, &delivery).await;
                let error = result.as_ref().err().map(|f| f.error.as_str());
                delivery.end(self.0.engine.tracer(), sub, chunk.len(), error);
                result
            }
            (Delivery::Push { service, .. }, None) => Err(Failure {
                error: format!("service {service} is not registered"),
                redelivery: Redelivery::Unsent(Duration::from_secs(1)),
            }),
            (Delivery::Internal, _) => {
                for m in chunk {
                    self.0.engine.event_arrived(&sub.topic, &m.event).await.map_err(|e| Failure {
                        error: format!("matching the event to waiting operations failed: {e}"),
                        redelivery: Redelivery::Backoff,
                    })?;
                }
                Ok(())
            }
            (Delivery::Pull, _) => Ok(()),
        }
    }
}
