//! Publish dedupe and `seq`, which RabbitMQ does not give: both come from
//! the stream `{prefix}.ids`, a log every herald process appends to and
//! reads (see `log`).
//!
//! Publishing an event first appends a claim (topic, source, id). The
//! claim's offset is the event's `seq`: every process agrees on it, and it
//! grows in the order claims were appended. Reading the claim back, the
//! process knows every record before it; if one of those says the same
//! topic, source and id were published (and confirmed) within the dedupe
//! window, the event is a duplicate and answers that first `seq`.
//! Otherwise the event goes to the topic exchange, and once RabbitMQ has
//! confirmed it, a `done` record is appended (and confirmed) before the
//! publish answers.
//!
//! Only `done` records make duplicates: a claim whose publish was never
//! confirmed (refused, or its process died) swallows no later republish,
//! so an acknowledged publish is never lost; two republishes racing may
//! both go out, which at-least-once allows.
//!
//! The stream keeps records for the dedupe window (`x-max-age`), and a
//! process starting reads it from that long ago; each process keeps the
//! window's ids in memory and forgets older ones in `maintain`.

use std::collections::HashMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::log::Fold;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub enum Record {
    /// `fresh`: a redrive, never a duplicate.
    Claim {
        topic: String,
        source: String,
        id: String,
        fresh: bool,
    },
    Done {
        topic: String,
        source: String,
        id: String,
        seq: u64,
        at_ms: i64,
    },
}

/// Published events recognised within the window: key → (seq, when).
pub struct Ids {
    window_ms: i64,
    done: HashMap<(String, String, String), (u64, i64)>,
}

impl Ids {
    pub fn new(window: std::time::Duration) -> Self {
        Ids { window_ms: window.as_millis().min(i64::MAX as u128) as i64, done: HashMap::new() }
    }

    /// Forgets ids published longer ago than the window.
    pub fn forget_old(&mut self) {
        let horizon = Utc::now().timestamp_millis() - self.window_ms;
        self.done.retain(|_, (_, at)| *at > horizon);
    }
}

impl Fold for Ids {
    type Record = Record;
    /// For a claim: the first copy's `seq` when it is a duplicate.
    type Outcome = Option<u64>;

    fn apply(&mut self, _offset: u64, record: Record) -> Option<u64> {
        match record {
            Record::Claim { fresh: true, .. } => None,
            Record::Claim { topic, source, id, fresh: false } => {
                let horizon = Utc::now().timestamp_millis() - self.window_ms;
                self.done.get(&(topic, source, id)).filter(|(_, at)| *at > horizon).map(|(seq, _)| *seq)
            }
            Record::Done { topic, source, id, seq, at_ms } => {
                // Two racing republishes both went out: the first stays.
                self.done.entry((topic, source, id)).or_insert((seq, at_ms));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(id: &str) -> Record {
        Record::Claim { topic: "t".into(), source: "/s".into(), id: id.into(), fresh: false }
    }

    fn done(id: &str, seq: u64) -> Record {
        let at_ms = Utc::now().timestamp_millis();
        Record::Done { topic: "t".into(), source: "/s".into(), id: id.into(), seq, at_ms }
    }

    #[test]
    fn only_a_confirmed_publish_makes_a_duplicate() {
        let mut ids = Ids::new(std::time::Duration::from_secs(60));
        assert_eq!(ids.apply(0, claim("e1")), None);
        assert_eq!(ids.apply(1, claim("e1")), None, "the first was never confirmed");
        ids.apply(2, done("e1", 2));
        ids.apply(3, done("e1", 3));
        assert_eq!(ids.apply(4, claim("e1")), Some(2), "the first confirmed copy's seq");
        assert_eq!(ids.apply(5, claim("e2")), None);
    }

    #[test]
    fn ids_past_the_window_are_forgotten() {
        let mut ids = Ids::new(std::time::Duration::ZERO);
        ids.apply(0, done("e1", 1));
        assert_eq!(ids.apply(1, claim("e1")), None);
        ids.forget_old();
        assert!(ids.done.is_empty());
    }
}
