//! The services steps call, by name, from the configuration. Round-robin
//! over a service's instances; health, balancing policies and circuit
//! breaking grow here with the gateway.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use crate::config::ServiceConfig;

pub struct Service {
    instances: Vec<String>,
    next: AtomicUsize,
    pub timeout: Option<Duration>,
    /// Signs every request herald sends the service (`Herald-Signature`).
    secret: Option<Vec<u8>>,
}

/// Where the next request to a service goes, and how.
pub struct Target<'a> {
    pub base: &'a str,
    /// The service's cap on a call's time.
    pub timeout: Option<Duration>,
    pub secret: Option<&'a [u8]>,
}

impl Target<'_> {
    /// The `Herald-Signature` value for `body`, when the service has a secret.
    pub fn signature(&self, body: &[u8]) -> Option<String> {
        self.secret.map(|s| herald_core::signature::sign(s, chrono::Utc::now().timestamp(), body))
    }
}

#[derive(Default)]
pub struct Services {
    by_name: HashMap<String, Service>,
}

impl Services {
    pub fn new<'a>(config: impl IntoIterator<Item = (&'a String, &'a ServiceConfig)>) -> Self {
        let by_name = config
            .into_iter()
            .map(|(name, c)| {
                let instances = c.instances.iter().map(|u| u.trim_end_matches('/').to_string()).collect();
                let secret = c.secret.as_ref().map(|s| s.clone().into_bytes());
                (
                    name.clone(),
                    Service { instances, next: AtomicUsize::new(0), timeout: c.timeout.map(|t| t.0), secret },
                )
            })
            .collect();
        Services { by_name }
    }

    pub fn contains(&self, service: &str) -> bool {
        self.by_name.contains_key(service)
    }

    /// The instance the next request to `service` goes to.
    pub fn pick(&self, service: &str) -> Option<Target<'_>> {
        let s = self.by_name.get(service)?;
        if s.instances.is_empty() {
            return None;
        }
        let i = s.next.fetch_add(1, Ordering::Relaxed) % s.instances.len();
        Some(Target { base: s.instances[i].as_str(), timeout: s.timeout, secret: s.secret.as_deref() })
    }
}
