//! Is herald up (`/healthz`), and taking work (`/readyz`: not while it
//! stops, nor while its store does not answer)?

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use herald_http::problem::ApiError;

use crate::state::AppState;

/// How long `/readyz` waits for the store's answer.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn live() -> &'static str {
    "ok"
}

pub async fn ready(State(app): State<AppState>) -> Response {
    if app.engine.stopping().is_cancelled() {
        return ApiError::Unavailable.into_response();
    }
    // Ready only while the store answers (one cheap read), and soon: a load
    // balancer's probe gives up after a few seconds, and a database that
    // is away would otherwise hold it for the pool's whole wait.
    match tokio::time::timeout(READY_WITHIN, app.engine.store().next_due()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return ApiError::from(e).into_response(),
        Err(_) => return ApiError::StoreUnavailable("no answer within 2 s".into()).into_response(),
    }
    "ready".into_response()
}
