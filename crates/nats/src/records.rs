//! What a delivery's attempts leave behind that JetStream does not keep:
//! each failed attempt's error (for its dead letter), and how many times
//! it was given back unsent. The server counts every delivery; herald
//! counts attempts, which are deliveries less the unsent ones.
//!
//! A record exists only for an event that was nacked, so the first
//! delivery of an event (by far the most) reads and writes none.

use herald_core::retry::AttemptError;
use serde::{Deserialize, Serialize};

use crate::storage;

type BResult<T> = herald_broker::Result<T>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Deliveries given back as `Redelivery::Unsent`: not attempts.
    #[serde(default)]
    pub unsent: u64,
    #[serde(default)]
    pub errors: Vec<AttemptError>,
}

impl Record {
    /// Attempts made before delivery number `delivered` (1-based).
    pub fn made_before(&self, delivered: u64) -> u32 {
        delivered.saturating_sub(1).saturating_sub(self.unsent).min(u64::from(u32::MAX)) as u32
    }
}

#[derive(Clone)]
pub struct Records {
    kv: async_nats::jetstream::kv::Store,
}

impl Records {
    pub fn new(kv: async_nats::jetstream::kv::Store) -> Self {
        Records { kv }
    }

    /// The record of a delivery the server has sent `delivered` times.
    pub async fn get(&self, key: &str, delivered: u64) -> BResult<Record> {
        if delivered <= 1 {
            return Ok(Record::default());
        }
        match self.kv.get(key).await.map_err(storage)? {
            None => Ok(Record::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(storage),
        }
    }

    pub async fn put(&self, key: &str, record: &Record) -> BResult<()> {
        let bytes = serde_json::to_vec(record).map_err(storage)?;
        self.kv.put(key, bytes.into()).await.map(drop).map_err(storage)
    }

    /// The delivery is over (acknowledged or buried).
    pub async fn forget(&self, key: &str, delivered: u64) -> BResult<()> {
        if delivered <= 1 {
            return Ok(());
        }
        self.kv.purge(key).await.map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsent_deliveries_are_not_attempts() {
        let r = Record { unsent: 3, errors: vec![] };
        assert_eq!(r.made_before(1), 0);
        assert_eq!(r.made_before(4), 0, "three give-backs, still the first attempt");
        assert_eq!(r.made_before(6), 2);
        assert_eq!(Record::default().made_before(3), 2);
    }
}
