//! herald's metrics, served at `/metrics` in the OpenMetrics text format
//! that Prometheus scrapes.
//!
//! One [`Metrics`] per herald, not a process-wide recorder: the tests run
//! several heralds in one process, and each counts its own. Counters and
//! histograms move where the thing happens (a commit, a start, a call);
//! gauges of what the store and the broker hold are read at each scrape
//! ([`Snapshot`]), so every node reports the same truth about them. Names
//! and units follow Prometheus's conventions; docs/OPERATING.md describes
//! each family.
//!
//! - [`operations`] — operations, their steps, and conflicts, from each
//!   commit's events and each start's answer.
//! - [`queues`] — the gauges of what waits, read at a scrape.
//! - [`gateway`] — the gateway's requests, and the registry's circuits,
//!   limits and instances (read at a scrape).
//! - [`live`] — live streams: open, sent, commit-to-send lag.

pub mod gateway;
pub mod live;
pub mod operations;
pub mod queues;

use std::sync::Mutex;

use prometheus_client::{encoding::text::encode, registry::Registry};

pub use gateway::ServiceState;
pub use queues::{Snapshot, Subscription};

/// The media type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub struct Metrics {
    registry: Registry,
    pub operations: operations::Operations,
    pub gateway: gateway::Gateway,
    pub live: live::Live,
    queues: queues::Queues,
    /// One scrape at a time: a scrape's gauges are set, then written out.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("herald");
        let operations = operations::Operations::register(&mut registry);
        let gateway = gateway::Gateway::register(&mut registry);
        let live = live::Live::register(&mut registry);
        let queues = queues::Queues::register(&mut registry);
        Metrics { registry, operations, gateway, live, queues, scrape: Mutex::new(()) }
    }
}

impl Metrics {
    /// Every family, with the gauges of `snapshot`, as OpenMetrics text.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let _one = self.scrape.lock().expect("scrape");
        self.queues.set(snapshot);
        self.gateway.set(&snapshot.services);
        let mut out = String::with_capacity(16 * 1024);
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
