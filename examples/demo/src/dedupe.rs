//! The idempotency store shared by both apps: one slot per
//! `Idempotency-Key` holding the final answer, plus how many times work was
//! actually applied per key (served at `GET /applied` so tests can prove
//! "exactly once").

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use axum::http::StatusCode;
use serde_json::Value;

use crate::lock;

/// A final answer, replayed as-is for a repeated key.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

/// One key's slot. An async mutex, so a duplicate that arrives while the
/// first call is still working waits and then gets the same answer instead
/// of doing the work a second time.
pub type Slot = Arc<tokio::sync::Mutex<Option<Answer>>>;

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
