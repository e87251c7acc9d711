//! Service instances registered at run time (`PUT
//! /v1/services/{name}/instances/{id}`): what the store keeps of each, so
//! every node on the store routes to it until its TTL passes without a
//! heartbeat, and what a registration is once compared with the one
//! before it.

use serde_json::Value;

use crate::Time;

/// One registered instance, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredInstance {
    pub service: String,
    pub id: String,
    /// Base URL, no trailing slash.
    pub url: String,
    pub metadata: Value,
    /// Gone when this passes without a heartbeat.
    pub expires_at: Time,
    /// When this registration began: a heartbeat keeps it, a new URL or
    /// new metadata starts a new one.
    pub registered_at: Time,
}

/// What a registration was to the one stored before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// None was there (or it had expired).
    Created,
    /// A heartbeat: the same URL and metadata, a later expiry.
    Renewed,
    /// The same id at another URL or with other metadata: a new instance.
    Changed,
}

impl RegisteredInstance {
    /// Whether `other` is the same instance: the same URL and metadata.
    pub fn same_as(&self, other: &RegisteredInstance) -> bool {
        self.url == other.url && self.metadata == other.metadata
    }

    /// What this registration, made at `self.registered_at`, is to `old`.
    pub fn against(&self, old: Option<&RegisteredInstance>) -> Registered {
        match old {
            Some(old) if old.expires_at > self.registered_at => {
                if self.same_as(old) {
                    Registered::Renewed
                } else {
                    Registered::Changed
                }
            }
            _ => Registered::Created,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use serde_json::json;

    use super::*;

    fn at(ms: i64, url: &str, zone: &str) -> RegisteredInstance {
        let t = Utc.timestamp_millis_opt(ms).unwrap();
        RegisteredInstance {
            service: "shop".into(),
            id: "a".into(),
            url: url.into(),
            metadata: json!({ "zone": zone }),
            expires_at: t + Duration::seconds(10),
            registered_at: t,
        }
    }

    #[test]
    fn a_registration_is_new_renewed_or_changed_against_the_stored_one() {
        let old = at(0, "http://a", "eu");
        assert_eq!(at(1000, "http://a", "eu").against(None), Registered::Created);
        assert_eq!(at(1000, "http://a", "eu").against(Some(&old)), Registered::Renewed);
        assert_eq!(at(1000, "http://b", "eu").against(Some(&old)), Registered::Changed);
        assert_eq!(at(1000, "http://a", "us").against(Some(&old)), Registered::Changed);
        assert_eq!(at(10_000, "http://a", "eu").against(Some(&old)), Registered::Created, "it had expired");
    }
}
