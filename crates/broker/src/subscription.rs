//! Subscriptions: which events of a topic go where, and how hard herald
//! tries. Written in `herald.toml` or sent to `PUT /v1/subscriptions/{name}`
//! in one schema ([`RawSubscription`]), parsed once into a [`Subscription`].

use std::time::Duration;

use herald_core::{Span, retry::RetryPolicy, workflow::raw::RawRetry};
use serde::{Deserialize, Serialize};

use crate::CloudEvent;

/// Names of subscriptions herald makes for itself (the `await` steps'
/// listeners) start with this; nobody else may use it.
pub const INTERNAL_PREFIX: &str = "herald.";

/// A pushed event is the dispatcher's this much longer than the call may
/// take, so a crash mid-call hands it to the next run.
pub const PUSH_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How long herald's own listeners (`await` steps) hold an event.
pub const INTERNAL_LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub name: String,
    pub topic: String,
    pub filter: Filter,
    pub delivery: Delivery,
    pub retry: RetryPolicy,
    /// How long a pulled event is its puller's before it goes out again.
    pub lease: Duration,
    /// The definition as written, kept and shown back.
    pub raw: RawSubscription,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Consumers ask: `:pull`, then `:ack` or `:nack`.
    Pull,
    /// herald POSTs each event (or up to `batch` at once) to a registered
    /// service; 2xx acknowledges.
    Push { service: String, path: String, timeout: Duration, max_in_flight: usize, batch: usize },
    /// herald consumes the events itself (events that `await` steps wait for).
    Internal,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Exact event types; empty lets every type through.
    pub types: Vec<String>,
    /// The event's subject, exactly, or as a prefix when it ends in `*`.
    pub subject: Option<String>,
}

impl Filter {
    pub fn matches(&self, e: &CloudEvent) -> bool {
        let type_ok = self.types.is_empty() || self.types.contains(&e.kind);
        let subject_ok = match (&self.subject, &e.subject) {
            (None, _) => true,
            (Some(want), Some(got)) => match want.strip_suffix('*') {
                Some(prefix) => got.starts_with(prefix),
                None => want == got,
            },
            (Some(_), None) => false,
        };
        type_ok && subject_ok
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSubscription {
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<RawFilter>,
    /// Where herald delivers; without it, consumers pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<RawPush>,
    /// Defaults: 8 attempts from 500 ms, doubling, at most a minute apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RawRetry>,
    /// How long a pulled event is its puller's; default 30 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "30s")]
    pub lease: Option<Span>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPush {
    /// A service of the registry: herald never calls a raw URL.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    pub service: String,
    #[schema(pattern = "^/[^\\s]*$")]
    pub path: String,
    /// One delivery's limit; default 10 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "10s")]
    pub timeout: Option<Span>,
    /// Deliveries in flight at once; default 64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 4096)]
    pub max_in_flight: Option<usize>,
    /// Up to this many events in one request, as a JSON array
    /// (`application/cloudevents-batch+json`); default 1: one event a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub batch: Option<usize>,
}

/// A definition that does not hold together, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subscription `{name}`, field `{field}`: {message}")]
pub struct SubscriptionError {
    pub name: String,
    pub field: String,
    pub message: String,
}

/// Topic and subscription names: 1-128 letters, digits, `.`, `-` or `_`,
/// starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    herald_core::workflow::valid_topic(name)
}

impl Subscription {
    /// A subscription someone defined; names starting with
    /// [`INTERNAL_PREFIX`] are refused.
    pub fn parse(name: &str, raw: RawSubscription) -> Result<Self, SubscriptionError> {
        let err = |field: &str, message: String| SubscriptionError {
            name: name.to_string(),
            field: field.to_string(),
            message,
        };
        if !valid_name(name) {
            return Err(err("name", "1-128 letters, digits, `.`, `-` or `_`, starting with a letter or digit".into()));
        }
        if name.starts_with(INTERNAL_PREFIX) {
            return Err(err("name", format!("names starting with `{INTERNAL_PREFIX}` are herald's own")));
        }
        let delivery = match &raw.push {
            None => Delivery::Pull,
            Some(p) => {
                if !herald_core::workflow::valid_name(&p.service) {
                    return Err(err("push.service", format!("`{}` is not a service name", p.service)));
                }
                if !p.path.starts_with('/') || p.path.contains("://") || p.path.contains(char::is_whitespace) {
                    return Err(err("push.path", format!("`{}` must be a path starting with `/`", p.path)));
                }
                let timeout = p.timeout.map_or(Duration::from_secs(10), |t| t.0);
                if timeout.is_zero() || timeout > Duration::from_secs(600) {
                    return Err(err("push.timeout", "must be more than zero and at most 10 minutes".into()));
                }
                let max_in_flight = p.max_in_flight.unwrap_or(64);
                if !(1..=4096).contains(&max_in_flight) {
                    return Err(err("push.max_in_flight", "must be between 1 and 4096".into()));
                }
                let batch = p.batch.unwrap_or(1);
                if !(1..=1000).contains(&batch) {
                    return Err(err("push.batch", "must be between 1 and 1000".into()));
                }
                Delivery::Push { service: p.service.clone(), path: p.path.clone(), timeout, max_in_flight, batch }
            }
        };
        Self::build(name, raw, delivery).map_err(|(field, message)| err(&field, message))
    }

    /// herald's own listener of `topic` for `await` steps.
    pub fn internal(topic: &str, types: Vec<String>) -> Self {
        let raw = RawSubscription {
            topic: topic.to_string(),
            filter: Some(RawFilter { types, subject: None }),
            push: None,
            retry: None,
            lease: None,
        };
        let name = format!("{INTERNAL_PREFIX}await.{topic}");
        Self::build(&name, raw, Delivery::Internal).expect("herald's own subscriptions are well formed")
    }

    fn build(name: &str, raw: RawSubscription, delivery: Delivery) -> Result<Self, (String, String)> {
        if !valid_name(&raw.topic) {
            return Err(("topic".into(), format!("`{}` is not a topic name", raw.topic)));
        }
        let filter = match &raw.filter {
            None => Filter::default(),
            Some(f) => {
                if f.types.iter().any(|t| t.is_empty()) {
                    return Err(("filter.types".into(), "an empty type matches nothing".into()));
                }
                Filter { types: f.types.clone(), subject: f.subject.clone() }
            }
        };
        let given = raw.retry.clone().unwrap_or_default();
        let initial = given.initial.unwrap_or(Span::from_millis(500));
        let merged = RawRetry {
            attempts: given.attempts.or(Some(8)),
            initial: Some(initial),
            max: Some(given.max.unwrap_or(Span::from_millis(60_000).max(initial))),
            multiplier: given.multiplier,
            jitter: given.jitter,
        };
        let retry = RetryPolicy::from_raw(merged).map_err(|(f, m)| (format!("retry.{f}"), m))?;
        let lease = raw.lease.map_or(Duration::from_secs(30), |l| l.0);
        if lease < Duration::from_secs(1) || lease > Duration::from_secs(12 * 3600) {
            return Err(("lease".into(), "must be between 1 second and 12 hours".into()));
        }
        Ok(Subscription { name: name.to_string(), topic: raw.topic.clone(), filter, delivery, retry, lease, raw })
    }

    /// How long herald's dispatcher holds each event it delivers: the push
    /// timeout and [`PUSH_LEASE_MARGIN`], or [`INTERNAL_LEASE`]; `None` for
    /// a pull subscription, whose pullers name their lease (`lease` by
    /// default). A broker may make this its default lease for the
    /// subscription, so the dispatcher's pulls need not move each lease.
    pub fn dispatch_lease(&self) -> Option<Duration> {
        match &self.delivery {
            Delivery::Push { timeout, .. } => Some(*timeout + PUSH_LEASE_MARGIN),
            Delivery::Internal => Some(INTERNAL_LEASE),
            Delivery::Pull => None,
        }
    }

    pub fn is_internal(&self) -> bool {
        self.delivery == Delivery::Internal
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(v: serde_json::Value) -> RawSubscription {
        serde_json::from_value(v).unwrap()
    }

    fn event(kind: &str, subject: Option<&str>) -> CloudEvent {
        let mut v = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": kind});
        if let Some(s) = subject {
            v["subject"] = json!(s);
        }
        CloudEvent::from_json(v).unwrap()
    }

    #[test]
    fn filters_match_types_exactly_and_subjects_by_prefix() {
        let s = Subscription::parse(
            "billing",
            raw(json!({"topic": "orders", "filter": {"types": ["OrderPlaced"], "subject": "eu/*"}})),
        )
        .unwrap();
        assert!(s.filter.matches(&event("OrderPlaced", Some("eu/42"))));
        assert!(!s.filter.matches(&event("OrderPlaced", Some("us/42"))));
        assert!(!s.filter.matches(&event("OrderShipped", Some("eu/42"))));
        assert!(!s.filter.matches(&event("OrderPlaced", None)));
    }

    #[test]
    fn defaults_and_bad_fields_are_named() {
        let s =
            Subscription::parse("a", raw(json!({"topic": "t", "push": {"service": "svc", "path": "/in"}}))).unwrap();
        assert_eq!(s.retry.attempts, 8);
        assert_eq!(s.lease, Duration::from_secs(30));
        assert!(matches!(s.delivery, Delivery::Push { max_in_flight: 64, batch: 1, .. }));
        for (name, v, field) in [
            ("herald.mine", json!({"topic": "t"}), "name"),
            ("ok", json!({"topic": "no spaces"}), "topic"),
            ("ok", json!({"topic": "t", "push": {"service": "svc", "path": "http://evil/"}}), "push.path"),
            ("ok", json!({"topic": "t", "retry": {"attempts": 0}}), "retry.attempts"),
            ("ok", json!({"topic": "t", "lease": "10ms"}), "lease"),
        ] {
            assert_eq!(Subscription::parse(name, raw(v)).unwrap_err().field, field);
        }
    }
}
