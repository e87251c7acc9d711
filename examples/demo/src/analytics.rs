//! Analytics: not a step of any workflow, but a subscriber. herald pushes
//! it the `orders` topic (`place-order` publishes `OrderPlaced`) and the
//! `inventory` topic (the inventory's outbox), and it counts orders and
//! stock movements once per event, however often an event is delivered.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::State,
    routing::{get, post},
};
use herald_sdk::step::{PushedEvent, StepReply};
use serde::Serialize;
use serde_json::json;

use crate::lock;

/// Where herald pushes the events (see [`subscriptions`](crate::subscriptions)).
pub const EVENTS_PATH: &str = "/analytics/events";

#[derive(Debug, Default, Clone, Serialize)]
struct Counts {
    /// `OrderPlaced` events.
    orders: u64,
    /// `ItemsReserved` events.
    reservations: u64,
    /// `ItemsReleased` events.
    releases: u64,
}

#[derive(Debug, Default)]
struct Analytics {
    /// Counts and the delivery keys already counted, under one lock so a
    /// duplicate delivered concurrently is never counted twice.
    state: Mutex<(Counts, HashSet<String>)>,
}

pub fn router() -> Router {
    Router::new()
        .route(EVENTS_PATH, post(receive))
        .route("/analytics", get(counts))
        .with_state(Arc::new(Analytics::default()))
}

/// Counts a pushed event; a redelivery (same key) is acknowledged again
/// without counting. Types it does not count are acknowledged too.
async fn receive(State(analytics): State<Arc<Analytics>>, pushed: PushedEvent) -> StepReply {
    let mut state = lock(&analytics.state);
    let (counts, seen) = &mut *state;
    if !seen.insert(pushed.key.clone()) {
        return StepReply::done(json!({ "counted": false, "duplicate": true }));
    }
    let counter = match pushed.event.kind.as_str() {
        "OrderPlaced" => Some(&mut counts.orders),
        "ItemsReserved" => Some(&mut counts.reservations),
        "ItemsReleased" => Some(&mut counts.releases),
        _ => None,
    };
    let counted = counter.map(|n| *n += 1).is_some();
    tracing::info!(key = %pushed.key, kind = %pushed.event.kind, counted, "analytics event");
    StepReply::done(json!({ "counted": counted }))
}

/// `GET /analytics`: `{ "orders": n, "reservations": n, "releases": n }`.
async fn counts(State(analytics): State<Arc<Analytics>>) -> Json<Counts> {
    Json(lock(&analytics.state).0.clone())
}
