//! Instances registered at run time, shared by every node on one store.
//!
//! The store holds each registration (`herald_store::Store::put_instance`)
//! and is the truth; each node's registry follows it. The node that took a
//! registration applies it at once ([`Registry::register`],
//! [`Registry::deregister`]); every node refreshes from the store on a
//! short interval, or when told another node changed it, and
//! [`Registry::reconcile`]s: instances that appeared are added, ones that
//! vanished or expired are removed, and one whose URL or metadata changed
//! is a new instance.
//!
//! What the calls to an instance taught this node — its health checks,
//! outlier ejection, latency and counts — stays with it while it is the
//! same instance (same id, URL and metadata), across refreshes. A
//! service's circuit, concurrency limit and retry budget, and the
//! gateway's rate limits, are each node's own: the store shares only
//! which instances there are. Instances from the configuration file are
//! never touched here. Routing reads only memory, never the store.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use herald_core::{Time, instance::RegisteredInstance};

use super::{Instance, Registry, Service, ServiceConfig, settings};

/// What a [`Registry::reconcile`] changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Instances that appeared (or came back changed).
    pub added: usize,
    /// Instances that vanished, expired or changed.
    pub removed: usize,
}

impl Registry {
    /// May an instance be registered at `url`: a URL herald can call, where
    /// `[registry] allow` lets instances be. Checked before anything is
    /// stored.
    pub fn check_registration(&self, url: &str) -> anyhow::Result<()> {
        settings::check_url(url).map_err(anyhow::Error::msg)?;
        self.allow.check(url).map_err(anyhow::Error::msg)
    }

    /// Applies one registration as stored, at once: added, renewed or
    /// replaced, and the rest of its service left as it is. A service not
    /// in the configuration is created with the default settings.
    pub fn register(&self, stored: &RegisteredInstance) -> anyhow::Result<Reconciled> {
        let svc = self.service_for(&stored.service)?;
        Ok(merge(&svc, &[stored], Merge::One))
    }

    /// Removes a registered instance here; answers whether it was here.
    /// (Instances from the configuration stay.)
    pub fn deregister(&self, service: &str, id: &str) -> bool {
        let Some(svc) = self.service(service) else { return false };
        let mut instances = svc.instances.write().expect("instances");
        let before = instances.len();
        instances.retain(|i| i.id != id || !i.registered());
        instances.len() != before
    }

    /// Makes every service's registered instances the `stored` ones (all
    /// unexpired registrations on the store, of every service): see the
    /// module's documentation for what is kept.
    pub fn reconcile(&self, stored: &[RegisteredInstance]) -> Reconciled {
        let mut by_service: HashMap<&str, Vec<&RegisteredInstance>> = HashMap::new();
        for r in stored {
            by_service.entry(r.service.as_str()).or_default().push(r);
        }
        for name in by_service.keys() {
            if let Err(e) = self.service_for(name) {
                tracing::warn!(service = %name, error = %e, "a registered service cannot be added");
            }
        }
        let mut total = Reconciled::default();
        for svc in self.all() {
            let of_it = by_service.get(svc.name.as_str()).map_or(&[][..], Vec::as_slice);
            let r = merge(&svc, of_it, Merge::All);
            total.added += r.added;
            total.removed += r.removed;
        }
        total
    }

    /// Drops registered instances whose expiry (as last stored) has
    /// passed: for when the store cannot be read, so an instance without a
    /// heartbeat still goes.
    pub fn sweep(&self, now: Instant) {
        for svc in self.all() {
            let mut instances = svc.instances.write().expect("instances");
            instances.retain(|i| i.expires_at.lock().expect("ttl").is_none_or(|t| t > now));
        }
    }

    fn service_for(&self, name: &str) -> anyhow::Result<Arc<Service>> {
        if let Some(svc) = self.service(name) {
            return Ok(svc);
        }
        self.add(name, &ServiceConfig::new(vec![]))?;
        Ok(self.service(name).expect("just added"))
    }
}

impl Instance {
    /// Registered at run time, not from the configuration.
    fn registered(&self) -> bool {
        self.expires_at.lock().expect("ttl").is_some()
    }

    fn same_as(&self, r: &RegisteredInstance) -> bool {
        self.base == r.url.trim_end_matches('/') && self.metadata == r.metadata
    }

    fn of(r: &RegisteredInstance, now: (Instant, Time)) -> Instance {
        Instance::new(r.id.clone(), r.url.clone(), r.metadata.clone(), Some(until(r, now)))
    }
}

/// The wall-clock expiry on this node's monotonic clock.
fn until(r: &RegisteredInstance, (instant, wall): (Instant, Time)) -> Instant {
    instant + (r.expires_at - wall).to_std().unwrap_or(Duration::ZERO)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// The given registrations are some of the service's: others stay.
    One,
    /// They are all of them: others go.
    All,
}

/// Brings `svc`'s registered instances to `stored`. Expiries move on in
/// place; the instance list is written only when who is in it changes.
fn merge(svc: &Service, stored: &[&RegisteredInstance], how: Merge) -> Reconciled {
    let now = (Instant::now(), Utc::now());
    if plan(&svc.instances.read().expect("instances"), stored, how, now).is_none() {
        return Reconciled::default();
    }
    let mut instances = svc.instances.write().expect("instances");
    let Some((next, changed)) = plan(&instances, stored, how, now) else { return Reconciled::default() };
    *instances = next;
    drop(instances);
    if changed.added > 0 {
        // Work waiting for an instance may go now.
        svc.turn.notify_waiters();
    }
    changed
}

/// The service's instances once `stored` is applied, or `None` if they stay
/// the same ones (their expiries set as stored).
fn plan(
    current: &[Arc<Instance>],
    stored: &[&RegisteredInstance],
    how: Merge,
    now: (Instant, Time),
) -> Option<(Vec<Arc<Instance>>, Reconciled)> {
    let mut next = Vec::with_capacity(current.len() + stored.len());
    let mut changed = Reconciled::default();
    let mut kept = vec![false; stored.len()];
    for i in current {
        if !i.registered() {
            next.push(i.clone());
            continue;
        }
        match stored.iter().position(|r| r.id == i.id) {
            Some(at) if i.same_as(stored[at]) && !kept[at] => {
                *i.expires_at.lock().expect("ttl") = Some(until(stored[at], now));
                kept[at] = true;
                next.push(i.clone());
            }
            None if how == Merge::One => next.push(i.clone()),
            _ => changed.removed += 1,
        }
    }
    for (r, _) in stored.iter().zip(&kept).filter(|(_, kept)| !**kept) {
        next.push(Arc::new(Instance::of(r, now)));
        changed.added += 1;
    }
    (changed != Reconciled::default()).then_some((next, changed))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use chrono::Duration as Wall;
    use futures::FutureExt;
    use serde_json::json;

    use super::*;
    use crate::registry::allow::RegistryConfig;

    /// A registry whose `shop` has one instance from the configuration.
    fn registry() -> Registry {
        tls();
        let config = ServiceConfig::new(vec!["http://10.0.0.1".into()]);
        Registry::from_config([(&"shop".to_string(), &config)], &RegistryConfig::default(), Default::default()).unwrap()
    }

    /// The TLS provider the services' clients are built with, as the server installs it.
    fn tls() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    fn stored(service: &str, id: &str, url: &str, ttl_s: i64) -> RegisteredInstance {
        let now = Utc::now();
        RegisteredInstance {
            service: service.into(),
            id: id.into(),
            url: url.into(),
            metadata: json!({ "zone": "eu" }),
            expires_at: now + Wall::seconds(ttl_s),
            registered_at: now,
        }
    }

    fn ids(r: &Registry, service: &str) -> Vec<String> {
        r.service(service).map(|s| s.instances().iter().map(|i| i.id.clone()).collect()).unwrap_or_default()
    }

    fn instance(r: &Registry, service: &str, id: &str) -> Arc<Instance> {
        r.service(service).unwrap().instances().into_iter().find(|i| i.id == id).unwrap()
    }

    #[test]
    fn a_refresh_adds_what_appeared_and_removes_what_vanished_leaving_configured_instances() {
        let r = registry();
        let first =
            r.reconcile(&[stored("shop", "a", "http://10.0.0.2", 30), stored("cart", "c", "http://10.0.0.3", 30)]);
        assert_eq!(first, Reconciled { added: 2, removed: 0 });
        assert_eq!(ids(&r, "shop"), ["config-0", "a"]);
        assert_eq!(ids(&r, "cart"), ["c"], "a service only registrations name is made");

        let second = r.reconcile(&[stored("shop", "b", "http://10.0.0.4", 30)]);

        assert_eq!(second, Reconciled { added: 1, removed: 2 });
        assert_eq!(ids(&r, "shop"), ["config-0", "b"]);
        assert!(ids(&r, "cart").is_empty(), "the service stays, without instances");
        assert_eq!(r.reconcile(&[]), Reconciled { added: 0, removed: 1 });
        assert_eq!(ids(&r, "shop"), ["config-0"], "the configuration's instance is never touched");
    }

    #[test]
    fn an_unchanged_instance_keeps_what_this_node_learned_and_a_changed_one_starts_afresh() {
        let r = registry();
        r.reconcile(&[stored("shop", "a", "http://10.0.0.2/", 30), stored("shop", "b", "http://10.0.0.3", 30)]);
        let (a, b) = (instance(&r, "shop", "a"), instance(&r, "shop", "b"));
        a.failures.store(3, Ordering::Relaxed);
        a.checked(false, 1, 1);
        let expiry = a.expires_at.lock().unwrap().unwrap();

        let moved =
            RegisteredInstance { metadata: json!({ "zone": "us" }), ..stored("shop", "b", "http://10.0.0.3", 30) };
        let r2 = r.reconcile(&[stored("shop", "a", "http://10.0.0.2", 60), moved]);

        assert_eq!(r2, Reconciled { added: 1, removed: 1 }, "b changed: one out, one in");
        let (a2, b2) = (instance(&r, "shop", "a"), instance(&r, "shop", "b"));
        assert!(Arc::ptr_eq(&a, &a2), "the same instance, its state kept");
        assert_eq!((a2.failures.load(Ordering::Relaxed), a2.health()), (3, super::super::Health::Down));
        assert!(a2.expires_at.lock().unwrap().unwrap() > expiry, "its expiry moved on as stored");
        assert!(!Arc::ptr_eq(&b, &b2), "new metadata: a new instance");
        assert_eq!(b2.metadata["zone"], "us");
        assert_eq!(r.reconcile(&[stored("shop", "a", "http://10.0.0.2", 60)]).added, 0);
    }

    #[test]
    fn one_registration_applies_at_once_beside_the_others_and_deregistering_spares_the_configured() {
        let r = registry();
        r.register(&stored("shop", "a", "http://10.0.0.2", 30)).unwrap();
        r.register(&stored("shop", "b", "http://10.0.0.3", 30)).unwrap();
        let a = instance(&r, "shop", "a");
        assert_eq!(r.register(&stored("shop", "a", "http://10.0.0.2", 60)).unwrap(), Reconciled::default());
        assert!(Arc::ptr_eq(&a, &instance(&r, "shop", "a")), "a heartbeat keeps the instance");
        assert_eq!(ids(&r, "shop"), ["config-0", "a", "b"]);

        assert!(r.deregister("shop", "a"));
        assert!(!r.deregister("shop", "a"));
        assert!(!r.deregister("shop", "config-0"), "not a registered instance");
        assert_eq!(ids(&r, "shop"), ["config-0", "b"]);
    }

    #[test]
    fn an_expiry_is_the_stored_one_and_a_sweep_drops_it_when_the_store_cannot_be_read() {
        let r = registry();
        r.reconcile(&[stored("shop", "a", "http://10.0.0.2", 30), stored("shop", "b", "http://10.0.0.3", 2)]);
        let left = instance(&r, "shop", "b").expires_at.lock().unwrap().unwrap() - Instant::now();
        assert!(left > Duration::from_secs(1) && left <= Duration::from_secs(2), "{left:?}");

        r.sweep(Instant::now() + Duration::from_secs(5));

        assert_eq!(ids(&r, "shop"), ["config-0", "a"]);
    }

    #[test]
    fn an_instance_that_appears_wakes_the_work_waiting_for_one() {
        tls();
        let r = Registry::default();
        r.reconcile(&[stored("shop", "a", "http://10.0.0.2", 30)]);
        let svc = r.service("shop").unwrap();
        let mut woken = std::pin::pin!(svc.turn.notified());
        woken.as_mut().enable();
        r.reconcile(&[stored("shop", "a", "http://10.0.0.2", 30)]);
        assert!(woken.as_mut().now_or_never().is_none(), "nothing appeared");

        r.reconcile(&[stored("shop", "a", "http://10.0.0.2", 30), stored("shop", "b", "http://10.0.0.3", 30)]);

        assert!(woken.now_or_never().is_some());
    }
}
