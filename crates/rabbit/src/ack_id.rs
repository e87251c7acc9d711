//! Ack ids: `{process}.{item}.{token}`, in hex. The process is the one
//! holding the delivery (an ack reaching another is forwarded to it); the
//! item is its place among what that process holds of the subscription;
//! the token is random and new with each lease, so the id of a lease that
//! ended answers nothing, and ids cannot be guessed. An id is looked up
//! among what the process holds of the one subscription it was sent for:
//! another subscription's id is unknown there.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckId {
    pub process: String,
    pub item: u64,
    pub token: u64,
}

impl AckId {
    pub fn encode(&self) -> String {
        format!("{}.{:x}.{:x}", self.process, self.item, self.token)
    }

    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split('.');
        let (process, item, token) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || !crate::valid_process(process) {
            return None;
        }
        Some(AckId {
            process: process.to_string(),
            item: u64::from_str_radix(item, 16).ok()?,
            token: u64::from_str_radix(token, 16).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_id_round_trips_and_nothing_else_is_one() {
        let id = AckId { process: "0123456789abcdef".into(), item: 42, token: u64::MAX };
        assert_eq!(AckId::parse(&id.encode()), Some(id));
        for bad in ["", "x.1.2", "0123456789abcdef.1", "0123456789abcdef.1.2.3", "0123456789abcdef.z.2", "../1.2"] {
            assert_eq!(AckId::parse(bad), None, "{bad}");
        }
    }
}
