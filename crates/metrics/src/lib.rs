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
//! - [`queues`] — the gauges read at a scrape.

pub mod operations;
pub mod queues;

use std::sync::Mutex;

use prometheus_client::{encoding::text::encode, registry::Registry};

pub use queues::{Snapshot, Subscription};

/// The media type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub struct Metrics {
    registry: Registry,
    pub operations: operations::Operations,
    queues: queues::Queues,
    /// One scrape at a time: a scrape's gauges are set, then written out.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("herald");
        let operations = operations::Operations::register(&mut registry);
        let queues = queues::Queues::register(&mut registry);
        Metrics { registry, operations, queues, scrape: Mutex::new(()) }
    }
}

impl Metrics {
    /// Every family, with the gauges of `snapshot`, as OpenMetrics text.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let _one = self.scrape.lock().expect("scrape");
        self.queues.set(snapshot);
        let mut out = String::with_capacity(16 * 1024);
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
