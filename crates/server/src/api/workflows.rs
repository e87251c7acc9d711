//! The workflows this server runs, for clients and the web UI.

use axum::{
    Json,
    extract::{Path, State},
};

use super::views::WorkflowSummary;
use crate::state::AppState;
use herald_http::problem::{ApiError, ApiResult, Problem};

fn summary(wf: &herald_core::Workflow) -> WorkflowSummary {
    WorkflowSummary {
        name: wf.name.clone(),
        version: wf.version,
        label: wf.label.clone(),
        description: wf.description.clone(),
        definition: wf.source.clone(),
    }
}

#[utoipa::path(get, path = "/v1/workflows", operation_id = "list_workflows", tag = "workflows", responses((status = 200, body = Vec<WorkflowSummary>)))]
pub async fn list(_caller: herald_http::auth::Caller, State(app): State<AppState>) -> Json<Vec<WorkflowSummary>> {
    Json(app.engine.workflows().all_latest().iter().map(|w| summary(w)).collect())
}

#[utoipa::path(get, path = "/v1/workflows/{name}", operation_id = "get_workflow", tag = "workflows", params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")),
    responses((status = 200, body = WorkflowSummary), (status = 404, body = Problem)))]
pub async fn get(
    _caller: herald_http::auth::Caller,
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<WorkflowSummary>> {
    let wf = app.engine.workflows().latest(&name).ok_or(ApiError::UnknownWorkflow(name))?;
    Ok(Json(summary(&wf)))
}
