//! The headers herald puts on every event it publishes, and reading the
//! server's own (`x-delivery-count`, `x-death`).

use chrono::{DateTime, Utc};
use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable},
};

/// The event's place in its topic.
pub const SEQ: &str = "herald-seq";
/// The topic it was published to (a dead-lettered message keeps it).
pub const TOPIC: &str = "herald-topic";
/// When it was published, in milliseconds since the epoch.
pub const AT: &str = "herald-at";
/// Set by quorum queues on a message returned to the queue (its holder's
/// channel closed): how often it was delivered before.
pub const DELIVERY_COUNT: &str = "x-delivery-count";
/// Set by the server on a dead-lettered message: the queue it left.
pub const FIRST_DEATH_QUEUE: &str = "x-first-death-queue";
/// And why (`delivery_limit`, `rejected`, `expired`, `maxlen`).
pub const FIRST_DEATH_REASON: &str = "x-first-death-reason";

fn as_u64(v: &AMQPValue) -> Option<u64> {
    match v {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::Timestamp(n) => Some(*n),
        _ => None,
    }
}

pub fn as_string(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

pub fn get<'a>(props: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    props.headers().as_ref().and_then(|h| h.inner().get(name))
}

/// An event's properties: persistent, JSON, with its place, topic and time.
pub fn event_properties(seq: u64, topic: &str, at: DateTime<Utc>) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert(SEQ.into(), AMQPValue::LongLongInt(seq as i64));
    h.insert(TOPIC.into(), AMQPValue::LongString(topic.into()));
    h.insert(AT.into(), AMQPValue::LongLongInt(at.timestamp_millis()));
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/cloudevents+json".into())
        .with_headers(h)
}

/// What herald put on an event: its place, topic and time.
pub struct Stamp {
    pub seq: u64,
    pub topic: String,
    pub at: DateTime<Utc>,
    /// Deliveries before this one (returned by closed channels).
    pub returned: u32,
}

pub fn stamp(props: &BasicProperties) -> Stamp {
    let at = get(props, AT)
        .and_then(as_u64)
        .and_then(|ms| DateTime::from_timestamp_millis(ms as i64))
        .unwrap_or_else(Utc::now);
    Stamp {
        seq: get(props, SEQ).and_then(as_u64).unwrap_or(0),
        topic: get(props, TOPIC).and_then(as_string).unwrap_or_default(),
        at,
        returned: get(props, DELIVERY_COUNT).and_then(as_u64).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
    }
}
