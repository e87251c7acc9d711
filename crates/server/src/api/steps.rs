//! `POST /v1/operations/{id}/steps/{step}:complete`: a service that
//! answered 202 reports its result, with the token it was given. The
//! token names its attempt: once a later attempt was made (or is due),
//! or the token expired, it is refused and changes nothing.

use axum::{
    extract::{Path, State},
    http::header,
    response::Response,
};
use herald_core::{Command, machine::Outcome};
use herald_store::TransitionResult;

use crate::engine::tokens::Refused;

use super::{
    body::Posted,
    operations::{parse_id, rejected},
    views::{CompleteRequest, OperationView},
};
use crate::state::AppState;
use herald_http::problem::{ApiError, ApiResult, Problem};

#[utoipa::path(post, path = "/v1/operations/{id}/steps/{step}:complete", tag = "steps",
    params(("id" = String, Path), ("step" = String, Path),
           ("Authorization" = String, Header, description = "`Bearer <token>` from the step call's `callback.token`")),
    request_body = CompleteRequest,
    responses((status = 200, body = OperationView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn complete(
    State(app): State<AppState>,
    Path((id, target)): Path<(String, String)>,
    posted: Posted,
) -> ApiResult<Response> {
    let step = super::action::only("steps", &target, "complete")?;
    let id = parse_id(&id)?;
    let token = posted
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::Unauthorized("send the step's callback token as `Authorization: Bearer <token>`".into())
        })?;
    let attempt = match app.engine.tokens().verify(&id.to_string(), step, token.trim()) {
        Ok(attempt) => attempt,
        Err(Refused::Invalid) => return Err(ApiError::Unauthorized("the token does not open this step".into())),
        Err(Refused::Expired) => return Err(ApiError::StaleCallback("the token has expired".into())),
    };
    let req: CompleteRequest = posted.json()?;
    let outcome = match (req.result, req.error) {
        (_, Some(error)) if error.len() > 2000 => {
            return Err(ApiError::InvalidInput("`error` is longer than 2000 characters".into()));
        }
        (None, Some(error)) => {
            Outcome::Failed { error, retryable: req.retryable, maybe_applied: true, retry_after: None }
        }
        (result, None) => Outcome::Done(result.unwrap_or(serde_json::Value::Null)),
        (Some(_), Some(_)) => return Err(ApiError::InvalidInput("send `result` or `error`, not both".into())),
    };
    let cmd = Command::Callback { step: step.to_string(), attempt, outcome, sample: rand::random() };
    match app.engine.apply(&id, None, cmd).await? {
        TransitionResult::Applied(a) => {
            let timeline = super::operations::timeline(&app, &a.op).await?;
            Ok(axum::response::IntoResponse::into_response(axum::Json(OperationView {
                operation: (*a.op).clone(),
                timeline,
            })))
        }
        TransitionResult::Missing => Err(ApiError::NotFound(format!("no operation {id}"))),
        TransitionResult::Rejected(r) => Err(rejected(r)),
    }
}
