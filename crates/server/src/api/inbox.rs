//! The end user's inbox: one notification per operation, rewritten in place
//! as it moves, an unread count, marking read, and a live stream of changes
//! resumable with `Last-Event-ID`.

use std::convert::Infallible;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use herald_core::notify::{InboxChange, Notification};
use herald_store::InboxPage;
use serde::{Deserialize, Serialize};

use super::{
    events::{KEEP_ALIVE, resume_from},
    follow::{Follow, PAGE, Source},
    query::Params,
};
use crate::state::AppState;
use herald_http::auth::Caller;
use herald_http::problem::{ApiError, ApiResult, Problem};

fn subject(caller: &Caller) -> ApiResult<String> {
    caller
        .own_subject()
        .map(str::to_string)
        .ok_or_else(|| ApiError::Forbidden("`/v1/me` is for end users' tokens".into()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Inbox {
    /// Most recently changed first.
    pub items: Vec<Notification>,
    pub unread: u64,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxParams {
    /// `next_cursor` of the page before
    cursor: Option<u64>,
    /// 1-200, default 50
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/me/notifications", operation_id = "list_notifications", tag = "inbox", params(InboxParams),
    responses((status = 200, body = Inbox), (status = 403, body = Problem, description = "not an end user's token"),
              (status = 422, body = Problem)))]
pub async fn list(
    caller: Caller,
    State(app): State<AppState>,
    Params(p): Params<InboxParams>,
) -> ApiResult<Json<Inbox>> {
    let subject = subject(&caller)?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidInput("`limit` must be between 1 and 200".into()));
    }
    let store = app.engine.store();
    let mut items = store.notifications(&subject, InboxPage::Before { version: p.cursor, limit: limit + 1 }).await?;
    let next_cursor = (items.len() > limit).then(|| items[limit - 1].version.to_string());
    items.truncate(limit);
    Ok(Json(Inbox { items, unread: store.unread(&subject).await?, next_cursor }))
}

/// `POST /v1/me/notifications/{id}:read`.
#[utoipa::path(post, path = "/v1/me/notifications/{id}:read", operation_id = "read_notification", tag = "inbox", params(("id" = String, Path)),
    responses((status = 200, body = InboxChange), (status = 404, body = Problem)))]
pub async fn read_one(caller: Caller, State(app): State<AppState>, Path(target): Path<String>) -> ApiResult<Response> {
    let subject = subject(&caller)?;
    let id = super::action::only("/v1/me/notifications", &target, "read")?;
    let changes = mark(&app, &subject, Some(id)).await?;
    match changes.into_iter().next() {
        Some(change) => Ok(Json(change).into_response()),
        // Already read, someone else's, or none at all: look which.
        None => match app.engine.store().notification(&subject, id).await? {
            Some(notification) => {
                Ok(Json(InboxChange { notification, unread: app.engine.store().unread(&subject).await? })
                    .into_response())
            }
            None => Err(ApiError::NotFound(format!("no notification {id}"))),
        },
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReadAll {
    /// How many were unread.
    pub marked: usize,
    pub unread: u64,
}

/// `POST /v1/me/notifications:read-all`.
#[utoipa::path(post, path = "/v1/me/notifications:read-all", operation_id = "read_all_notifications", tag = "inbox", responses((status = 200, body = ReadAll)))]
pub async fn read_all(caller: Caller, State(app): State<AppState>) -> ApiResult<Json<ReadAll>> {
    let subject = subject(&caller)?;
    let changes = mark(&app, &subject, None).await?;
    Ok(Json(ReadAll { marked: changes.len(), unread: 0 }))
}

/// Marks read and tells the subject's other open streams (other tabs).
async fn mark(app: &AppState, subject: &str, id: Option<&str>) -> ApiResult<Vec<InboxChange>> {
    let changes = app.engine.store().mark_read(subject, id).await?;
    app.engine.inbox().publish(&subject.to_string(), changes.iter().cloned(), false);
    Ok(changes)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct StreamParams {
    /// Resume after this change (same as the `Last-Event-ID` header).
    after: Option<u64>,
    /// The bearer token: `EventSource` cannot send an `Authorization` header.
    #[allow(dead_code)]
    access_token: Option<String>,
}

#[utoipa::path(get, path = "/v1/me/notifications/stream", operation_id = "notification_stream", tag = "inbox",
    params(("Last-Event-ID" = Option<u64>, Header), StreamParams),
    responses((status = 200, content_type = "text/event-stream", description = "`id: <version>`, `data: <InboxChange JSON>`"),
              (status = 400, body = Problem, description = "`Last-Event-ID` or `after` is not an event number"),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 429, body = Problem, description = "the end user has `limits.max_streams_per_user` streams open")))]
pub async fn stream(
    caller: Caller,
    State(app): State<AppState>,
    Query(q): Query<StreamParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let subject = subject(&caller)?;
    let after = resume_from(&headers, q.after)?;
    let slot = app.streams.take(&caller)?;
    let live = app.engine.inbox().subscribe(&subject);
    let source = Changes { app: app.clone(), subject };
    let Some(first) = source.page(after).await else {
        source.release(); // the hub's subscription goes with the stream that will not be
        return Err(ApiError::Internal("reading the inbox failed".into()));
    };
    let follow = Follow::new(source, app.engine.stopping(), after, live, first, slot, app.engine.metrics());
    let stream = futures::stream::unfold(follow, |mut follow| async move {
        let change = follow.next().await?;
        let data = serde_json::to_string(&*change).unwrap_or_default();
        Some((Ok::<_, Infallible>(SseEvent::default().id(change.notification.version.to_string()).data(data)), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

/// A watcher of one subject's inbox.
struct Changes {
    app: AppState,
    subject: String,
}

impl Source for Changes {
    type Item = InboxChange;
    const KIND: &'static str = "inbox";

    fn seq(c: &InboxChange) -> u64 {
        c.notification.version
    }

    fn ends(_: &InboxChange) -> bool {
        false
    }

    async fn page(&self, after: u64) -> Option<Vec<InboxChange>> {
        let store = self.app.engine.store();
        let page = store.notifications(&self.subject, InboxPage::After { version: after, limit: PAGE }).await.ok()?;
        let unread = store.unread(&self.subject).await.ok()?;
        Some(page.into_iter().map(|notification| InboxChange { notification, unread }).collect())
    }

    fn release(&self) {
        self.app.engine.inbox().release(&self.subject);
    }
}
