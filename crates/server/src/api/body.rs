//! Request bodies: size-limited, JSON only, with each failure its own problem.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;

use herald_http::problem::ApiError;

/// What a POST or PUT sent: its headers and its body, under the configured
/// size limit (413 past it). Every handler that takes a body reads it so.
pub struct Posted {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Posted {
    /// The body as JSON: see [`json`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        json(&self.headers, &self.body)
    }

    /// The body as JSON, or the default for an empty one: see [`json_or_default`].
    pub fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        json_or_default(&self.headers, &self.body)
    }
}

impl<S: Send + Sync> FromRequest<S> for Posted {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map(|l| l.0).unwrap_or(usize::MAX);
        let headers = req.headers().clone();
        herald_http::conn::announced_length(&headers, limit as u64)?;
        match Bytes::from_request(req, state).await {
            Ok(body) => Ok(Posted { headers, body }),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes")))
            }
            Err(e) => Err(ApiError::InvalidInput(format!("could not read the body: {e}"))),
        }
    }
}

/// The configured limit, made visible to [`Posted`] for its message.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Parses a JSON body: 415 without a JSON content type, 400 for broken
/// JSON, 422 for JSON of the wrong shape or nested too deep to be read back.
pub fn json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    require_json(headers)?;
    herald_core::nesting::check(body).map_err(ApiError::InvalidInput)?;
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidInput(e.to_string()),
        _ => ApiError::InvalidJson(e.to_string()),
    })
}

/// Like [`json`], but an empty body means the default value (its content
/// type is still JSON: [`json_only`] saw to that).
pub fn json_or_default<T: DeserializeOwned + Default>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json(headers, body)
}

/// 415 unless the content type is JSON (`application/json`, or a `+json` type).
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime != "application/json" && !mime.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType("send `content-type: application/json`".into()));
    }
    Ok(())
}

/// Every POST and PUT of the API must say it is JSON, even with no body
/// (`:cancel`, `:read`): an HTML form on another site can send a POST but
/// not that content type, so it cannot act here through a visitor's
/// browser. Publishing keeps its own rules (CloudEvents JSON types, or
/// binary mode's `ce-` headers, which a form cannot send either), and is
/// not given this layer (`router::json`).
pub async fn json_only(req: Request, next: Next) -> Response {
    let changes = matches!(*req.method(), Method::POST | Method::PUT);
    if changes && let Err(e) = require_json(req.headers()) {
        return e.into_response();
    }
    next.run(req).await
}
