//! Step handlers for axum services: [`StepCall`] extracts herald's
//! envelope and its `Idempotency-Key` (and checks `Herald-Signature` when
//! the service has a secret), [`StepReply`] answers in the terms herald
//! understands: done, accepted (finish later by callback), failed for good,
//! or try again. [`PushedEvent`] does the same for events herald pushes to
//! a subscriber.
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use herald_sdk::step::{StepCall, StepReply, StepSecret};
//!
//! async fn charge(call: StepCall) -> StepReply {
//!     #[derive(serde::Deserialize)]
//!     struct Input { card: String }
//!     let input: Input = match call.envelope.input() { Ok(i) => i, Err(reply) => return reply };
//!     if input.card.ends_with("0002") {
//!         return StepReply::failed("Your card was declined.");
//!     }
//!     StepReply::done(serde_json::json!({"charge": "ch_1"}))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/payment/charge", post(charge))
//!     .layer(axum::Extension(StepSecret::new("the service's secret in herald.toml")));
//! ```

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, OriginalUri, Request},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use herald_core::{signature, task::Phase};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::Callback;

/// The JSON envelope of every step call. Fields herald may add later are
/// ignored, not refused.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub operation_id: String,
    pub workflow: String,
    pub step: String,
    pub attempt: u32,
    pub phase: Phase,
    #[serde(default)]
    pub subject: Option<String>,
    /// The language the operation speaks to its user (`de`, `en`; also
    /// sent as `Accept-Language`): a `detail` in [`StepReply::failed`] is
    /// shown to that user, so write it in this language where you can.
    /// `None` from a herald that did not send it.
    #[serde(default)]
    pub lang: Option<String>,
    pub input: Value,
    /// Results of the steps that succeeded before this one, by step name.
    #[serde(default)]
    pub results: BTreeMap<String, Value>,
    /// Where to report the result of a step that answers 202.
    #[serde(default)]
    pub callback: Option<Callback>,
}

impl Envelope {
    /// The operation's input as `T`; a missing or mistyped field fails the
    /// step for good (retrying would not help), saying what was wrong.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, StepReply> {
        T::deserialize(&self.input).map_err(|e| StepReply::failed(format!("The request is incomplete ({e}).")))
    }

    /// A field of an earlier step's result.
    pub fn result(&self, step: &str, field: &str) -> Option<&Value> {
        self.results.get(step).and_then(|r| r.get(field))
    }
}

/// The secret herald signs this service's requests with (`secret` under
/// the service in herald's config). Add it as an axum `Extension` and every
/// [`StepCall`] must carry a valid, fresh signature for its method, path
/// and body. A proxy in front of the service must not rewrite the path.
#[derive(Clone)]
pub struct StepSecret(Vec<u8>);

impl StepSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        StepSecret(secret.into())
    }
}

/// A step call: its idempotency key and envelope.
#[derive(Debug, Clone)]
pub struct StepCall {
    /// `<operation id>/<step>`, or `…/compensate` for a compensation: the
    /// same on every attempt, so the work can be done once.
    pub key: String,
    pub envelope: Envelope,
    /// The call's `traceparent`: herald's client span for this attempt.
    /// Give it to [`crate::Outbox::enqueue_traced`] so the events the
    /// step announces join the operation's trace.
    pub traceparent: Option<String>,
}

/// A request from herald: its headers and body, the signature checked
/// when the service has a [`StepSecret`], the `Idempotency-Key` required.
async fn from_herald<S: Send + Sync>(req: Request, state: &S) -> Result<(HeaderMap, String, Bytes), StepReply> {
    let secret = req.extensions().get::<StepSecret>().cloned();
    let headers = req.headers().clone();
    let method = req.method().clone();
    // The path herald sent, before a `Router::nest` took its prefix off.
    let uri = req.extensions().get::<OriginalUri>().map_or(req.uri(), |o| &o.0);
    let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let key = header_text(&headers, "idempotency-key")
        .ok_or_else(|| StepReply::malformed("The request has no Idempotency-Key header."))?;
    let body = Bytes::from_request(req, state)
        .await
        .map_err(|e| StepReply::malformed(format!("The request body could not be read ({e}).")))?;
    if let Some(StepSecret(secret)) = secret {
        let sig = header_text(&headers, signature::HEADER)
            .ok_or_else(|| StepReply::unauthorized("The request is not signed."))?;
        signature::verify(&secret, &sig, method.as_str(), &target, &body, chrono::Utc::now().timestamp())
            .map_err(|e| StepReply::unauthorized(format!("The signature does not hold ({e}).")))?;
    }
    Ok((headers, key, body))
}

/// A `traceparent` header the W3C recommendation accepts.
fn traceparent(headers: &HeaderMap) -> Option<String> {
    header_text(headers, "traceparent").filter(|v| herald_core::trace::TraceParent::parse(v).is_some())
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

impl<S: Send + Sync> FromRequest<S> for StepCall {
    type Rejection = StepReply;

    async fn from_request(req: Request, state: &S) -> Result<Self, StepReply> {
        let (headers, key, body) = from_herald(req, state).await?;
        let envelope = serde_json::from_slice(&body)
            .map_err(|e| StepReply::malformed(format!("The request body is not a step envelope ({e}).")))?;
        Ok(StepCall { key, envelope, traceparent: traceparent(&headers) })
    }
}

/// An event herald pushed to this service for a push subscription. Answer
/// with a [`StepReply`]: done acknowledges it, `retry` has it sent again
/// later, `failed` dead-letters it at once.
#[derive(Debug, Clone)]
pub struct PushedEvent {
    /// `<subscription>/<source>/<id>`: the same on every delivery of the event.
    pub key: String,
    pub subscription: String,
    /// 1 on the first delivery.
    pub attempt: u32,
    pub event: herald_broker::CloudEvent,
    /// herald's delivery span; it links to the producer's, which the
    /// event carries in its own `traceparent` extension.
    pub traceparent: Option<String>,
}

impl<S: Send + Sync> FromRequest<S> for PushedEvent {
    type Rejection = StepReply;

    async fn from_request(req: Request, state: &S) -> Result<Self, StepReply> {
        let (headers, key, body) = from_herald(req, state).await?;
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| StepReply::malformed(format!("The request body is not JSON ({e}).")))?;
        let event = herald_broker::CloudEvent::from_json(value)
            .map_err(|e| StepReply::malformed(format!("The request body is not a CloudEvent ({e}).")))?;
        Ok(PushedEvent {
            key,
            subscription: header_text(&headers, "herald-subscription").unwrap_or_default(),
            attempt: header_text(&headers, "herald-attempt").and_then(|a| a.parse().ok()).unwrap_or(1),
            event,
            traceparent: traceparent(&headers),
        })
    }
}

/// A step's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StepReply {
    /// 200: done; the value is the step's result.
    Done(Value),
    /// 202: the service took it on and will report through the callback.
    Accepted,
    /// 4xx: failed for good; `detail` is what the end user is told.
    Failed { status: StatusCode, detail: String },
    /// 503: try again later (after `retry_after` seconds, if given).
    Retry { detail: String, retry_after: Option<u64> },
}

impl StepReply {
    pub fn done(result: impl serde::Serialize) -> Self {
        StepReply::Done(serde_json::to_value(result).unwrap_or(Value::Null))
    }

    pub fn accepted() -> Self {
        StepReply::Accepted
    }

    /// Failed for good (422): written for the person who asked.
    pub fn failed(detail: impl Into<String>) -> Self {
        StepReply::Failed { status: StatusCode::UNPROCESSABLE_ENTITY, detail: detail.into() }
    }

    /// Busy or broken for now (503): herald tries again.
    pub fn retry(detail: impl Into<String>) -> Self {
        StepReply::Retry { detail: detail.into(), retry_after: None }
    }

    fn malformed(detail: impl Into<String>) -> Self {
        StepReply::Failed { status: StatusCode::BAD_REQUEST, detail: detail.into() }
    }

    fn unauthorized(detail: impl Into<String>) -> Self {
        StepReply::Failed { status: StatusCode::UNAUTHORIZED, detail: detail.into() }
    }

    /// The status and JSON body this reply is sent as (kept by an [`Inbox`](crate::Inbox)
    /// to answer a repeated key the same way).
    pub fn parts(&self) -> (StatusCode, Value) {
        let problem = |status: StatusCode, detail: &str| json!({"type": "about:blank", "title": status.canonical_reason().unwrap_or(""), "status": status.as_u16(), "detail": detail});
        match self {
            StepReply::Done(v) => (StatusCode::OK, v.clone()),
            StepReply::Accepted => (StatusCode::ACCEPTED, json!({})),
            StepReply::Failed { status, detail } => (*status, problem(*status, detail)),
            StepReply::Retry { detail, .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, problem(StatusCode::SERVICE_UNAVAILABLE, detail))
            }
        }
    }

    /// A stored answer, sent again as it was.
    pub fn replay(status: u16, body: Value) -> Self {
        match StatusCode::from_u16(status).unwrap_or(StatusCode::OK) {
            s if s == StatusCode::ACCEPTED => StepReply::Accepted,
            s if s.is_success() => StepReply::Done(body),
            s => StepReply::Failed { status: s, detail: body["detail"].as_str().unwrap_or_default().to_string() },
        }
    }

    /// Whether herald will call again with this key (so the answer is not final).
    pub fn is_final(&self) -> bool {
        !matches!(self, StepReply::Retry { .. })
    }
}

impl IntoResponse for StepReply {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            StepReply::Retry { retry_after, .. } => *retry_after,
            _ => None,
        };
        let (status, body) = self.parts();
        let mut resp = (status, Json(body)).into_response();
        if !status.is_success() {
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        }
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
