//! Service instances registered at run time, shared by every node on the
//! store: a registration or a deregistration is written to the store
//! first (it is the truth), then applied to this node's registry at once;
//! every node refreshes its registry from the store on a short interval,
//! and whenever told another node changed it ([`Engine::refresh_instances`]).
//! See `herald_gateway::registry::shared` for what a refresh keeps.
//!
//! This node's writes and refreshes take turns (one lock), so a refresh
//! that read the store before a registration was stored cannot undo it
//! here once it was applied.

use std::time::Duration;

use chrono::Utc;
use herald_gateway::registry::{Registered, RegisteredInstance};
use herald_http::problem::ApiError;
use serde_json::Value;

use crate::Engine;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Not a URL herald calls, or not where `[registry] allow` lets
    /// instances be: nothing was stored.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] herald_store::Error),
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Refused(detail) => ApiError::InvalidInput(detail),
            RegisterError::Store(e) => e.into(),
        }
    }
}

impl Engine {
    /// Registers an instance of `service` at `url` for `ttl`, or renews its
    /// heartbeat: stored for every node, and routed to here at once.
    pub async fn register_instance(
        &self,
        service: &str,
        id: &str,
        url: &str,
        ttl: Duration,
        metadata: Value,
    ) -> Result<Registered, RegisterError> {
        let services = self.services();
        services.check_registration(url).map_err(|e| RegisterError::Refused(e.to_string()))?;
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(ttl).map_err(|e| RegisterError::Refused(e.to_string()))?;
        let instance = RegisteredInstance {
            service: service.into(),
            id: id.into(),
            url: url.trim_end_matches('/').into(),
            metadata,
            expires_at: now + ttl,
            registered_at: now,
        };
        let _turn = self.0.registrations.lock().await;
        let registered = self.store().put_instance(&instance).await?;
        if let Err(e) = services.register(&instance) {
            // Stored: the next refresh tries again.
            tracing::warn!(service, error = %e, "a registered instance cannot be routed to yet");
        }
        Ok(registered)
    }

    /// Removes a registered instance for every node; whether it was there.
    pub async fn deregister_instance(&self, service: &str, id: &str) -> herald_store::Result<bool> {
        let _turn = self.0.registrations.lock().await;
        let stored = self.store().delete_instance(service, id).await?;
        let here = self.services().deregister(service, id);
        Ok(stored || here)
    }

    /// Brings this node's registry to the registrations stored now: the
    /// housekeeping loop calls it every second, and anything that learns
    /// another node changed the registry may call it at once.
    pub async fn refresh_instances(&self) -> herald_store::Result<herald_gateway::registry::Reconciled> {
        let _turn = self.0.registrations.lock().await;
        let stored = self.store().instances(Utc::now()).await?;
        Ok(self.services().reconcile(&stored))
    }
}
