//! The subscriptions herald runs with: those of the configuration, those
//! made through the API (kept by the broker), and herald's own listeners
//! for the topics `await` steps wait on.

use std::collections::BTreeMap;

use herald_broker::{
    Broker, Delivery, RawSubscription, Subscription, SubscriptionError, subscription::INTERNAL_PREFIX,
};

use herald_gateway::registry::Registry;

use crate::workflows::Workflows;

/// A subscription as someone defined it, checked: its fields, and that a
/// push subscription names a registered service (herald never calls a raw URL).
pub fn parse(name: &str, raw: RawSubscription, services: &Registry) -> Result<Subscription, SubscriptionError> {
    let sub = Subscription::parse(name, raw)?;
    if let Delivery::Push { service, .. } = &sub.delivery
        && !services.contains(service)
    {
        return Err(SubscriptionError {
            name: name.to_string(),
            field: "push.service".into(),
            message: format!("service `{service}` is not registered (see [services])"),
        });
    }
    Ok(sub)
}

/// Puts the configured subscriptions and herald's own listeners in place,
/// and drops listeners no workflow needs any more.
pub async fn install(
    configured: &BTreeMap<String, RawSubscription>,
    services: &Registry,
    broker: &dyn Broker,
    workflows: &Workflows,
) -> anyhow::Result<()> {
    for (name, raw) in configured {
        let sub = parse(name, raw.clone(), services)?;
        broker.put_subscription(&sub).await?;
    }
    let awaited = workflows.awaited();
    for (topic, kinds) in &awaited {
        broker.put_subscription(&Subscription::internal(topic, kinds.iter().cloned().collect())).await?;
    }
    for sub in broker.subscriptions().await? {
        if sub.name.starts_with(INTERNAL_PREFIX) && !awaited.contains_key(&sub.topic) {
            broker.delete_subscription(&sub.name).await?;
        }
    }
    Ok(())
}
