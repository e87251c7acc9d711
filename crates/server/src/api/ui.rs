//! What a watching page reports: herald's clock, to set its own by, and
//! the lag it saw between an event's commit and showing it — the latency
//! a person perceives, exported as `herald_ui_commit_to_render_seconds`.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use herald_http::{auth::Caller, problem::ApiError};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{ArrayBuilder, ObjectBuilder, schema::Type};

use super::body::Posted;
use crate::state::AppState;

/// The most samples one report carries.
const MAX_SAMPLES: usize = 100;
/// Longer than this is not a lag but a page left in the background.
const MAX_LAG_MS: f64 = 3_600_000.0;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Clock {
    /// herald's time, in milliseconds since the epoch.
    pub now_ms: i64,
}

/// herald's clock. A page measures its offset from it (half the round
/// trip is the error) to tell how long after its commit it showed an event.
#[utoipa::path(get, path = "/v1/clock", tag = "ui", responses((status = 200, body = Clock)))]
pub async fn clock(_caller: Caller) -> Response {
    let mut r = Json(Clock { now_ms: chrono::Utc::now().timestamp_millis() }).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LagReport {
    /// From each event's commit (its `at`) to the page showing it, in
    /// milliseconds by herald's clock: 1-100 of them, each 0 to 3,600,000.
    #[schema(schema_with = lags)]
    pub lags_ms: Vec<f64>,
}

fn lags() -> utoipa::openapi::Array {
    let lag = ObjectBuilder::new().schema_type(Type::Number).minimum(Some(0.0)).maximum(Some(MAX_LAG_MS));
    ArrayBuilder::new().items(lag).min_items(Some(1)).max_items(Some(MAX_SAMPLES)).build()
}

/// Reports what a page saw. Any caller of the API may report; the values
/// are bounded, and only counted.
#[utoipa::path(post, path = "/v1/ui/lag", tag = "ui", request_body = LagReport,
    responses((status = 204, description = "counted"), (status = 400, body = herald_http::problem::Problem),
              (status = 415, body = herald_http::problem::Problem), (status = 422, body = herald_http::problem::Problem)))]
pub async fn lag(_caller: Caller, State(app): State<AppState>, posted: Posted) -> Result<StatusCode, ApiError> {
    let report: LagReport = posted.json()?;
    if report.lags_ms.is_empty() || report.lags_ms.len() > MAX_SAMPLES {
        return Err(ApiError::InvalidInput(format!("`lags_ms` holds 1 to {MAX_SAMPLES} samples")));
    }
    if let Some(bad) = report.lags_ms.iter().find(|l| !(0.0..=MAX_LAG_MS).contains(*l)) {
        return Err(ApiError::InvalidInput(format!("{bad} is not a lag: each is 0 to {MAX_LAG_MS} ms")));
    }
    let live = &app.engine.metrics().live;
    for l in report.lags_ms {
        live.rendered(Duration::from_secs_f64(l / 1000.0));
    }
    Ok(StatusCode::NO_CONTENT)
}
