//! Subscriptions: defining them, seeing how they keep up, and consuming
//! pull subscriptions (`:pull`, then `:ack` or `:nack`).

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use herald_broker::{Delivery, Message, Nacked, RawSubscription, Redelivery, Stats, Subscription};
use herald_core::Span;
use serde::{Deserialize, Serialize};
use utoipa::{
    PartialSchema,
    openapi::{ObjectBuilder, Ref, RefOr, Schema, schema::Type},
};

use super::body::Posted;
use crate::state::AppState;
use herald_http::auth::{Caller, require_service, require_speaks_for};
use herald_http::problem::{ApiError, ApiResult, Problem};

/// The longest a pull may wait for events to come.
const MAX_PULL_WAIT: Duration = Duration::from_secs(30);
/// The longest error a `:nack` keeps.
const MAX_ERROR: usize = 2000;

/// A subscription as shown: its definition's fields, with its name, mode
/// and stats beside them (its schema is written below).
#[derive(Serialize)]
pub struct SubscriptionView {
    pub name: String,
    /// `push`, `pull`, or `internal` (herald's own, for `await` steps).
    pub mode: &'static str,
    #[serde(flatten)]
    pub definition: RawSubscription,
    pub stats: Stats,
}

/// The definition's schema with the view's own fields added. Not derived:
/// the derive would read "a definition, which takes no other field, and
/// these fields", which no answer can be.
impl utoipa::PartialSchema for SubscriptionView {
    fn schema() -> RefOr<Schema> {
        let RefOr::T(Schema::Object(mut object)) = RawSubscription::schema() else {
            unreachable!("a definition is an object")
        };
        object.additional_properties = None;
        let mode = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["push", "pull", "internal"]))
            .description(Some("`internal`: herald's own, for `await` steps"));
        let fields: [(&str, RefOr<Schema>); 3] = [
            ("name", ObjectBuilder::new().schema_type(Type::String).into()),
            ("mode", mode.into()),
            ("stats", Ref::from_schema_name("Stats").into()),
        ];
        for (name, schema) in fields {
            object.properties.insert(name.into(), schema);
            object.required.push(name.into());
        }
        Schema::Object(object).into()
    }
}

impl utoipa::ToSchema for SubscriptionView {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        RawSubscription::schemas(schemas);
        schemas.push((Stats::name().into(), Stats::schema()));
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    pub items: Vec<SubscriptionView>,
}

async fn view(app: &AppState, sub: Subscription) -> ApiResult<SubscriptionView> {
    let stats = app.engine.broker().stats(&sub.name).await?;
    let mode = match sub.delivery {
        Delivery::Pull => "pull",
        Delivery::Push { .. } => "push",
        Delivery::Internal => "internal",
    };
    Ok(SubscriptionView { name: sub.name, mode, definition: sub.raw, stats })
}

/// A push subscription is changed only by a token that speaks for the
/// service it pushes to.
fn pushes_for(caller: &Caller, sub: &Subscription) -> ApiResult<()> {
    match &sub.delivery {
        Delivery::Push { service, .. } => require_speaks_for(caller, service),
        _ => Ok(()),
    }
}

async fn find(app: &AppState, name: &str) -> ApiResult<Subscription> {
    app.engine.broker().subscription(name).await?.ok_or_else(|| ApiError::UnknownSubscription(name.to_string()))
}

/// Create or change a subscription.
#[utoipa::path(put, path = "/v1/subscriptions/{name}", operation_id = "put_subscription", tag = "topics",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")), request_body = RawSubscription,
    responses((status = 201, body = SubscriptionView, description = "created"), (status = 200, body = SubscriptionView),
              (status = 400, body = Problem), (status = 403, body = Problem), (status = 415, body = Problem),
              (status = 422, body = Problem)))]
pub async fn put(
    caller: Caller,
    State(app): State<AppState>,
    Path(name): Path<String>,
    posted: Posted,
) -> ApiResult<Response> {
    require_service(&caller)?;
    let raw: RawSubscription = posted.json()?;
    let sub = crate::subscriptions::parse(&name, raw, app.engine.services())
        .map_err(|e| ApiError::InvalidSubscription(e.to_string()))?;
    // herald signs what it pushes with the target's secret: only the
    // target's own token chooses what it is sent, and where.
    pushes_for(&caller, &sub)?;
    if let Some(old) = app.engine.broker().subscription(&name).await? {
        pushes_for(&caller, &old)?;
    }
    let put = app.engine.broker().put_subscription(&sub).await?;
    app.dispatcher.sync(&sub);
    let status = if put == herald_broker::Put::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view(&app, sub).await?)).into_response())
}

/// Every subscription, with how it keeps up.
#[utoipa::path(get, path = "/v1/subscriptions", operation_id = "list_subscriptions", tag = "topics", responses((status = 200, body = SubscriptionList)))]
pub async fn list(caller: Caller, State(app): State<AppState>) -> ApiResult<Json<SubscriptionList>> {
    require_service(&caller)?;
    let mut items = Vec::new();
    for sub in app.engine.broker().subscriptions().await? {
        items.push(view(&app, sub).await?);
    }
    Ok(Json(SubscriptionList { items }))
}

/// One subscription: its definition, depth, events out, lag and dead letters.
#[utoipa::path(get, path = "/v1/subscriptions/{name}", operation_id = "get_subscription", tag = "topics", params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = Problem)))]
pub async fn get(
    caller: Caller,
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<SubscriptionView>> {
    require_service(&caller)?;
    let sub = find(&app, &name).await?;
    Ok(Json(view(&app, sub).await?))
}

/// Delete a subscription and every event still waiting for it.
#[utoipa::path(delete, path = "/v1/subscriptions/{name}", operation_id = "delete_subscription", tag = "topics", params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
pub async fn delete(caller: Caller, State(app): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    require_service(&caller)?;
    let sub = find(&app, &name).await?;
    pushes_for(&caller, &sub)?;
    if sub.is_internal() {
        return Err(ApiError::Conflict(format!("`{name}` is herald's own: it goes when no workflow awaits its topic")));
    }
    app.engine.broker().delete_subscription(&name).await?;
    app.dispatcher.stop(&name);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// 1-1000, default 10.
    #[schema(minimum = 1, maximum = 1000)]
    pub max: Option<usize>,
    /// How long the events are the caller's; default the subscription's lease.
    #[schema(value_type = Option<String>, example = "30s")]
    pub lease: Option<Span>,
    /// Wait up to this long (at most 30 s) for events when none is due.
    #[schema(value_type = Option<String>, example = "10s")]
    pub wait: Option<Span>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PullResponse {
    pub messages: Vec<Message>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    #[schema(min_items = 1, max_items = 1000)]
    pub ack_ids: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AckResponse {
    pub acked: usize,
    /// Ack ids whose lease had ended (the event may go out again) or that were never given.
    pub unknown: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NackRequest {
    #[schema(min_items = 1, max_items = 1000)]
    pub ack_ids: Vec<String>,
    /// Go out again after this long; default the subscription's backoff.
    #[schema(value_type = Option<String>, example = "5s")]
    pub delay: Option<Span>,
    /// `false`: the event can never be processed; it goes to the dead letters now.
    #[serde(default = "yes")]
    pub retry: bool,
    /// Why, kept with the attempt (and the dead letter).
    #[schema(max_length = 2000)]
    pub error: Option<String>,
}

fn yes() -> bool {
    true
}

/// `:pull`, `:ack` and `:nack` of a pull subscription.
pub async fn action(
    caller: Caller,
    State(app): State<AppState>,
    Path(target): Path<String>,
    posted: Posted,
) -> ApiResult<Response> {
    require_service(&caller)?;
    let (name, verb) = super::action::split("/v1/subscriptions", &target)?;
    let sub = find(&app, name).await?;
    if sub.delivery != Delivery::Pull {
        return Err(ApiError::Conflict(format!("`{name}` is not a pull subscription: herald delivers its events")));
    }
    match verb {
        "pull" => pull(&app, &sub, &posted).await,
        "ack" => ack(&app, &sub, &posted).await,
        "nack" => nack(&app, &sub, &posted).await,
        other => Err(ApiError::NotFound(format!("no action `{other}` on subscriptions"))),
    }
}

/// Take events to work on, each leased to the caller until it is answered
/// (`:ack`, `:nack`) or the lease ends.
#[utoipa::path(post, path = "/v1/subscriptions/{name}:pull", tag = "topics", params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
    request_body(content = Option<PullRequest>, content_type = "application/json"),
    responses((status = 200, body = PullResponse), (status = 404, body = Problem),
              (status = 409, body = Problem, description = "not a pull subscription")))]
async fn pull(app: &AppState, sub: &Subscription, posted: &Posted) -> ApiResult<Response> {
    Ok(Json(pulled(app, sub, posted.json_or_default()?).await?).into_response())
}

/// Done with these events: they do not go out again.
#[utoipa::path(post, path = "/v1/subscriptions/{name}:ack", tag = "topics", params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
    request_body = AckRequest,
    responses((status = 200, body = AckResponse), (status = 404, body = Problem),
              (status = 409, body = Problem, description = "not a pull subscription")))]
async fn ack(app: &AppState, sub: &Subscription, posted: &Posted) -> ApiResult<Response> {
    let req: AckRequest = posted.json()?;
    check_ids(&req.ack_ids)?;
    let unknown = app.engine.broker().ack(&sub.name, &req.ack_ids).await?;
    Ok(Json(AckResponse { acked: req.ack_ids.len() - unknown.len(), unknown }).into_response())
}

/// Give events back: they go out again later, or to the dead letters.
#[utoipa::path(post, path = "/v1/subscriptions/{name}:nack", tag = "topics", params(("name" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
    request_body = NackRequest,
    responses((status = 200, body = Nacked), (status = 404, body = Problem),
              (status = 409, body = Problem, description = "not a pull subscription")))]
async fn nack(app: &AppState, sub: &Subscription, posted: &Posted) -> ApiResult<Response> {
    let req: NackRequest = posted.json()?;
    check_ids(&req.ack_ids)?;
    let error = req.error.unwrap_or_else(|| "given back by the consumer".into());
    if error.len() > MAX_ERROR {
        return Err(ApiError::InvalidInput(format!("`error` is longer than {MAX_ERROR} characters")));
    }
    let redelivery = match (req.retry, req.delay) {
        (false, _) => Redelivery::Never,
        (true, Some(d)) => Redelivery::After(d.0),
        (true, None) => Redelivery::Backoff,
    };
    let nacked: Nacked = app.engine.broker().nack(&sub.name, &req.ack_ids, redelivery, &error).await?;
    Ok(Json(nacked).into_response())
}

/// Pulls, waiting (up to `wait`) for something to come when nothing is due.
async fn pulled(app: &AppState, sub: &Subscription, req: PullRequest) -> ApiResult<PullResponse> {
    let max = req.max.unwrap_or(10);
    if !(1..=1000).contains(&max) {
        return Err(ApiError::InvalidInput("`max` must be between 1 and 1000".into()));
    }
    let lease = req.lease.map_or(sub.lease, |l| l.0);
    if lease < Duration::from_secs(1) || lease > Duration::from_secs(12 * 3600) {
        return Err(ApiError::InvalidInput("`lease` must be between 1 second and 12 hours".into()));
    }
    let wait = req.wait.map_or(Duration::ZERO, |w| w.0);
    if wait > MAX_PULL_WAIT {
        return Err(ApiError::InvalidInput("`wait` may be at most 30 s".into()));
    }
    let broker = app.engine.broker();
    let deadline = tokio::time::Instant::now() + wait;
    let wake = broker.wakeup(&sub.name);
    let stopping = app.engine.stopping();
    loop {
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let messages = broker.pull(&sub.name, max, lease).await?;
        let now = tokio::time::Instant::now();
        if !messages.is_empty() || now >= deadline {
            return Ok(PullResponse { messages });
        }
        let due = broker.next_due(&sub.name).await?.and_then(|d| (d - Utc::now()).to_std().ok());
        let until = due.map_or(deadline, |d| deadline.min(now + d));
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep_until(until) => {}
            _ = stopping.cancelled() => return Ok(PullResponse { messages: vec![] }),
        }
    }
}

fn check_ids(ids: &[String]) -> ApiResult<()> {
    if ids.is_empty() || ids.len() > 1000 {
        return Err(ApiError::InvalidInput("`ack_ids` must hold 1-1000 ack ids".into()));
    }
    Ok(())
}
