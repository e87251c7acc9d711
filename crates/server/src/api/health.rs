//! Is herald up (`/healthz`), and taking work (`/readyz`: not while it
//! stops, nor while its store does not answer)?

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use herald_http::problem::ApiError;

use crate::state::AppState;

pub async fn live() -> &'static str {
    "ok"
}

pub async fn ready(State(app): State<AppState>) -> Response {
    if app.engine.stopping().is_cancelled() {
        return ApiError::Unavailable.into_response();
    }
    // Ready only while the store answers (one cheap read).
    if let Err(e) = app.engine.store().next_due().await {
        return ApiError::from(e).into_response();
    }
    "ready".into_response()
}
