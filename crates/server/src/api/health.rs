//! Is herald up (`/healthz`), and taking work (`/readyz`)?

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
    "ready".into_response()
}
