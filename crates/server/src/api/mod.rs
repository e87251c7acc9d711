//! The HTTP surface (DESIGN.md "HTTP surface (v1)").
//!
//! - [`operations`] — start, get, list, cancel.
//! - [`events`] — a timeline as Server-Sent Events; `follow` — following any numbered sequence live.
//! - `inbox` — the end user's notifications, and their live stream.
//! - [`steps`] — callbacks completing steps that answered 202.
//! - [`workflows`] — the definitions this server runs.
//! - `topics` — publishing; `subscriptions` — defining and consuming them.
//! - `dead_letters` — what ran out of attempts, and redriving it.
//! - `services` — the service registry: registration, heartbeats, health.
//! - [`problem`] — the one table of error answers; [`body`] — body parsing,
//!   and POST/PUT taken as JSON only; `action` — `{name}:{verb}` actions;
//!   `query` — query parameters.
//! - [`hardening`] — the headers every answer carries for browsers; `page` —
//!   the demo page and its files.
//! - [`streams`] — how many event streams each end user holds open.
//! - [`openapi`] — the OpenAPI document, generated from the handlers.

mod action;
mod body;
mod caller;
mod dead_letters;
pub mod events;
mod follow;
pub mod gateway;
pub mod hardening;
mod inbox;
pub mod openapi;
mod operations;
mod page;

mod query;
mod services;
mod steps;
pub mod streams;
mod subscriptions;
mod topics;
mod views;
mod workflows;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

use crate::{config::Limits, engine::Engine};
use herald_http::problem::{self, ApiError};
pub(crate) use operations::parse_id;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub gateway: std::sync::Arc<crate::gateway::Gateway>,
    pub dispatcher: crate::dispatch::Dispatcher,
    pub limits: Limits,
    /// Limits on published events.
    pub events: crate::config::BrokerConfig,
    pub auth: std::sync::Arc<herald_http::auth::Auth>,
    /// Without credentials: which hosts and origins are answered.
    pub guard: std::sync::Arc<herald_http::guard::Guard>,
    /// End users' open event streams.
    pub streams: std::sync::Arc<streams::Streams>,
}

pub fn router(state: AppState) -> Router {
    let limit = state.limits.max_body_bytes;
    Router::new()
        .route("/", get(page::index))
        .route("/ui/app.js", get(page::script))
        .route("/ui/app.css", get(page::styles))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/v1/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/v1/workflows", get(workflows::list))
        .route("/v1/workflows/{name}", get(workflows::get))
        .route("/v1/workflows/{name}/operations", post(operations::start))
        .route("/v1/operations", get(operations::list))
        .route("/v1/me/operations", get(operations::mine))
        .route("/v1/me/notifications", get(inbox::list))
        .route("/v1/me/notifications:read-all", post(inbox::read_all))
        .route("/v1/me/notifications/stream", get(inbox::stream))
        .route("/v1/me/notifications/{id}", post(inbox::read_one))
        .route("/v1/operations/{id}", get(operations::get).post(operations::action))
        .route("/v1/operations/{id}/events", get(events::stream))
        .route("/v1/operations/{id}/steps/{step}", post(steps::complete))
        .route("/v1/services", get(services::list))
        .route("/v1/services/{name}/instances/{id}", put(services::register).delete(services::deregister))
        .route("/v1/topics/{topic}/events", post(topics::publish))
        .route("/v1/subscriptions", get(subscriptions::list))
        .route(
            "/v1/subscriptions/{name}",
            get(subscriptions::get).put(subscriptions::put).delete(subscriptions::delete).post(subscriptions::action),
        )
        .route("/v1/dead-letters", get(dead_letters::list))
        .route("/v1/dead-letters:redrive", post(dead_letters::bulk))
        .route("/v1/dead-letters/{id}", get(dead_letters::get).delete(dead_letters::delete).post(dead_letters::action))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(body::json_only))
        .layer(axum::middleware::map_response(problem::ensure_problem))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(body::BodyLimit(limit)))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("a handler panicked".into()).into_response()))
        .layer(TraceLayer::new_for_http().make_span_with(span))
        .with_state(state)
}

/// A request's span: its method and path, never its query string, which
/// may carry a token (`?access_token=` on event streams) or personal data.
fn span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), version = ?req.version())
}

async fn ready(State(app): State<AppState>) -> Response {
    if app.engine.stopping().is_cancelled() {
        return ApiError::Unavailable.into_response();
    }
    "ready".into_response()
}

/// The last layer, over herald's routes and any merged beside them: the
/// headers every answer carries for browsers.
pub fn harden(router: Router) -> Router {
    router.layer(axum::middleware::map_response(hardening::headers))
}
