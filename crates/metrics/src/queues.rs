//! What waits, read from the store and the broker at each scrape: every
//! node sharing a store reports the same values (aggregate them with
//! `max`, not `sum`).

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

/// The values of one scrape.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Operations not finished and past their expected time.
    pub delayed: u64,
    /// Operations that hold something only a person can mend.
    pub needing_attention: u64,
    /// Tasks due now and not running (new, or left by a node that stopped).
    pub due_tasks: u64,
    /// How long the oldest of them has been due, in seconds (0 when none).
    pub oldest_due_seconds: f64,
    /// Dead letters, by kind.
    pub dead_letters: Vec<(String, u64)>,
    pub subscriptions: Vec<Subscription>,
    /// The registry's services, for the gateway's gauges.
    pub services: Vec<crate::gateway::ServiceState>,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub name: String,
    /// Events waiting to go out.
    pub pending: u64,
    /// Events out with a consumer, not yet answered.
    pub in_flight: u64,
    /// How long the oldest unanswered event has waited, in seconds.
    pub lag_seconds: f64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByKind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BySubscription {
    subscription: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Depth {
    subscription: String,
    /// `pending` or `in_flight`.
    state: String,
}

type Seconds = Gauge<f64, AtomicU64>;

pub(crate) struct Queues {
    delayed: Gauge,
    needing_attention: Gauge,
    due_tasks: Gauge,
    oldest_due: Seconds,
    dead_letters: Family<ByKind, Gauge>,
    depth: Family<Depth, Gauge>,
    lag: Family<BySubscription, Seconds>,
}

impl Queues {
    pub(crate) fn register(r: &mut Registry) -> Self {
        let q = Queues {
            delayed: Gauge::default(),
            needing_attention: Gauge::default(),
            due_tasks: Gauge::default(),
            oldest_due: Seconds::default(),
            dead_letters: Family::default(),
            depth: Family::default(),
            lag: Family::default(),
        };
        r.register("operations_delayed", "Operations not finished and past their expected time", q.delayed.clone());
        r.register(
            "operations_needing_attention",
            "Operations holding something only a person can mend",
            q.needing_attention.clone(),
        );
        r.register("tasks_due", "Tasks due and not running", q.due_tasks.clone());
        r.register_with_unit(
            "tasks_oldest_due_age",
            "How long the oldest due task has waited",
            Unit::Seconds,
            q.oldest_due.clone(),
        );
        r.register("dead_letters", "Dead letters, by kind", q.dead_letters.clone());
        r.register("subscription_depth", "A subscription's events, waiting or out", q.depth.clone());
        r.register_with_unit(
            "subscription_lag",
            "How long a subscription's oldest unanswered event has waited",
            Unit::Seconds,
            q.lag.clone(),
        );
        q
    }

    pub(crate) fn set(&self, s: &Snapshot) {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.delayed.set(count(s.delayed));
        self.needing_attention.set(count(s.needing_attention));
        self.due_tasks.set(count(s.due_tasks));
        self.oldest_due.set(s.oldest_due_seconds);
        // A kind or subscription gone since the last scrape leaves no series.
        self.dead_letters.clear();
        for (kind, n) in &s.dead_letters {
            self.dead_letters.get_or_create(&ByKind { kind: kind.clone() }).set(count(*n));
        }
        self.depth.clear();
        self.lag.clear();
        for sub in &s.subscriptions {
            for (state, n) in [("pending", sub.pending), ("in_flight", sub.in_flight)] {
                let labels = Depth { subscription: sub.name.clone(), state: state.to_string() };
                self.depth.get_or_create(&labels).set(count(n));
            }
            self.lag.get_or_create(&BySubscription { subscription: sub.name.clone() }).set(sub.lag_seconds);
        }
    }
}
