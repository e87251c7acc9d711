//! Starting, reading, listing and cancelling operations.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use herald_core::{Command, OpStatus, Operation, OperationId, Rejection, workflow::ConcurrencyKey};
use herald_http::auth::{Caller, require_service};
use herald_store::{Flagged, ListQuery, TransitionResult};
use serde::Deserialize;
use serde_json::Value;

use super::{
    body::Posted,
    query::Params,
    views::{CancelRequest, OperationList, OperationRef, OperationView, ResolveRequest},
};
use crate::engine::{
    notify::hub::Live,
    start::{StartRequest, Started},
};
use crate::state::AppState;
use herald_http::problem::{ApiError, ApiResult, Problem};

/// Start an operation of a workflow. The body is the operation's input.
#[utoipa::path(post, path = "/v1/workflows/{name}/operations", operation_id = "start_operation", tag = "operations",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description = "workflow name"),
           ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, description = "retries with the same key and body return the same operation"),
           ("Prefer" = Option<String>, Header, description = "`wait=N`: answer 200 with the finished operation if it ends within N seconds; `return=minimal`: answer with its id and status only (`OperationRef`)"),
           ("Herald-Subject" = Option<String>, Header, min_length = 1, max_length = 255, description = "who the operation is about; overrides the workflow's `subject` pointer")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 202, body = OperationView, description = "accepted and durable"),
              (status = 200, body = OperationView, description = "finished within `Prefer: wait`"),
              (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn start(
    caller: Caller,
    State(app): State<AppState>,
    Path(name): Path<String>,
    posted: Posted,
) -> ApiResult<Response> {
    begin(&caller, &app, &name, &posted).await
}

/// Reads a start request and hands it to the engine: the API's route and
/// the gateway's `async` routes.
pub async fn begin(caller: &Caller, app: &AppState, workflow: &str, posted: &Posted) -> ApiResult<Response> {
    let headers = &posted.headers;
    require_service(caller)?;
    // An unknown workflow is named before a body that is not JSON.
    if app.engine.workflows().latest(workflow).is_none() {
        return Err(ApiError::UnknownWorkflow(workflow.to_string()));
    }
    let input: Value = posted.json()?;
    let req = StartRequest {
        workflow,
        input,
        subject: header_text(headers, "herald-subject")?,
        idempotency_key: header_text(headers, "idempotency-key")?,
        body: &posted.body,
        languages: languages(caller, headers),
        trace: super::trace::caller(headers),
    };
    let prefer = Prefer::read(headers, app.limits.max_wait_seconds);
    let reader = Reader { caller, wanted: &languages(caller, headers) };
    match app.engine.start(req).await? {
        Started::Created(a) => respond(app, &reader, (*a.op).clone(), Some(a.events), prefer).await,
        Started::Existing(op) => respond(app, &reader, *op, None, prefer).await,
    }
}

/// The languages the caller reads, best first: an end user's `lang`
/// claim, then `Accept-Language` (a service passes on its user's).
pub fn languages(caller: &Caller, headers: &HeaderMap) -> Vec<String> {
    let header = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    caller.lang().map(str::to_string).into_iter().chain(accept_language::parse(header)).collect()
}

/// 202 with `Location`, or 200 if the operation ended within `Prefer: wait`;
/// the whole operation, or with `Prefer: return=minimal` its id and status.
async fn respond(
    app: &AppState,
    reader: &Reader<'_>,
    op: Operation,
    events: Option<Vec<herald_core::Event>>,
    prefer: Prefer,
) -> ApiResult<Response> {
    let id = op.id.clone();
    let op = match prefer.wait {
        Some(secs) if !op.is_final() => wait_final(app, &id, Duration::from_secs(secs)).await?,
        _ => op,
    };
    let status = if op.is_final() && prefer.wait.is_some() { StatusCode::OK } else { StatusCode::ACCEPTED };
    let mut resp = if prefer.minimal {
        let body = OperationRef { id: op.id, workflow: op.workflow, status: op.status };
        (status, Json(body)).into_response()
    } else {
        let mut timeline = match events {
            Some(e) if prefer.wait.is_none() && e.first().is_some_and(|e| e.seq == 1) => e,
            _ => timeline(app, &op).await?,
        };
        let operation = shown(app, reader, op, &mut timeline);
        (status, Json(OperationView { operation, timeline })).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_str(&format!("/v1/operations/{id}")).expect("ids are ASCII"));
    if let Some(applied) = prefer.applied() {
        h.insert("preference-applied", HeaderValue::from_str(&applied).expect("ASCII"));
    }
    Ok(resp)
}

/// Waits until the operation is final or the time is up; answers its state then.
pub async fn wait_final(app: &AppState, id: &OperationId, limit: Duration) -> ApiResult<Operation> {
    let hub = app.engine.hub();
    let mut rx = hub.subscribe(id);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let op = app.engine.store().get(id).await?.ok_or_else(|| ApiError::NotFound(format!("no operation {id}")))?;
        if op.is_final() {
            drop(rx);
            hub.release(id);
            return Ok(op);
        }
        // Any event (or a lag, or the channel closing) means: look again.
        let stopping = app.engine.stopping();
        // Time up, or the server stopping, ends the wait with what is known.
        let woke = loop {
            tokio::select! {
                r = tokio::time::timeout_at(deadline, rx.recv()) => match r {
                    Err(_) => break false,
                    Ok(Ok(Live::Item(e))) if !e.kind.is_final() => continue,
                    Ok(_) => break true,
                },
                _ = stopping.cancelled() => break false,
            }
        };
        if !woke {
            drop(rx);
            hub.release(id);
            return app.engine.store().get(id).await?.ok_or_else(|| ApiError::NotFound(format!("no operation {id}")));
        }
        rx = hub.subscribe(id);
    }
}

/// The preferences (RFC 7240) a start honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Prefer {
    /// `wait=N`, capped by the server's limit.
    wait: Option<u64>,
    /// `return=minimal`.
    minimal: bool,
}

impl Prefer {
    fn read(headers: &HeaderMap, max_wait: u64) -> Self {
        let mut prefer = Prefer::default();
        let pairs =
            headers.get_all("prefer").into_iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split([',', ';']));
        for pair in pairs {
            let Some((k, v)) = pair.trim().split_once('=') else { continue };
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k.eq_ignore_ascii_case("wait") && prefer.wait.is_none() {
                prefer.wait = v.parse::<u64>().ok().map(|n| n.min(max_wait));
            } else if k.eq_ignore_ascii_case("return") {
                prefer.minimal = v.eq_ignore_ascii_case("minimal");
            }
        }
        prefer
    }

    /// The `Preference-Applied` value.
    fn applied(self) -> Option<String> {
        let parts: Vec<String> =
            [self.wait.map(|s| format!("wait={s}")), self.minimal.then(|| "return=minimal".into())]
                .into_iter()
                .flatten()
                .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(name) else { return Ok(None) };
    let s = v.to_str().map_err(|_| ApiError::InvalidInput(format!("`{name}` must be visible ASCII")))?.trim();
    if s.is_empty() || s.len() > 255 {
        return Err(ApiError::InvalidInput(format!("`{name}` must be 1-255 characters")));
    }
    Ok(Some(s.to_string()))
}

pub fn parse_id(raw: &str) -> ApiResult<OperationId> {
    raw.parse().map_err(|_| ApiError::NotFound(format!("no operation {raw}")))
}

/// An operation with its steps, final outcome and timeline.
#[utoipa::path(get, path = "/v1/operations/{id}", operation_id = "get_operation", tag = "operations",
    params(("id" = String, Path, pattern = "^op_[0-9a-fA-F]{32}$"), ("If-None-Match" = Option<String>, Header)),
    responses((status = 200, body = OperationView, headers(("ETag" = String))), (status = 304), (status = 404, body = Problem)))]
pub async fn get(
    caller: Caller,
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let op = visible(&app, &caller, &id).await?;
    let reader = Reader { caller: &caller, wanted: &languages(&caller, &headers) };
    // One representation per language: its own tag.
    let etag = match reader.lang(&app, &op) {
        Some(lang) if lang != op.lang => format!("\"{}-{lang}\"", op.last_seq),
        _ => format!("\"{}\"", op.last_seq),
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let mut timeline = timeline(&app, &op).await?;
    let operation = shown(&app, &reader, op, &mut timeline);
    let vary = (header::VARY, HeaderValue::from_static("accept-language, authorization"));
    Ok((
        [(header::ETAG, HeaderValue::from_str(&etag).expect("ASCII")), vary],
        Json(OperationView { operation, timeline }),
    )
        .into_response())
}

/// `op`'s timeline as far as `op` itself: read after it, the timeline may
/// have moved on, and a view must not say two moments at once.
pub async fn timeline(app: &AppState, op: &Operation) -> ApiResult<Vec<herald_core::Event>> {
    let mut events = app.engine.store().events(&op.id, 0, usize::MAX).await?;
    events.retain(|e| e.seq <= op.last_seq);
    Ok(events)
}

/// Whether the operations a workflow's operation collides with are its
/// end user's own: its concurrency key is their subject.
pub fn own_key(wf: &herald_core::Workflow) -> bool {
    wf.concurrency.as_ref().is_some_and(|c| c.key == ConcurrencyKey::Subject)
}

/// Who reads an operation, and the languages they read.
pub struct Reader<'a> {
    pub caller: &'a Caller,
    /// Best first: an end user's `lang` claim, then `Accept-Language`.
    pub wanted: &'a [String],
}

impl Reader<'_> {
    /// The language `op` is told to this reader in: of those its workflow
    /// offers, the one they read best; `None` when they named none.
    fn lang(&self, app: &AppState, op: &Operation) -> Option<String> {
        if self.wanted.is_empty() {
            return None;
        }
        let wf = app.engine.workflows().version(&op.workflow, op.version)?;
        Some(herald_core::lang::choose(self.wanted, &wf.languages).to_string())
    }
}

/// The operation as `reader` is shown it: in their language, whole to
/// services and admins, its end user's projection to an end user; its
/// `timeline` told in the same language.
pub fn shown(app: &AppState, reader: &Reader, op: Operation, timeline: &mut [herald_core::Event]) -> Operation {
    let Some(wf) = app.engine.workflows().version(&op.workflow, op.version) else { return op };
    let op = match reader.lang(app, &op) {
        Some(lang) => herald_core::retell::retell(op, timeline, &wf, &lang),
        None => op,
    };
    match reader.caller {
        Caller::User(..) => {
            let own_key = own_key(&wf);
            timeline.iter_mut().for_each(|e| e.for_end_user(own_key));
            op.for_end_user(&wf.visible_input, own_key)
        }
        _ => op,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    subject: Option<String>,
    workflow: Option<String>,
    #[param(value_type = Option<OpStatus>)]
    status: Option<String>,
    /// `next_cursor` of the page before
    #[param(pattern = "^op_[0-9a-fA-F]{32}$")]
    cursor: Option<String>,
    /// 1-200, default 50
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
    /// `late` (past the expected time, not finished) or `needs_attention`
    #[param(pattern = "^(late|needs_attention)$")]
    flag: Option<String>,
}

/// Operations, newest first, with stable cursor pagination.
#[utoipa::path(get, path = "/v1/operations", operation_id = "list_operations", tag = "operations", params(ListParams),
    responses((status = 200, body = OperationList), (status = 422, body = Problem)))]
pub async fn list(
    caller: Caller,
    State(app): State<AppState>,
    Params(mut p): Params<ListParams>,
    headers: HeaderMap,
) -> ApiResult<Json<OperationList>> {
    // An end user lists their own operations, whatever they asked for.
    if let Some(sub) = caller.own_subject() {
        p.subject = Some(sub.to_string());
    }
    let status = p
        .status
        .as_deref()
        .map(|s| OpStatus::parse(s).ok_or_else(|| ApiError::InvalidInput(format!("`{s}` is not an operation status"))))
        .transpose()?;
    let before = p
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<OperationId>().map_err(|_| ApiError::InvalidInput("`cursor` is not one this server gave".into()))
        })
        .transpose()?;
    let flagged = p
        .flag
        .as_deref()
        .map(|f| {
            Flagged::parse(f)
                .ok_or_else(|| ApiError::InvalidInput(format!("`{f}` is not a flag: late or needs_attention")))
        })
        .transpose()?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidInput("`limit` must be between 1 and 200".into()));
    }
    let items = app
        .engine
        .store()
        .list(ListQuery { subject: p.subject, workflow: p.workflow, status, before, flagged, limit: limit + 1 })
        .await?;
    let more = items.len() > limit;
    let reader = Reader { caller: &caller, wanted: &languages(&caller, &headers) };
    let items: Vec<Operation> = items.into_iter().take(limit).map(|op| shown(&app, &reader, op, &mut [])).collect();
    let next_cursor = if more { items.last().map(|o| o.id.to_string()) } else { None };
    Ok(Json(OperationList { items, next_cursor }))
}

/// The end user's own operations, newest first (the token's `sub`).
#[utoipa::path(get, path = "/v1/me/operations", operation_id = "list_my_operations", tag = "operations", params(ListParams),
    responses((status = 200, body = OperationList), (status = 403, body = Problem, description = "not an end user's token"),
              (status = 422, body = Problem)))]
pub async fn mine(
    caller: Caller,
    state: State<AppState>,
    params: Params<ListParams>,
    headers: HeaderMap,
) -> ApiResult<Json<OperationList>> {
    if caller.own_subject().is_none() {
        return Err(ApiError::Forbidden("`/v1/me` is for end users' tokens".into()));
    }
    list(caller, state, params, headers).await
}

/// The operation, if this caller may see it; otherwise "not found", so
/// nobody learns that someone else's operation exists.
pub async fn visible(app: &AppState, caller: &Caller, id: &OperationId) -> ApiResult<Operation> {
    match app.engine.store().get(id).await? {
        Some(op) if caller.may_see(op.subject.as_deref()) => Ok(op),
        _ => Err(ApiError::NotFound(format!("no operation {id}"))),
    }
}

/// `:cancel` and `:resolve` of an operation.
pub async fn action(
    caller: Caller,
    State(app): State<AppState>,
    Path(target): Path<String>,
    posted: Posted,
) -> ApiResult<Response> {
    let (id, verb) = super::action::split("/v1/operations", &target)?;
    let id = parse_id(id)?;
    match verb {
        "cancel" => cancel(&app, &caller, &id, &posted).await,
        "resolve" => resolve(&app, &caller, &id, &posted).await,
        other => Err(ApiError::NotFound(format!("no action `{other}` on operations"))),
    }
}

/// Cancel and undo what was done.
#[utoipa::path(post, path = "/v1/operations/{id}:cancel", operation_id = "cancel_operation", tag = "operations",
    params(("id" = String, Path, pattern = "^op_[0-9a-fA-F]{32}$")), request_body(content = Option<CancelRequest>, content_type = "application/json"),
    responses((status = 202, body = OperationView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn cancel(app: &AppState, caller: &Caller, id: &OperationId, posted: &Posted) -> ApiResult<Response> {
    let op = visible(app, caller, id).await?;
    let req: CancelRequest = posted.json_or_default()?;
    let reason = req.reason.unwrap_or_else(|| herald_core::lang::say(&op.lang, "reason_cancelled", &[]));
    if reason.len() > 500 {
        return Err(ApiError::InvalidInput("`reason` is longer than 500 characters".into()));
    }
    command(app, caller, id, Command::Cancel { reason }, posted).await
}

/// The choice for an operation `awaiting_decision` (`on_conflict =
/// "ask"`): `keep` the running one (this one is cancelled without
/// running) or `replace` it (it is undone, then this one runs).
#[utoipa::path(post, path = "/v1/operations/{id}:resolve", operation_id = "resolve_operation", tag = "operations",
    params(("id" = String, Path, pattern = "^op_[0-9a-fA-F]{32}$")), request_body(content = ResolveRequest, content_type = "application/json"),
    responses((status = 202, body = OperationView), (status = 404, body = Problem),
              (status = 409, body = Problem, description = "not awaiting a decision: it was made, or time ran out and the default was applied")))]
async fn resolve(app: &AppState, caller: &Caller, id: &OperationId, posted: &Posted) -> ApiResult<Response> {
    visible(app, caller, id).await?;
    let req: ResolveRequest = posted.json()?;
    command(app, caller, id, Command::Decide { choice: req.choice }, posted).await
}

/// Applies a person's command to the operation, and answers with it.
async fn command(
    app: &AppState,
    caller: &Caller,
    id: &OperationId,
    cmd: Command,
    posted: &Posted,
) -> ApiResult<Response> {
    match app.engine.apply(id, None, cmd).await? {
        TransitionResult::Applied(a) => {
            let reader = Reader { caller, wanted: &languages(caller, &posted.headers) };
            respond(app, &reader, (*a.op).clone(), None, Prefer::default()).await
        }
        TransitionResult::Missing => Err(ApiError::NotFound(format!("no operation {id}"))),
        TransitionResult::Rejected(r) => Err(rejected(r)),
    }
}

pub fn rejected(r: Rejection) -> ApiError {
    match r {
        Rejection::UnknownStep(_) => ApiError::NotFound(r.to_string()),
        Rejection::UnknownWorkflow(_) => ApiError::Internal(r.to_string()),
        Rejection::AttemptOver(..) => ApiError::StaleCallback(format!("{r}; this token no longer opens it")),
        _ => ApiError::Conflict(r.to_string()),
    }
}
