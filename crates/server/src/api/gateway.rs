//! `ANY /gw/{service}/{path…}` as the listener hands it over: the gateway
//! answers, unless the request takes an `async` route, which starts an
//! operation as `POST /v1/workflows/{name}/operations` does.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Request},
    response::{IntoResponse, Response},
};
use herald_gateway::{Client, Handled};
use herald_http::{auth::Caller, problem::ApiError};

use super::{body::Posted, operations};
use crate::state::AppState;

pub async fn handle(app: AppState, client: Arc<Client>, req: Request) -> Response {
    match herald_gateway::handle(app.gateway.clone(), client, req).await {
        Handled::Answered(resp) => resp,
        Handled::Operation(workflow, req) => {
            start(app, workflow, req).await.unwrap_or_else(IntoResponse::into_response)
        }
    }
}

async fn start(app: AppState, workflow: String, req: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &app).await?;
    let limit = app.limits.max_body_bytes;
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes")))?;
    operations::begin(&caller, &app, &workflow, &Posted { headers: parts.headers, body }).await
}
