//! The observed flow times behind `expected_within = "auto"`: the 90th
//! percentile of a workflow's last [`SAMPLES`] succeeded operations, read
//! from the store (so every node promises the same), kept for
//! [`FRESH_FOR`], and read again sooner once this node has seen one of
//! the workflow's operations end.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use herald_core::{OpStatus, Span};
use herald_store::{ListQuery, Store};

/// How many recent operations the percentile is taken over.
pub const SAMPLES: usize = 100;
/// How long a figure is used before the store is asked again.
const FRESH_FOR: Duration = Duration::from_secs(30);
/// The least time between two reads for one workflow.
const AT_MOST_EVERY: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct FlowTimes(Mutex<HashMap<String, Arc<Slot>>>);

#[derive(Default)]
struct Slot {
    /// An operation of the workflow ended here since the last read.
    stale: AtomicBool,
    read: tokio::sync::Mutex<Read>,
}

#[derive(Default)]
struct Read {
    at: Option<Instant>,
    p90: Option<Span>,
}

impl FlowTimes {
    fn slot(&self, workflow: &str) -> Arc<Slot> {
        self.0.lock().expect("never poisoned").entry(workflow.to_string()).or_default().clone()
    }

    /// One of `workflow`'s operations ended here: the figure may move.
    pub fn ended(&self, workflow: &str) {
        if let Some(slot) = self.0.lock().expect("never poisoned").get(workflow) {
            slot.stale.store(true, Ordering::Relaxed);
        }
    }

    /// The workflow's observed p90 flow time, `None` until it has enough
    /// succeeded operations. One caller reads the store at a time; the
    /// others wait for its figure rather than ask again.
    pub async fn p90(&self, store: &dyn Store, workflow: &str) -> herald_store::Result<Option<Span>> {
        let slot = self.slot(workflow);
        let mut read = slot.read.lock().await;
        let due = match read.at {
            None => true,
            Some(at) => {
                at.elapsed() >= FRESH_FOR || (at.elapsed() >= AT_MOST_EVERY && slot.stale.load(Ordering::Relaxed))
            }
        };
        if due {
            slot.stale.store(false, Ordering::Relaxed);
            let query = ListQuery {
                subject: None,
                workflow: Some(workflow.to_string()),
                status: Some(OpStatus::Succeeded),
                before: None,
                flagged: None,
                limit: SAMPLES,
            };
            let times = store
                .list(query)
                .await?
                .into_iter()
                .filter_map(|op| (op.finished_at? - op.created_at).to_std().ok())
                .collect();
            *read = Read { at: Some(Instant::now()), p90: herald_core::expect::observed(times) };
        }
        Ok(read.p90)
    }
}
