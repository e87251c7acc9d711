//! What a delivery's attempts leave behind that JetStream does not keep:
//! each failed attempt's error (for its dead letter), and how many times
//! it was given back unsent. The server counts every delivery; herald
//! counts attempts, which are deliveries less the unsent ones.
//!
//! A record exists only for an event that was nacked, so the first
//! delivery of an event (by far the most) reads and writes none.
//!
//! The server's count can go back: a 2.9 server now and then sends an
//! event again counted as a first delivery (seen after a nak with a
//! delay). A record therefore keeps the count it was last written at,
//! each redelivery handed out writes its count (redeliveries are few),
//! and a later delivery counts at least one more than the record; a
//! process that has had a later event of the same consumer reads the
//! record even when the server says "first" (see [`crate::fetch`]), and
//! counts such a delivery at least the second: this process had it
//! before, and a first delivery leaves no record. What is left: a first
//! delivery whose lease ended, sent again to another process counted
//! "first", is its first attempt once more.

use herald_core::retry::AttemptError;
use serde::{Deserialize, Serialize};

use crate::{ack_id::AckId, storage};

type BResult<T> = herald_broker::Result<T>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Deliveries given back as `Redelivery::Unsent`: not attempts.
    #[serde(default)]
    pub unsent: u64,
    #[serde(default)]
    pub errors: Vec<AttemptError>,
    /// The delivery (as herald counts it) the record was last written at.
    #[serde(default)]
    pub delivered: u64,
}

impl Record {
    /// The count of a delivery the server counts `delivered`: at least one
    /// more than the record was written at, and at least the second when
    /// it is `behind` (this process had it already).
    pub fn count(&self, delivered: u64, behind: bool) -> u64 {
        let floor = if behind { 2 } else { 1 };
        delivered.max(self.delivered + 1).max(floor)
    }

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

    /// The record of a delivery herald counts as number `delivered`.
    pub async fn get(&self, key: &str, delivered: u64) -> BResult<Record> {
        if delivered <= 1 {
            return Ok(Record::default());
        }
        self.read(key).await
    }

    /// The record as kept, or none yet.
    async fn read(&self, key: &str) -> BResult<Record> {
        match self.kv.get(key).await.map_err(storage)? {
            None => Ok(Record::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(storage),
        }
    }

    /// The record of a delivery just received, read also when the server
    /// counts it first but it is `behind` what this process saw already;
    /// its count is raised past the record's when the server's went back.
    pub async fn of_received(&self, key: &str, id: &mut AckId, behind: bool) -> BResult<Record> {
        let record = if behind { self.read(key).await? } else { self.get(key, id.delivered).await? };
        let counted = record.count(id.delivered, behind);
        if counted != id.delivered {
            tracing::debug!(
                seq = id.seq,
                server = id.delivered,
                herald = counted,
                "the server's delivery count went back"
            );
            id.delivered = counted;
        }
        Ok(record)
    }

    /// Keeps the count of a redelivery handed out, so that the server's
    /// going back cannot lower it (a write only where the record is behind).
    pub async fn keep_count(&self, key: &str, record: &mut Record, id: &AckId) -> BResult<()> {
        if id.delivered <= 1 || record.delivered >= id.delivered {
            return Ok(());
        }
        self.put(key, record, id).await
    }

    /// Writes the record as of delivery `id`.
    pub async fn put(&self, key: &str, record: &mut Record, id: &AckId) -> BResult<()> {
        record.delivered = id.delivered;
        let bytes = serde_json::to_vec(&*record).map_err(storage)?;
        self.kv.put(key, bytes.into()).await.map(drop).map_err(storage)
    }

    /// Counts delivery `id`, whose record is `record`, as given back
    /// unsent (not an attempt).
    pub async fn unsent(&self, key: &str, mut record: Record, id: &AckId) -> BResult<()> {
        record.unsent += 1;
        self.put(key, &mut record, id).await
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
        let r = Record { unsent: 3, ..Record::default() };
        assert_eq!(r.made_before(1), 0);
        assert_eq!(r.made_before(4), 0, "three give-backs, still the first attempt");
        assert_eq!(r.made_before(6), 2);
        assert_eq!(Record::default().made_before(3), 2);
    }

    #[test]
    fn a_delivery_counts_past_the_record_when_the_servers_count_went_back() {
        let r = Record { delivered: 2, ..Record::default() };
        assert_eq!(r.count(1, true), 3, "the server said first, the record had the second");
        assert_eq!(r.count(2, false), 3);
        assert_eq!(r.count(5, false), 5, "the server's count when it is ahead");
        assert_eq!(Record::default().count(1, false), 1);
    }

    #[test]
    fn an_event_had_before_counts_at_least_the_second_though_it_left_no_record() {
        // Its first lease ended unanswered (no record written), and the
        // server sent it again counted first.
        assert_eq!(Record::default().count(1, true), 2);
        assert_eq!(Record::default().made_before(2), 1, "its first attempt was made");
        assert_eq!(Record::default().count(3, true), 3);
    }
}
