//! The workflows this server runs, for clients and the web UI.

use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
};

use super::views::WorkflowSummary;
use crate::state::AppState;
use herald_http::problem::{ApiError, ApiResult, Problem};

/// The workflow as a reader is shown it: its label in their language.
fn summary(wf: &herald_core::Workflow, wanted: &[String]) -> WorkflowSummary {
    let lang = herald_core::lang::choose(wanted, &wf.languages);
    WorkflowSummary {
        name: wf.name.clone(),
        version: wf.version,
        label: wf.label.get(lang, wf.default_language()).to_string(),
        languages: wf.languages.clone(),
        description: wf.description.as_ref().map(|d| d.get(lang, wf.default_language()).to_string()),
        definition: wf.source.clone(),
    }
}

#[utoipa::path(get, path = "/v1/workflows", operation_id = "list_workflows", tag = "workflows", responses((status = 200, body = Vec<WorkflowSummary>)))]
pub async fn list(
    caller: herald_http::auth::Caller,
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Json<Vec<WorkflowSummary>> {
    let wanted = super::operations::languages(&caller, &headers);
    Json(app.engine.workflows().all_latest().iter().map(|w| summary(w, &wanted)).collect())
}

#[utoipa::path(get, path = "/v1/workflows/{name}", operation_id = "get_workflow", tag = "workflows", params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")),
    responses((status = 200, body = WorkflowSummary), (status = 404, body = Problem)))]
pub async fn get(
    caller: herald_http::auth::Caller,
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<WorkflowSummary>> {
    let wf = app.engine.workflows().latest(&name).ok_or(ApiError::UnknownWorkflow(name))?;
    Ok(Json(summary(&wf, &super::operations::languages(&caller, &headers))))
}
