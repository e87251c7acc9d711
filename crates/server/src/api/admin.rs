//! Admin views: what ran out of attempts and waits for a person.

use axum::{Json, extract::State};
use herald_store::DeadLetter;

use super::{
    AppState,
    problem::{ApiResult, Problem},
};
use crate::auth::{Caller, require_admin};

/// Dead letters, newest first (the last 200).
#[utoipa::path(get, path = "/v1/dead-letters", tag = "admin",
    responses((status = 200, body = Vec<DeadLetter>), (status = 403, body = Problem)))]
pub async fn dead_letters(caller: Caller, State(app): State<AppState>) -> ApiResult<Json<Vec<DeadLetter>>> {
    require_admin(&caller)?;
    let filter = herald_store::DeadLetterFilter { limit: 200, ..Default::default() };
    Ok(Json(app.engine.store().dead_letters(filter).await?))
}
