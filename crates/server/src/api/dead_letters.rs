//! Dead letters, for a person: what ran out of attempts (subscription
//! events, held steps, failed compensations, notifications), why, and the
//! way back: redrive (optionally with an edited payload) or drop.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use herald_broker::CloudEvent;
use herald_core::{Command, OperationId, notify::Channel, task::Phase};
use herald_store::{DeadLetter, DeadLetterFilter, DeadLetterKind, TransitionResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{body::Posted, operations::rejected, query::Params};
use crate::state::AppState;
use herald_http::auth::{Caller, require_admin};
use herald_http::problem::{ApiError, ApiResult, Problem};

/// Dead letters redriven by one bulk call, at most.
const BULK: usize = 500;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[param(value_type = Option<DeadLetterKind>)]
    kind: Option<String>,
    subscription: Option<String>,
    workflow: Option<String>,
    #[param(pattern = "^op_[0-9a-fA-F]{32}$")]
    operation: Option<String>,
    /// `next_cursor` of the page before
    #[param(pattern = "^-?[0-9]{1,18}$")]
    cursor: Option<String>,
    /// 1-200, default 50
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetterList {
    /// Newest first.
    pub items: Vec<DeadLetter>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// Replaces the dead letter's payload (the event, or the notification);
    /// a step is always tried again as it is.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRedriveRequest {
    #[schema(value_type = Option<DeadLetterKind>)]
    pub kind: Option<String>,
    pub subscription: Option<String>,
    pub workflow: Option<String>,
    #[schema(pattern = "^op_[0-9a-fA-F]{32}$")]
    pub operation: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BulkRedriveResponse {
    pub redriven: usize,
    /// Those that could not be, and why (they stay).
    pub failed: Vec<RedriveFailure>,
    /// More match than one call redrives: call again.
    pub more: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RedriveFailure {
    pub id: i64,
    pub detail: String,
}

fn filter(
    kind: Option<String>,
    subscription: Option<String>,
    workflow: Option<String>,
    operation: Option<String>,
) -> ApiResult<DeadLetterFilter> {
    let kind = kind
        .map(|k| {
            DeadLetterKind::parse(&k).ok_or_else(|| {
                ApiError::InvalidInput(format!("`{k}` is not a kind: event, step, compensation, webhook or email"))
            })
        })
        .transpose()?;
    let operation = operation
        .map(|o| o.parse::<OperationId>().map_err(|_| ApiError::InvalidInput(format!("`{o}` is not an operation id"))))
        .transpose()?;
    Ok(DeadLetterFilter { kind, subscription, workflow, operation, before: None, limit: 50 })
}

/// Dead letters, newest first, filtered and paged.
#[utoipa::path(get, path = "/v1/dead-letters", operation_id = "list_dead_letters", tag = "admin", params(ListParams),
    responses((status = 200, body = DeadLetterList), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    caller: Caller,
    State(app): State<AppState>,
    Params(p): Params<ListParams>,
) -> ApiResult<Json<DeadLetterList>> {
    require_admin(&caller)?;
    let mut f = filter(p.kind, p.subscription, p.workflow, p.operation)?;
    f.before = p
        .cursor
        .map(|c| c.parse::<i64>().map_err(|_| ApiError::InvalidInput("`cursor` is not one this server gave".into())))
        .transpose()?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidInput("`limit` must be between 1 and 200".into()));
    }
    f.limit = limit + 1;
    let items = app.engine.store().dead_letters(f).await?;
    let more = items.len() > limit;
    let items: Vec<DeadLetter> = items.into_iter().take(limit).collect();
    let next_cursor = if more { items.last().map(|d| d.id.to_string()) } else { None };
    Ok(Json(DeadLetterList { items, next_cursor }))
}

async fn find(app: &AppState, raw: &str) -> ApiResult<DeadLetter> {
    let id = raw.parse::<i64>().map_err(|_| ApiError::NotFound(format!("no dead letter {raw}")))?;
    app.engine.store().dead_letter_by_id(id).await?.ok_or_else(|| ApiError::NotFound(format!("no dead letter {id}")))
}

/// One dead letter, with every attempt's error.
#[utoipa::path(get, path = "/v1/dead-letters/{id}", operation_id = "get_dead_letter", tag = "admin", params(("id" = i64, Path)),
    responses((status = 200, body = DeadLetter), (status = 404, body = Problem)))]
pub async fn get(caller: Caller, State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<DeadLetter>> {
    require_admin(&caller)?;
    Ok(Json(find(&app, &id).await?))
}

/// Drop a dead letter: a person has dealt with it.
#[utoipa::path(delete, path = "/v1/dead-letters/{id}", operation_id = "delete_dead_letter", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(caller: Caller, State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    require_admin(&caller)?;
    let letter = find(&app, &id).await?;
    app.engine.store().delete_dead_letter(letter.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/dead-letters/{id}:redrive`: deliver the event again (to its
/// subscription only), send the notification again, or try the step (or
/// compensation) again, resuming its operation.
#[utoipa::path(post, path = "/v1/dead-letters/{id}:redrive", operation_id = "redrive_dead_letter", tag = "admin", params(("id" = i64, Path)),
    request_body(content = Option<RedriveRequest>, content_type = "application/json"),
    responses((status = 204, description = "redriven: the dead letter is gone"), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn action(
    caller: Caller,
    State(app): State<AppState>,
    Path(target): Path<String>,
    posted: Posted,
) -> ApiResult<StatusCode> {
    require_admin(&caller)?;
    let id = super::action::only("/v1/dead-letters", &target, "redrive")?;
    let letter = find(&app, id).await?;
    let req: RedriveRequest = posted.json_or_default()?;
    redrive(&app, letter, req.payload).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/dead-letters:redrive`: redrive every dead letter matching the
/// filter (up to 500 a call, oldest first).
#[utoipa::path(post, path = "/v1/dead-letters:redrive", operation_id = "redrive_dead_letters", tag = "admin", request_body = BulkRedriveRequest,
    responses((status = 200, body = BulkRedriveResponse), (status = 422, body = Problem)))]
pub async fn bulk(caller: Caller, State(app): State<AppState>, posted: Posted) -> ApiResult<Json<BulkRedriveResponse>> {
    require_admin(&caller)?;
    let req: BulkRedriveRequest = posted.json()?;
    let mut f = filter(req.kind, req.subscription, req.workflow, req.operation)?;
    f.limit = BULK + 1;
    let mut letters = app.engine.store().dead_letters(f).await?;
    let more = letters.len() > BULK;
    letters.truncate(BULK);
    letters.reverse();
    let (mut redriven, mut failed) = (0, Vec::new());
    for letter in letters {
        let id = letter.id;
        match redrive(&app, letter, None).await {
            Ok(()) => redriven += 1,
            Err(e @ ApiError::Internal(_)) => return Err(e),
            Err(e) => failed.push(RedriveFailure { id, detail: e.to_string() }),
        }
    }
    Ok(Json(BulkRedriveResponse { redriven, failed, more }))
}

async fn redrive(app: &AppState, letter: DeadLetter, payload: Option<Value>) -> ApiResult<()> {
    let gone = || ApiError::Conflict(format!("dead letter {} was dealt with meanwhile", letter.id));
    match letter.kind {
        DeadLetterKind::Event => {
            let sub = letter.subscription.clone().unwrap_or_default();
            let event = CloudEvent::from_json(payload.unwrap_or(letter.payload.clone()))
                .map_err(|e| ApiError::InvalidEvent(format!("the edited payload is not a valid event: {e}")))?;
            if app.engine.broker().subscription(&sub).await?.is_none() {
                return Err(ApiError::Conflict(format!("subscription `{sub}` no longer exists")));
            }
            // Gone first: two redrives at once deliver once.
            if !app.engine.store().delete_dead_letter(letter.id).await? {
                return Err(gone());
            }
            app.engine.broker().redeliver(&sub, event).await?;
        }
        DeadLetterKind::Webhook | DeadLetterKind::Email => {
            let channel = if letter.kind == DeadLetterKind::Email { Channel::Email } else { Channel::Webhook };
            let payload = payload.unwrap_or(letter.payload.clone());
            if channel == Channel::Email && payload["to"] == "(erased)" {
                return Err(ApiError::Conflict("the address was erased: this email cannot be sent again".into()));
            }
            let op = letter
                .operation_id
                .clone()
                .ok_or_else(|| ApiError::Internal("a notification without its operation".into()))?;
            if !app.engine.redrive_delivery(letter.id, &op, channel, payload).await? {
                return Err(gone());
            }
        }
        DeadLetterKind::Step | DeadLetterKind::Compensation => {
            if payload.is_some() {
                return Err(ApiError::InvalidInput(
                    "a step is tried again with its operation's input: send no payload".into(),
                ));
            }
            let (Some(op), Some(step)) = (letter.operation_id.clone(), letter.step.clone()) else {
                return Err(ApiError::Internal("a step's dead letter without its step".into()));
            };
            let phase = if letter.kind == DeadLetterKind::Step { Phase::Forward } else { Phase::Compensation };
            match app.engine.apply(&op, None, Command::Redrive { step, phase }).await? {
                TransitionResult::Applied(_) => {}
                TransitionResult::Missing => {
                    return Err(ApiError::Conflict(format!("operation {op} no longer exists")));
                }
                TransitionResult::Rejected(r) => return Err(rejected(r)),
            }
        }
    }
    Ok(())
}
