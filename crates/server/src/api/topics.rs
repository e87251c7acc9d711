//! `POST /v1/topics/{topic}/events`: publishing CloudEvents, one in the JSON
//! format, a batch, or one in binary mode. Durable when it answers.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, header},
};
use herald_broker::{CloudEvent, Published};
use serde::Serialize;
use serde_json::Value;

use super::body::Posted;
use crate::state::AppState;
use herald_http::auth::{Caller, require_service};
use herald_http::problem::{ApiError, ApiResult, Problem};

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

#[derive(Serialize, utoipa::ToSchema)]
pub struct PublishResponse {
    /// One entry per event sent, in order.
    pub events: Vec<Published>,
}

/// Publish to a topic: `application/cloudevents+json` (one event),
/// `application/cloudevents-batch+json` (an array), or binary mode (`ce-id`,
/// `ce-source`, `ce-specversion`, `ce-type` headers, the data as the body).
/// An event whose `source` and `id` were published within the dedupe window
/// is not stored again (`duplicate: true`).
#[utoipa::path(post, path = "/v1/topics/{topic}/events", tag = "topics",
    params(("topic" = String, Path, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
    request_body(content = CloudEvent, content_type = "application/cloudevents+json"),
    responses((status = 200, body = PublishResponse, description = "stored durably"),
              (status = 400, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, body = Problem)))]
pub async fn publish(
    caller: Caller,
    State(app): State<AppState>,
    Path(topic): Path<String>,
    posted: Posted,
) -> ApiResult<Json<PublishResponse>> {
    require_service(&caller)?;
    if !herald_core::workflow::valid_topic(&topic) {
        return Err(ApiError::InvalidInput(format!(
            "`{topic}` is not a topic name: 1-128 letters, digits, `.`, `-` or `_`"
        )));
    }
    let events = read_events(&posted.headers, &posted.body, app.events.max_batch)?;
    let limit = app.events.max_event_bytes;
    if let Some((i, size)) = events.iter().map(CloudEvent::encoded_len).enumerate().find(|(_, n)| *n > limit) {
        return Err(ApiError::PayloadTooLarge(format!("event {i} is {size} bytes; events may be up to {limit}")));
    }
    let from = super::trace::caller(&posted.headers);
    let published = app.engine.publish(&topic, events, from, Vec::new()).await?;
    Ok(Json(PublishResponse { events: published }))
}

pub(super) fn read_events(headers: &HeaderMap, body: &[u8], max_batch: usize) -> Result<Vec<CloudEvent>, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let mime = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let invalid = |at: Option<usize>, e: herald_broker::EventError| {
        ApiError::InvalidEvent(match at {
            Some(i) => format!("event {i}: {e}"),
            None => e.to_string(),
        })
    };
    match mime.as_str() {
        STRUCTURED => {
            if let Some(event) = shortcut::<CloudEvent>(body)?.and_then(CloudEvent::checked) {
                return Ok(vec![event]);
            }
            Ok(vec![CloudEvent::from_json(parse(body)?).map_err(|e| invalid(None, e))?])
        }
        BATCH => {
            if let Some(events) = shortcut::<Vec<CloudEvent>>(body)?
                && (1..=max_batch).contains(&events.len())
                && let Some(events) = events.into_iter().map(CloudEvent::checked).collect()
            {
                return Ok(events);
            }
            let Value::Array(items) = parse(body)? else {
                return Err(ApiError::InvalidEvent("a batch is a JSON array of events".into()));
            };
            if items.is_empty() {
                return Err(ApiError::InvalidEvent("the batch is empty".into()));
            }
            if items.len() > max_batch {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the batch has {} events; a batch may have up to {max_batch}",
                    items.len()
                )));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| CloudEvent::from_json(v).map_err(|e| invalid(Some(i), e)))
                .collect()
        }
        _ if headers.keys().any(|k| k.as_str().starts_with("ce-")) => {
            herald_core::nesting::check(body).map_err(ApiError::InvalidEvent)?;
            let ce = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes()));
            Ok(vec![CloudEvent::from_binary(ce, content_type, body).map_err(|e| invalid(None, e))?])
        }
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "send a CloudEvent: `content-type: {STRUCTURED}`, `{BATCH}`, or binary mode with `ce-*` headers"
        ))),
    }
}

/// Events read straight from the body, or `None` when anything is amiss:
/// then the body is read the long way, which names what is wrong.
fn shortcut<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    herald_core::nesting::check(body).map_err(ApiError::InvalidEvent)?;
    Ok(serde_json::from_slice(body).ok())
}

fn parse(body: &[u8]) -> Result<Value, ApiError> {
    herald_core::nesting::check(body).map_err(ApiError::InvalidEvent)?;
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))
}
