//! Where everything lives on the server: one stream per topic, one durable
//! pull consumer per subscription and partition, and two KV buckets, all
//! named from one prefix so that several herald
//! deployments (or tests) share a server without meeting.
//!
//! | what | name |
//! | --- | --- |
//! | a topic's stream | `{prefix}-t-{topic}`, subjects `{prefix}.t.{topic}.*` |
//! | a keyed event of a topic | subject `{prefix}.t.{topic}.k{n}`, n = hash(key) mod partitions |
//! | a keyless event | subject `{prefix}.t.{topic}.u` |
//! | a subscription's consumers | `{sub}-k{n}` (at most one event out each) and `{sub}-u` |
//! | subscription definitions | KV bucket `{prefix}-subs`, key = the name |
//! | what a delivery's attempts left behind | KV bucket `{prefix}-attempts` |
//! | "look now" signals between herald processes | core subject `{prefix}.w.{topic}` |
//!
//! Topic and subscription names may hold `.`, which NATS reads as a
//! subject separator and refuses in stream and consumer names: it becomes
//! `~` there (names never hold `~`, so no two names meet), and `=` in KV
//! keys, which refuse `~`.

pub use herald_broker::{Part, valid_prefix};

#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
    partitions: u16,
}

fn token(name: &str) -> String {
    name.replace('.', "~")
}

fn kv_key(name: &str) -> String {
    name.replace('.', "=")
}

impl Names {
    pub fn new(prefix: &str, partitions: u16) -> Self {
        Names { prefix: prefix.to_string(), partitions: partitions.max(1) }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn stream(&self, topic: &str) -> String {
        format!("{}-t-{}", self.prefix, token(topic))
    }

    /// The topic whose stream this is.
    pub fn topic_of_stream(&self, stream: &str) -> Option<String> {
        let topic = stream.strip_prefix(&self.prefix)?.strip_prefix("-t-")?;
        Some(topic.replace('~', "."))
    }

    pub fn stream_subjects(&self, topic: &str) -> String {
        format!("{}.t.{}.*", self.prefix, token(topic))
    }

    pub fn subject(&self, topic: &str, part: Part) -> String {
        format!("{}.t.{}.{part}", self.prefix, token(topic))
    }

    /// The partition of an ordering key: FNV-1a, stable across processes
    /// and releases (a change would split a key's events across two).
    pub fn part(&self, key: Option<&str>) -> Part {
        let Some(key) = key else { return Part::Keyless };
        Part::Key(herald_broker::key_partition(key, self.partitions))
    }

    /// Every part of a topic, the keyless one first.
    pub fn parts(&self) -> impl Iterator<Item = Part> {
        std::iter::once(Part::Keyless).chain((0..self.partitions).map(Part::Key))
    }

    pub fn consumer(&self, sub: &str, part: Part) -> String {
        format!("{}-{part}", token(sub))
    }

    /// The subscription a consumer is one of.
    pub fn sub_of_consumer(&self, consumer: &str) -> Option<String> {
        let (sub, part) = consumer.rsplit_once('-')?;
        let known = self.parts().any(|p| p.to_string() == part);
        known.then(|| sub.replace('~', "."))
    }

    /// Is `consumer` one of `sub`'s?
    pub fn is_consumer_of(&self, consumer: &str, sub: &str) -> bool {
        // Compared in place: every ack id answered passes here.
        let Some((name, part)) = consumer.rsplit_once('-') else { return false };
        let same_name = name.len() == sub.len()
            && name.bytes().zip(sub.bytes()).all(|(c, s)| c == if s == b'.' { b'~' } else { s });
        same_name && self.is_part(part)
    }

    /// Is `part` one of a topic's parts, as [`Part`]'s `Display` writes it?
    fn is_part(&self, part: &str) -> bool {
        if part == "u" {
            return true;
        }
        let Some(n) = part.strip_prefix('k') else { return false };
        let canonical = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'));
        canonical && n.parse::<u16>().is_ok_and(|n| n < self.partitions)
    }

    pub fn subs_bucket(&self) -> String {
        format!("{}-subs", self.prefix)
    }

    pub fn sub_key(&self, sub: &str) -> String {
        kv_key(sub)
    }

    pub fn attempts_bucket(&self) -> String {
        format!("{}-attempts", self.prefix)
    }

    /// One delivery's record: the subscription, the topic (a subscription
    /// may move to another topic, whose stream counts from 1 again) and the
    /// event's place.
    pub fn attempts_key(&self, sub: &str, topic: &str, seq: u64) -> String {
        format!("{}/{}/{seq}", kv_key(sub), kv_key(topic))
    }

    pub fn wake_subjects(&self) -> String {
        format!("{}.w.*", self.prefix)
    }

    pub fn wake_subject(&self, topic: &str) -> String {
        format!("{}.w.{}", self.prefix, token(topic))
    }

    /// The topic a wake subject names.
    pub fn topic_of_wake(&self, subject: &str) -> Option<String> {
        let topic = subject.strip_prefix(&self.prefix)?.strip_prefix(".w.")?;
        Some(topic.replace('~', "."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_dots_never_meet_names_without() {
        let n = Names::new("herald", 16);
        assert_ne!(n.stream("a.b"), n.stream("a-b"));
        assert_eq!(n.subject("a.b", Part::Key(3)), "herald.t.a~b.k3");
        assert_eq!(n.consumer("herald.await.t", Part::Keyless), "herald~await~t-u");
        assert_ne!(n.attempts_key("a.b", "c", 1), n.attempts_key("a", "b.c", 1));
        assert_eq!(n.topic_of_wake(&n.wake_subject("a.b")).as_deref(), Some("a.b"));
    }

    #[test]
    fn a_key_always_lands_in_the_same_partition_and_keyless_events_apart() {
        let n = Names::new("herald", 16);
        assert_eq!(n.part(Some("alice")), n.part(Some("alice")));
        assert_eq!(n.part(None), Part::Keyless);
        // The contract suite's two keys must be able to go out side by side.
        assert_ne!(n.part(Some("a")), n.part(Some("b")));
        assert_eq!(n.parts().count(), 17);
    }

    #[test]
    fn a_consumer_belongs_to_its_subscription_only() {
        let n = Names::new("herald", 4);
        assert!(n.is_consumer_of("s-k2", "s"));
        assert!(!n.is_consumer_of("s-k2", "t"));
        assert!(!n.is_consumer_of("s-k9", "s"));
        assert_eq!(
            n.sub_of_consumer(&n.consumer("herald.await.t-x", Part::Key(3))).as_deref(),
            Some("herald.await.t-x")
        );
        assert_eq!(n.topic_of_stream(&n.stream("a.b")).as_deref(), Some("a.b"));
    }

    #[test]
    fn prefixes_are_one_plain_token() {
        assert!(valid_prefix("herald"));
        assert!(valid_prefix("ht_1f2e"));
        assert!(!valid_prefix("a.b"));
        assert!(!valid_prefix("a-t"), "its streams would look like prefix a's");
        assert!(!valid_prefix(""));
    }
}
