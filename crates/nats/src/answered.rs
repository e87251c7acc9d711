//! Deliveries this process has answered, kept until their leases end, so
//! that a second answer to one is refused as the store's broker refuses
//! it: the server itself takes an ack after a nak, while the event waits
//! out its delay. A claim is taken before the answer goes out, so two
//! answers racing in this process cannot both pass. Another herald
//! process does not see these claims (docs/MESSAGING.md says so).

use std::{
    collections::{HashMap, hash_map::Entry},
    sync::Mutex,
};

use crate::ack_id::AckId;

/// Below this many claims nothing is pruned.
const PRUNE_FLOOR: usize = 1024;

#[derive(Default)]
pub struct Answered {
    inner: Mutex<Claims>,
}

#[derive(Default)]
struct Claims {
    /// A delivery's ack subject, and when its lease ends (ms since the epoch).
    until: HashMap<String, i64>,
    /// Prune the ended ones when there are this many claims.
    prune_at: usize,
}

impl Answered {
    /// Claims the delivery's one answer; `false` if it was claimed already.
    pub fn claim(&self, id: &AckId, now_ms: i64) -> bool {
        let mut claims = self.inner.lock().expect("claims lock");
        if claims.until.len() >= claims.prune_at {
            claims.until.retain(|_, until| *until > now_ms);
            claims.prune_at = (claims.until.len() * 2).max(PRUNE_FLOOR);
        }
        match claims.until.entry(id.reply.clone()) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(id.until_ms);
                true
            }
        }
    }

    /// The answer did not reach the server: the delivery may be answered again.
    pub fn release(&self, id: &AckId) {
        self.inner.lock().expect("claims lock").until.remove(&id.reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64, until_ms: i64) -> AckId {
        let until = chrono::DateTime::from_timestamp_millis(until_ms).unwrap();
        AckId::new(&format!("$JS.ACK.st.co.1.{seq}.1.1796163758093013458.0"), until).unwrap()
    }

    #[test]
    fn a_delivery_is_claimed_once_until_released() {
        let answered = Answered::default();
        assert!(answered.claim(&id(1, 100), 0));
        assert!(!answered.claim(&id(1, 100), 0));
        assert!(answered.claim(&id(2, 100), 0), "another delivery");
        answered.release(&id(1, 100));
        assert!(answered.claim(&id(1, 100), 0));
    }

    #[test]
    fn claims_whose_lease_ended_are_pruned() {
        let answered = Answered::default();
        for seq in 0..PRUNE_FLOOR as u64 {
            assert!(answered.claim(&id(seq, 10), 0));
        }
        assert!(answered.claim(&id(99_999, 1_000), 50), "prunes the ended ones");
        assert_eq!(answered.inner.lock().unwrap().until.len(), 1);
    }
}
