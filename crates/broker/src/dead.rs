//! herald's one dead-letter list, as a broker on a server of its own sees
//! it. The embedded broker writes its dead letters in the store's own
//! transactions; NATS and RabbitMQ hand theirs to a [`DeadLetters`], which
//! in herald is the store too. So every backend's dead letters are listed,
//! counted and redriven through the same API.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::retry::AttemptError;

use crate::{CloudEvent, Result};

/// An event a subscription gave up on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadEvent {
    pub subscription: String,
    pub topic: String,
    pub attempts: u32,
    /// Every attempt's error, oldest first.
    pub errors: Vec<AttemptError>,
    pub event: CloudEvent,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait DeadLetters: Send + Sync + 'static {
    /// Keeps the letter; durable when it returns.
    async fn add(&self, letter: DeadEvent) -> Result<()>;

    /// How many letters the subscription has.
    async fn count(&self, subscription: &str) -> Result<u64>;

    /// The subscription's letters, oldest first (for checks and tools; the
    /// API pages through the store itself).
    async fn list(&self, subscription: &str) -> Result<Vec<DeadEvent>>;
}
