//! Subscription definitions, shared by every herald process on the prefix:
//! RabbitMQ has no key-value store, so they are records in the stream
//! `{prefix}.subs` (kept for ever), which each process replays from the
//! start and keeps reading (see `log`).
//!
//! A put or delete returns once read back, so the process that made it
//! sees it at once. Another process sees it as soon as its reader gets
//! there (milliseconds); where that matters (a subscription asked for by
//! name, the list, one this process does not know yet) it first appends a
//! `sync` record and reads up to it, which puts it past every change made
//! before the call.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::log::Fold;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub enum Record {
    /// The definition as written (`RawSubscription` in JSON).
    Put {
        name: String,
        spec: String,
    },
    Delete {
        name: String,
    },
    Sync,
}

/// Every subscription's definition, by name; and every name ever put, so
/// that removing a prefix finds each subscription's queues.
#[derive(Default)]
pub struct Defs {
    pub specs: BTreeMap<String, String>,
    pub ever: std::collections::BTreeSet<String>,
}

impl Fold for Defs {
    type Record = Record;
    type Outcome = ();

    fn apply(&mut self, _offset: u64, record: Record) {
        match record {
            Record::Put { name, spec } => {
                self.ever.insert(name.clone());
                self.specs.insert(name, spec);
            }
            Record::Delete { name } => {
                self.specs.remove(&name);
            }
            Record::Sync => {}
        }
    }
}
