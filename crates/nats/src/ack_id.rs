//! Ack ids: what a consumer sends back to answer a pulled event. Each
//! carries the server's own ack subject (stream, consumer, delivery count,
//! stream sequence) and the end of the lease it was handed out under, so
//! that any herald process can answer it without shared state.

use chrono::{DateTime, Utc};

/// The server's ack subjects start with this; an ack id keeps the rest.
const ACK_PREFIX: &str = "$JS.ACK.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckId {
    /// When the lease ends, in milliseconds since the epoch.
    pub until_ms: i64,
    /// The subject the server takes answers on.
    pub reply: String,
    pub stream: String,
    pub consumer: String,
    /// Deliveries so far, this one included: the server's count, or more
    /// where herald's record shows the server's went back (see
    /// [`crate::records`]).
    pub delivered: u64,
    /// The server's count, as its ack subject has it.
    pub counted: u64,
    pub seq: u64,
    /// When the event was stored, in nanoseconds since the epoch.
    pub published_ns: i64,
}

/// The 7 tokens of an ack subject after `$JS.ACK.`. Two layouts (ADR-15):
/// 7 tokens, or 9 or more that begin with the domain and the account's
/// hash.
fn tokens(tail: &str) -> Option<[&str; 7]> {
    let mut all = [""; 12];
    let mut n = 0;
    for token in tail.split('.') {
        if n == all.len() {
            // More than any layout the server makes: read as before, the
            // 7 after the domain and hash, past the first 12 unchecked.
            n += 1;
            continue;
        }
        all[n] = token;
        n += 1;
    }
    let start = match n {
        7 => 0,
        n if n >= 9 => 2,
        _ => return None,
    };
    let mut t = [""; 7];
    t.copy_from_slice(&all[start..start + 7]);
    Some(t)
}

impl AckId {
    /// The id of a delivery the server sent with `reply` as its ack subject.
    pub fn new(reply: &str, until: DateTime<Utc>) -> Option<Self> {
        Self::of_reply(reply.to_string(), until)
    }

    /// [`AckId::new`], keeping the subject given rather than copying it.
    fn of_reply(reply: String, until: DateTime<Utc>) -> Option<Self> {
        let tail = reply.strip_prefix(ACK_PREFIX)?;
        // It becomes a subject herald publishes to: one it could be, no more.
        if tail.bytes().any(|b| b.is_ascii_whitespace() || b == b'*' || b == b'>') {
            return None;
        }
        let t = tokens(tail)?;
        let delivered = t[2].parse().ok()?;
        t[6].parse::<u64>().ok()?;
        let (stream, consumer) = (t[0].to_string(), t[1].to_string());
        let (seq, published_ns) = (t[3].parse().ok()?, t[5].parse().ok()?);
        Some(AckId {
            until_ms: until.timestamp_millis(),
            reply,
            stream,
            consumer,
            delivered,
            counted: delivered,
            seq,
            published_ns,
        })
    }

    /// The stream, consumer, stream sequence and consumer sequence an ack
    /// subject names, if it is one (as [`AckId::new`] reads it), without
    /// making an ack id of it.
    pub fn locate(reply: &str) -> Option<(&str, &str, u64, u64)> {
        let tail = reply.strip_prefix(ACK_PREFIX)?;
        let t = tokens(tail)?;
        Some((t[0], t[1], t[3].parse().ok()?, t[4].parse().ok()?))
    }

    pub fn parse(ack_id: &str) -> Option<Self> {
        let (head, tail) = ack_id.split_once(':')?;
        let (until, raised) = match head.split_once('+') {
            Some((until, raised)) => (until, Some(u64::from_str_radix(raised, 16).ok()?)),
            None => (head, None),
        };
        let until = DateTime::from_timestamp_millis(i64::from_str_radix(until, 16).ok()?)?;
        let mut id = Self::of_reply([ACK_PREFIX, tail].concat(), until)?;
        if let Some(raised) = raised {
            if raised <= id.counted {
                return None;
            }
            id.delivered = raised;
        }
        Some(id)
    }

    /// The lease's end, herald's count where it is not the server's, and
    /// the ack subject.
    pub fn encode(&self) -> String {
        let tail = &self.reply[ACK_PREFIX.len()..];
        if self.delivered == self.counted {
            format!("{:x}:{tail}", self.until_ms)
        } else {
            format!("{:x}+{:x}:{tail}", self.until_ms, self.delivered)
        }
    }

    /// Is the lease still running at `now`?
    pub fn held(&self, now: DateTime<Utc>) -> bool {
        now.timestamp_millis() < self.until_ms
    }

    pub fn published_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.published_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_id_round_trips_and_names_its_delivery() {
        let until = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let id = AckId::new("$JS.ACK.herald-t-orders.s-k3.2.41.7.1796163758093013458.5", until).unwrap();
        assert_eq!(
            (id.stream.as_str(), id.consumer.as_str(), id.delivered, id.seq),
            ("herald-t-orders", "s-k3", 2, 41)
        );
        assert_eq!(AckId::parse(&id.encode()), Some(id.clone()));
        assert!(id.held(until - chrono::Duration::milliseconds(1)));
        assert!(!id.held(until));
    }

    #[test]
    fn a_count_raised_past_the_servers_goes_with_the_ack_id() {
        let mut id = AckId::new("$JS.ACK.st.co.1.9.3.1796163758093013458.0", Utc::now()).unwrap();
        id.delivered = 3;
        let back = AckId::parse(&id.encode()).unwrap();
        assert_eq!((back.delivered, back.counted), (3, 1));
        assert_eq!(back, id);
        let lowered = id.encode().replacen("+3:", "+1:", 1);
        assert_eq!(AckId::parse(&lowered), None, "never below the server's count");
    }

    #[test]
    fn the_longer_subject_layout_is_read_too() {
        let id = AckId::new("$JS.ACK.dom.hash.st.co.1.9.9.1796163758093013458.0.tok", Utc::now()).unwrap();
        assert_eq!((id.stream.as_str(), id.consumer.as_str(), id.seq), ("st", "co", 9));
    }

    #[test]
    fn anything_else_is_no_ack_id() {
        for bad in
            ["", "zz:a.b", "10:a.b.c", "10:st.co.x.1.1.1.1", "no-colon", "10:st.co.1.1.1.1.1 x", "10:st.*.1.1.1.1.1"]
        {
            assert_eq!(AckId::parse(bad), None, "{bad}");
        }
    }
}
