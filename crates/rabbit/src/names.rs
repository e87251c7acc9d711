//! Where everything lives on the server, all named from one prefix so that
//! several herald deployments (or tests) share a RabbitMQ without meeting.
//! (Subscription definitions and publish claims are not on the server:
//! they are in herald's store, under the same prefix; see `defs`, `publish`.)
//!
//! | what | name |
//! | --- | --- |
//! | topics (fan-out to subscriptions) | topic exchange `{prefix}.topics` |
//! | a keyed event of a topic | routing key `{topic}.k{n}`, n = hash(key) mod partitions |
//! | a keyless event | routing key `{topic}.u` |
//! | a subscription's queues | `{prefix}.s.{sub}.k{n}` (single active consumer) and `{prefix}.s.{sub}.u` |
//! | over the delivery limit | dead-letter exchange `{prefix}.dlx` into queue `{prefix}.dead` |
//! | "look now" signals | fanout exchange `{prefix}.wake` |
//! | one herald process's inbox (forwarded acks, signals) | exclusive queue `{prefix}.p.{process}` |
//!
//! A routing key's last word is always the part (`k{n}` or `u`) and names
//! hold no `*` or `#`, so each queue is bound by one exact key and no two
//! topics' keys meet. Likewise a queue name's last word is the part: sub
//! `a.u` and sub `a` never share a queue.

pub use herald_broker::{Part, valid_prefix};

#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
    partitions: u16,
}

impl Names {
    pub fn new(prefix: &str, partitions: u16) -> Self {
        Names { prefix: prefix.to_string(), partitions: partitions.max(1) }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    pub fn part(&self, key: Option<&str>) -> Part {
        match key {
            None => Part::Keyless,
            Some(k) => Part::Key(herald_broker::key_partition(k, self.partitions)),
        }
    }

    /// Every part of a subscription, the keyless one first.
    pub fn parts(&self) -> impl Iterator<Item = Part> {
        std::iter::once(Part::Keyless).chain((0..self.partitions).map(Part::Key))
    }

    pub fn topics_exchange(&self) -> String {
        format!("{}.topics", self.prefix)
    }

    pub fn routing_key(&self, topic: &str, part: Part) -> String {
        format!("{topic}.{part}")
    }

    pub fn queue(&self, sub: &str, part: Part) -> String {
        format!("{}.s.{sub}.{part}", self.prefix)
    }

    /// The subscription and part a queue is, if it is one of this prefix's.
    pub fn sub_of_queue(&self, queue: &str) -> Option<(String, Part)> {
        let rest = queue.strip_prefix(&self.prefix)?.strip_prefix(".s.")?;
        let (sub, part) = rest.rsplit_once('.')?;
        let part = self.parts().find(|p| p.to_string() == part)?;
        Some((sub.to_string(), part))
    }

    pub fn dlx(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    pub fn wake_exchange(&self) -> String {
        format!("{}.wake", self.prefix)
    }

    pub fn inbox(&self, process: &str) -> String {
        format!("{}.p.{process}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_names_its_subscription_and_part() {
        let n = Names::new("herald", 4);
        assert_eq!(n.sub_of_queue(&n.queue("a.u", Part::Key(3))), Some(("a.u".into(), Part::Key(3))));
        assert_eq!(n.sub_of_queue(&n.queue("a", Part::Keyless)), Some(("a".into(), Part::Keyless)));
        assert_eq!(n.sub_of_queue("herald.s.a.k9"), None, "no such partition");
        assert_eq!(n.sub_of_queue("other.s.a.u"), None);
        assert_ne!(n.routing_key("a.k1", Part::Keyless), n.routing_key("a", Part::Key(1)));
    }

    #[test]
    fn the_contract_suites_two_keys_go_out_side_by_side() {
        let n = Names::new("herald", 4);
        assert_ne!(n.part(Some("a")), n.part(Some("b")));
        assert_eq!(n.part(Some("alice")), n.part(Some("alice")));
        assert_eq!(n.part(None), Part::Keyless);
        assert_eq!(n.parts().count(), 5);
    }

    #[test]
    fn prefixes_are_one_plain_word() {
        assert!(valid_prefix("herald"));
        assert!(valid_prefix("ht_1f2e"));
        assert!(!valid_prefix("a.b"));
        assert!(!valid_prefix(""));
    }
}
