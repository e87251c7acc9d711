//! Live streams: how many are open, what they send, and how long a
//! commit takes to reach a watcher.

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByStream {
    /// `timeline` (an operation's events) or `inbox` (a person's notifications).
    stream: String,
}

pub struct Live {
    open: Family<ByStream, Gauge>,
    sent: Family<ByStream, Counter>,
    lag: Histogram,
    rendered: Histogram,
}

/// One open stream: counted while it lives, and what it sends.
pub struct Watched {
    open: Gauge,
    sent: Counter,
    lag: Histogram,
}

impl Watched {
    /// An item went out; `lag`: from its commit, for an item committed
    /// while the stream was open (not a backlog a client catches up with).
    pub fn sent(&self, lag: Option<Duration>) {
        self.sent.inc();
        if let Some(lag) = lag {
            self.lag.observe(lag.as_secs_f64());
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl Live {
    pub(crate) fn register(r: &mut Registry) -> Self {
        let live = Live {
            open: Family::default(),
            sent: Family::default(),
            lag: Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            rendered: Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        };
        r.register("live_streams", "Server-sent event streams open now", live.open.clone());
        r.register("live_events_sent", "Items sent on live streams", live.sent.clone());
        r.register_with_unit(
            "live_commit_to_send",
            "From an event's commit to its going out on a live stream",
            Unit::Seconds,
            live.lag.clone(),
        );
        r.register_with_unit(
            "ui_commit_to_render",
            "From an event's commit to a browser showing it, as the watching page reported it",
            Unit::Seconds,
            live.rendered.clone(),
        );
        live
    }

    /// A page showed an event `lag` after its commit (its own report).
    pub fn rendered(&self, lag: Duration) {
        self.rendered.observe(lag.as_secs_f64());
    }

    /// A stream of `kind` opens; it is counted until the [`Watched`] drops.
    pub fn watch(&self, kind: &str) -> Watched {
        let labels = ByStream { stream: kind.to_string() };
        let open = self.open.get_or_create(&labels).clone();
        open.inc();
        Watched { open, sent: self.sent.get_or_create(&labels).clone(), lag: self.lag.clone() }
    }
}
