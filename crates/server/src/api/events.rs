//! `GET /v1/operations/{id}/events`: the timeline as Server-Sent Events.
//!
//! The backlog after `Last-Event-ID` comes from the store, then live events
//! from the hub; an event is sent only if its `seq` is the next one, and a
//! gap (a lagging watcher) is filled from the store, so a client sees every
//! event once, in order, across reconnects. The stream ends after the final
//! event; reconnecting after that answers 204, which tells `EventSource` to
//! stop.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use herald_core::{Event, OperationId};
use serde::Deserialize;

use herald_http::auth::Caller;

use super::{
    follow::{Follow, PAGE, Source},
    operations::parse_id,
};
use crate::state::AppState;
use herald_http::problem::{ApiError, ApiResult, Problem};

#[derive(Deserialize, utoipa::IntoParams)]
pub struct EventsParams {
    /// Resume after this event (same as the `Last-Event-ID` header).
    after: Option<u64>,
    /// The bearer token: `EventSource` cannot send an `Authorization` header.
    #[allow(dead_code)]
    access_token: Option<String>,
}

#[utoipa::path(get, path = "/v1/operations/{id}/events", operation_id = "operation_events", tag = "operations",
    params(("id" = String, Path), ("Last-Event-ID" = Option<u64>, Header), EventsParams),
    responses((status = 200, content_type = "text/event-stream", description = "`id: <seq>`, `data: <Event JSON>`"),
              (status = 204, description = "nothing after Last-Event-ID: the operation has ended"), (status = 404, body = Problem),
              (status = 400, body = Problem, description = "`Last-Event-ID` or `after` is not an event number"),
              (status = 429, body = Problem, description = "the end user has `limits.max_streams_per_user` streams open")))]
pub async fn stream(
    caller: Caller,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EventsParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let after = resume_from(&headers, q.after)?;
    let Some(feed) = open(&app, &caller, id, after).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        let e = feed.next().await?;
        // No `event:` name: every event reaches `EventSource.onmessage`; its type is in the data.
        Some((Ok::<_, Infallible>(SseEvent::default().id(e.seq.to_string()).data(data(&e))), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

/// How often an idle stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// [`resume_point`] of a request's headers; a `Last-Event-ID` that is not
/// UTF-8 is refused too.
pub fn resume_from(headers: &HeaderMap, after: Option<u64>) -> ApiResult<u64> {
    let last = headers.get("last-event-id").map(|v| String::from_utf8_lossy(v.as_bytes()));
    resume_point(last.as_deref(), after)
}

/// Where a reconnecting client resumes: `Last-Event-ID`, else `?after=`.
/// A `Last-Event-ID` that is no event number of herald's is refused, as a
/// bad `after` is, rather than taken as none (a replay from the start).
pub fn resume_point(last_event_id: Option<&str>, after: Option<u64>) -> ApiResult<u64> {
    let Some(last) = last_event_id else { return Ok(after.unwrap_or(0)) };
    last.trim().parse::<u64>().map_err(|_| {
        ApiError::BadRequest(format!("`Last-Event-ID` must be an event number, not `{}`", last.escape_debug()))
    })
}

/// The event as the SSE `data:` line carries it.
pub fn data(e: &Event) -> String {
    serde_json::to_string(e).unwrap_or_default()
}

/// A watcher's feed after `after`, or `None` when the operation has ended
/// and nothing is left to send (answer 204). An end user's feed holds one
/// of their stream slots while it lives (429 when none is free).
pub async fn open(app: &AppState, caller: &Caller, id: OperationId, after: u64) -> ApiResult<Option<Feed>> {
    let slot = app.streams.take(caller)?;
    // An end user's: theirs to see, and other operations' ids hidden from
    // its events unless the workflow's key is their own.
    let hide_others = match caller.own_subject() {
        Some(_) => {
            let op = super::operations::visible(app, caller, &id).await?;
            !app.engine.workflows().version(&op.workflow, op.version).is_some_and(|wf| super::operations::own_key(&wf))
        }
        None => false,
    };
    let live = app.engine.hub().subscribe(&id);
    // The first page of the backlog comes with the answer; only when there is
    // none must the operation itself say whether it exists and has ended.
    let mut backlog = app.engine.store().events(&id, after, PAGE).await?;
    if backlog.is_empty() {
        let op = app.engine.store().get(&id).await?;
        // It may have moved on, to its end, since the backlog was read:
        // once it has ended, a second read is the last word.
        if op.as_ref().is_some_and(|op| op.is_final()) {
            backlog = app.engine.store().events(&id, after, PAGE).await?;
        }
        if backlog.is_empty() && op.as_ref().is_none_or(|op| op.is_final()) {
            drop(live);
            app.engine.hub().release(&id);
            return match op {
                None => Err(ApiError::NotFound(format!("no operation {id}"))),
                Some(_) => Ok(None),
            };
        }
    }
    let source = Timeline { app: app.clone(), id };
    let follow = Follow::new(source, app.engine.stopping(), after, live, backlog, slot, app.engine.metrics());
    Ok(Some(Feed { follow, hide_others }))
}

/// A watcher of one operation's timeline, each event as its caller may
/// see it.
pub struct Feed {
    follow: Follow<Timeline>,
    /// An end user's, whose workflow's key is not theirs: other
    /// operations' ids are hidden from the events.
    hide_others: bool,
}

impl Feed {
    pub async fn next(&mut self) -> Option<std::sync::Arc<Event>> {
        let e = self.follow.next().await?;
        if !self.hide_others {
            return Some(e);
        }
        let mut shown = (*e).clone();
        shown.for_end_user(false);
        Some(std::sync::Arc::new(shown))
    }
}

pub struct Timeline {
    app: AppState,
    id: OperationId,
}

impl Source for Timeline {
    type Item = Event;
    const KIND: &'static str = "timeline";

    fn committed_at(e: &Event) -> Option<chrono::DateTime<chrono::Utc>> {
        Some(e.at)
    }

    fn seq(e: &Event) -> u64 {
        e.seq
    }

    /// The final event, or an erasure: erasures come only after the end,
    /// so a watcher resumed past the final event is not left open.
    fn ends(e: &Event) -> bool {
        e.kind.is_final() || matches!(e.kind, herald_core::EventKind::Redacted { .. })
    }

    async fn page(&self, after: u64) -> Option<Vec<Event>> {
        self.app.engine.store().events(&self.id, after, PAGE).await.ok()
    }

    fn release(&self) {
        self.app.engine.hub().release(&self.id);
    }
}
