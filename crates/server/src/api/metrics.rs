//! `/metrics`: what herald counts, in the OpenMetrics text Prometheus
//! scrapes. Read with a metrics token (`role = "metrics"`, good for
//! nothing else) or an admin's.

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use herald_http::{auth::bearer, problem::ApiError};
use herald_metrics::{ServiceState, Snapshot, Subscription};

use herald_gateway::registry::Health;

use crate::state::AppState;

/// How long a scrape waits for the store's counts: Prometheus's own
/// scrape timeout is 10 s by default.
const STORE_WITHIN: Duration = Duration::from_secs(5);

/// Subscriptions whose broker stats are asked for at once.
const STATS_AT_ONCE: usize = 8;

pub async fn scrape(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    app.auth.may_scrape(bearer(authorization))?;
    let snapshot = snapshot(&app).await?;
    let body = app.engine.metrics().render(&snapshot);
    Ok(([(header::CONTENT_TYPE, herald_metrics::CONTENT_TYPE)], body).into_response())
}

/// The gauges of this scrape: the store's counts (the scrape fails without
/// them) and each subscription's depth (one the broker cannot answer for is
/// left out, and logged).
async fn snapshot(app: &AppState) -> Result<Snapshot, ApiError> {
    let now = chrono::Utc::now();
    let gauges = match tokio::time::timeout(STORE_WITHIN, app.engine.store().gauges(now)).await {
        Ok(read) => read?,
        Err(_) => return Err(ApiError::StoreUnavailable("no answer within 5 s".into())),
    };
    let broker = app.engine.broker().clone();
    let subscriptions = broker.subscriptions().await.map_err(ApiError::from)?;
    let subscriptions = futures::stream::iter(subscriptions)
        .map(|sub| {
            let broker = broker.clone();
            async move {
                match broker.stats(&sub.name).await {
                    Ok(s) => Some(Subscription {
                        name: sub.name,
                        pending: s.pending,
                        in_flight: s.in_flight,
                        lag_seconds: s.lag_ms as f64 / 1000.0,
                    }),
                    Err(e) => {
                        tracing::debug!(subscription = %sub.name, error = %e, "no stats for a scrape");
                        None
                    }
                }
            }
        })
        .buffer_unordered(STATS_AT_ONCE)
        .filter_map(|s| async move { s })
        .collect()
        .await;
    Ok(Snapshot {
        delayed: gauges.delayed,
        needing_attention: gauges.needing_attention,
        due_tasks: gauges.due_tasks,
        oldest_due_seconds: gauges.oldest_due.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0),
        dead_letters: gauges.dead_letters,
        subscriptions,
        services: services(app),
    })
}

/// The registry's services as `GET /v1/services` shows them.
fn services(app: &AppState) -> Vec<ServiceState> {
    app.engine
        .services()
        .views()
        .into_iter()
        .map(|s| ServiceState {
            circuit: s.circuit.state,
            limit: s.limit,
            in_flight: s.in_flight,
            waiting: s.waiting,
            instances: s
                .instances
                .into_iter()
                .map(|i| (i.id, i.health != Health::Down && i.ejected_for_ms.is_none()))
                .collect(),
            name: s.name,
        })
        .collect()
}
