//! The in-memory idempotency store of the services without a database:
//! one slot per `Idempotency-Key` holding the final reply, plus how many
//! times work was actually applied per key (served at `GET /applied` so
//! tests can prove "exactly once"). The inventory has a database and keeps
//! its replies in the SDK's inbox instead.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use herald_sdk::step::StepReply;

use crate::lock;

/// One key's slot. An async mutex, so a duplicate that arrives while the
/// first call is still working waits and then gets the same reply instead
/// of doing the work a second time.
pub type Slot = Arc<tokio::sync::Mutex<Option<StepReply>>>;

#[derive(Debug, Default)]
pub struct Dedupe {
    slots: Mutex<HashMap<String, Slot>>,
    applied: Mutex<BTreeMap<String, u32>>,
}

impl Dedupe {
    /// The slot for `key`, created empty on first sight.
    pub fn slot(&self, key: &str) -> Slot {
        lock(&self.slots).entry(key.to_string()).or_default().clone()
    }

    pub fn record_applied(&self, key: &str) {
        *lock(&self.applied).entry(key.to_string()).or_default() += 1;
    }

    pub fn applied(&self) -> BTreeMap<String, u32> {
        lock(&self.applied).clone()
    }
}
