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
                (name.clone(), Service { instances, next: AtomicUsize::new(0), timeout: c.timeout.map(|t| t.0) })
            })
            .collect();
        Services { by_name }
    }

    pub fn contains(&self, service: &str) -> bool {
        self.by_name.contains_key(service)
    }

    /// The base URL for the next call to `service`, and the service's cap on call time.
    pub fn pick(&self, service: &str) -> Option<(&str, Option<Duration>)> {
        let s = self.by_name.get(service)?;
        if s.instances.is_empty() {
            return None;
        }
        let i = s.next.fetch_add(1, Ordering::Relaxed) % s.instances.len();
        Some((s.instances[i].as_str(), s.timeout))
    }
}
