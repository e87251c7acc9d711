//! The top floor: every API route, and the layers over them.

use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    response::IntoResponse,
    routing::{MethodRouter, get, post, put},
};
use herald_http::problem::{self, ApiError};
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

use crate::{
    api::{
        action, body, dead_letters, events, hardening, health, inbox, metrics, openapi, operations, page, services,
        steps, subscriptions, topics, ui, workflows,
    },
    state::AppState,
};

pub fn router(state: AppState) -> Router {
    let limit = state.limits.max_body_bytes;
    Router::new()
        .route("/", get(page::index))
        .route("/operator", get(page::operator))
        .route("/ui/{file}", get(page::asset))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics::scrape))
        .route("/v1/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/v1/workflows", get(workflows::list))
        .route("/v1/workflows/{name}", get(workflows::get))
        .route("/v1/workflows/{name}/operations", json(post(operations::start)))
        .route("/v1/operations", get(operations::list))
        .route("/v1/me/operations", get(operations::mine))
        .route("/v1/me/notifications", get(inbox::list))
        .route("/v1/me/notifications:read-all", json(post(inbox::read_all)))
        .route("/v1/me/notifications/stream", get(inbox::stream))
        .route("/v1/me/notifications/{id}", json(post(inbox::read_one)))
        .route("/v1/operations/{id}", actions(json(get(operations::get).post(operations::action)), "GET, HEAD"))
        .route("/v1/operations/{id}/events", get(events::stream))
        .route("/v1/operations/{id}/steps/{step}", json(post(steps::complete)))
        .route("/v1/services", get(services::list))
        .route("/v1/services/{name}/instances/{id}", json(put(services::register).delete(services::deregister)))
        .route("/v1/topics/{topic}/events", post(topics::publish))
        .route("/v1/subscriptions", get(subscriptions::list))
        .route(
            "/v1/subscriptions/{name}",
            actions(
                json(
                    get(subscriptions::get)
                        .put(subscriptions::put)
                        .delete(subscriptions::delete)
                        .post(subscriptions::action),
                ),
                "GET, HEAD, PUT, DELETE",
            ),
        )
        .route("/v1/clock", get(ui::clock))
        .route("/v1/ui/lag", json(post(ui::lag)))
        .route("/v1/dead-letters", get(dead_letters::list))
        .route("/v1/dead-letters:redrive", json(post(dead_letters::bulk)))
        .route(
            "/v1/dead-letters/{id}",
            actions(
                json(get(dead_letters::get).delete(dead_letters::delete).post(dead_letters::action)),
                "GET, HEAD, DELETE",
            ),
        )
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(action::post_only))
        .layer(axum::middleware::map_response(problem::ensure_problem))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(body::BodyLimit(limit)))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("a handler panicked".into()).into_response()))
        .layer(TraceLayer::new_for_http().make_span_with(span))
        .with_state(state)
}

/// POST and PUT of these routes take JSON only ([`body::json_only`]): a
/// route layer, so that a method a path does not take is still answered
/// 405, and a path herald does not have 404. Publishing has rules of its own.
fn json(methods: MethodRouter<AppState>) -> MethodRouter<AppState> {
    methods.route_layer(axum::middleware::from_fn(body::json_only))
}

/// A resource whose POST takes only its actions (`{name}:{verb}`), and the
/// methods it takes itself ([`action::resource`]).
fn actions(methods: MethodRouter<AppState>, allow: &'static str) -> MethodRouter<AppState> {
    // A 405 fallback of the route's own, under the layer: the router's
    // (`method_not_allowed_fallback`) would replace it, and go around it.
    let not_allowed = || async { ApiError::MethodNotAllowed };
    methods.fallback(not_allowed).layer(axum::middleware::from_fn_with_state(allow, action::resource))
}

/// A request's span: its method and path, never its query string, which
/// may carry a token (`?access_token=` on event streams) or personal data.
fn span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), version = ?req.version())
}

/// The last layer, over herald's routes and any merged beside them: the
/// headers every answer carries for browsers.
pub fn harden(router: Router) -> Router {
    router.layer(axum::middleware::map_response(hardening::headers))
}
