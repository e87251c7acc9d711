//! What a broker on a server of its own (NATS JetStream, RabbitMQ) is
//! configured with, and how connecting to it fails: the same for every
//! engine, so that changing engines changes the URL and nothing else.

use std::time::Duration;

/// The partitions a topic's keyed events are spread over by default: as
/// many keys as this can be out at once per subscription.
pub const DEFAULT_PARTITIONS: u16 = 16;

/// What an engine's `connect` needs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `nats://host:port` or `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// Everything herald makes on the server starts with this (letters,
    /// digits, `_`), so deployments share a server apart; it is also the
    /// scope of what herald's store keeps for it.
    pub prefix: String,
    /// How long a re-published event's source and id are recognised.
    pub dedupe_window: Duration,
    /// Partitions for keyed events; the same in every process on the
    /// prefix, and fixed once a topic (NATS) or subscription (RabbitMQ)
    /// exists.
    pub partitions: u16,
}

impl EngineConfig {
    pub fn new(url: impl Into<String>) -> Self {
        EngineConfig {
            url: url.into(),
            prefix: "herald".into(),
            dedupe_window: Duration::from_secs(600),
            partitions: DEFAULT_PARTITIONS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach {engine} at {url}: {reason}")]
    Connect { engine: &'static str, url: String, reason: String },
    #[error("{engine} at {url} refused herald's setup: {reason}")]
    Setup { engine: &'static str, url: String, reason: String },
    #[error("{0}")]
    Config(String),
}

/// The URL as it may be shown: its password left out.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_has_no_password() {
        assert_eq!(redact("amqp://guest:secret@host:5672/%2f"), "amqp://guest:***@host:5672/%2f");
        assert_eq!(redact("nats://herald:s3cret@mq:4222"), "nats://herald:***@mq:4222");
        assert_eq!(redact("amqp://host:5672"), "amqp://host:5672");
        assert!(!redact("amqp://u:p@ss@h/").contains("p@ss"));
    }
}
