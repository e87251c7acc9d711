//! The service registry over HTTP: instances register and send heartbeats
//! (`PUT`, within their TTL), leave (`DELETE`), and anyone with a service
//! token sees every instance's health, circuit and recent latency. Only a
//! token that speaks for a service registers its instances, and only at
//! the addresses `[registry] allow` lists. Registrations are stored, so
//! every node on the store routes to them (`herald_engine::instances`);
//! what `GET` shows of health and circuits is this node's.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use herald_core::Span;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::Posted;
use crate::state::AppState;
use crate::{
    auth::{Caller, require_service, require_speaks_for},
    registry::{Registered, ServiceView},
};
use herald_http::problem::{ApiError, ApiResult, Problem};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The instance's base URL, e.g. `http://10.0.0.7:8080`.
    #[schema(pattern = "^https?://[^/?# ]+[^?# ]*$")]
    pub url: String,
    /// Gone unless renewed within this; default 30 s, 1 s to 1 h.
    #[schema(value_type = Option<String>, example = "30s")]
    pub ttl: Option<Span>,
    /// Any JSON, shown with the instance.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub metadata: Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceList {
    pub items: Vec<ServiceView>,
}

fn check_name(what: &str, name: &str) -> ApiResult<()> {
    if herald_core::workflow::valid_name(name) && !name.starts_with("herald.") {
        Ok(())
    } else {
        Err(ApiError::InvalidInput(format!("`{name}` is not a {what} name: 1-64 letters, digits, `-` or `_`")))
    }
}

/// Register an instance, or renew its heartbeat.
#[utoipa::path(put, path = "/v1/services/{name}/instances/{id}", tag = "services",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"),
           ("id" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description = "not beginning `config-`: those are the configured instances")),
    request_body = RegisterRequest,
    responses((status = 201, description = "registered, or changed: a new URL or new metadata"),
              (status = 200, description = "renewed"),
              (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn register(
    caller: Caller,
    State(app): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    posted: Posted,
) -> ApiResult<Response> {
    check_name("service", &name)?;
    check_name("instance", &id)?;
    if id.starts_with(herald_gateway::registry::CONFIGURED) {
        let reserved = herald_gateway::registry::CONFIGURED;
        return Err(ApiError::InvalidInput(format!(
            "`{id}`: ids that begin `{reserved}` name the instances written in the configuration"
        )));
    }
    require_speaks_for(&caller, &name)?;
    let req: RegisterRequest = posted.json()?;
    let ttl = req.ttl.map_or(Duration::from_secs(30), |t| t.0);
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&ttl) {
        return Err(ApiError::InvalidInput("`ttl` must be between 1 second and 1 hour".into()));
    }
    let registered = app.engine.register_instance(&name, &id, &req.url, ttl, req.metadata).await?;
    // A new URL or new metadata is a new instance, as a first registration is.
    let status = if registered == Registered::Renewed { StatusCode::OK } else { StatusCode::CREATED };
    Ok(status.into_response())
}

/// Deregister an instance (one registered at run time).
#[utoipa::path(delete, path = "/v1/services/{name}/instances/{id}", tag = "services",
    params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn deregister(
    caller: Caller,
    State(app): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_speaks_for(&caller, &name)?;
    if app.engine.deregister_instance(&name, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no registered instance {id} of service {name}")))
    }
}

/// Every service, with each instance's health, circuit and recent latency.
#[utoipa::path(get, path = "/v1/services", operation_id = "list_services", tag = "services", responses((status = 200, body = ServiceList)))]
pub async fn list(caller: Caller, State(app): State<AppState>) -> ApiResult<Json<ServiceList>> {
    require_service(&caller)?;
    Ok(Json(ServiceList { items: app.engine.services().views() }))
}
