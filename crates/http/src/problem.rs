//! Every error answer is an RFC 9457 problem document with a stable `type`.
//! This one table maps each error to its status, type and title; internals
//! are logged, never sent.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use herald_core::OperationId;
use serde::Serialize;

/// `Retry-After` of a refused event stream, in seconds.
const STREAMS_RETRY_AFTER: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    NotFound(String),
    #[error("there is no workflow named `{0}`")]
    UnknownWorkflow(String),
    #[error("there is no subscription named `{0}`")]
    UnknownSubscription(String),
    #[error("{0}")]
    InvalidEvent(String),
    #[error("{0}")]
    InvalidSubscription(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("this Idempotency-Key was used before with a different request")]
    IdempotencyKeyReused(OperationId),
    #[error("another operation with the same concurrency key is running")]
    ConcurrencyConflict(OperationId),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    /// A step's callback token that was good once: expired, or for an
    /// attempt that is over. Nothing was changed.
    #[error("{0}")]
    StaleCallback(String),
    #[error("{0}")]
    Forbidden(String),
    /// A request a web page may have sent from another site, refused while
    /// herald trusts callers without a token (no `[auth]`, or `auth.anonymous`).
    #[error("{0}")]
    OriginNotAllowed(String),
    #[error("the server is shutting down")]
    Unavailable,
    /// The store did not answer (a lost connection, a full disk): what it
    /// said is logged, never sent.
    #[error("the store does not answer: try again shortly")]
    StoreUnavailable(String),
    #[error("too many requests: try again in {0} s")]
    TooManyRequests(u64),
    #[error("you have {0} event streams open already, the most one user may have: close one first")]
    TooManyStreams(usize),
    #[error("there is no service named `{0}`")]
    UnknownService(String),
    /// herald holds the request back: no instance, an open circuit, or
    /// the service's concurrency limit (`detail` says which).
    #[error("{detail}: try again in {retry_after} s")]
    NoInstance { detail: String, retry_after: u64 },
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("this endpoint does not take that method")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal(String),
}

/// The problem document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable: match on this, not on `title` or `detail`.
    #[serde(rename = "type")]
    #[schema(example = "urn:herald:problem:invalid-json")]
    pub kind: String,
    pub title: &'static str,
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    pub detail: String,
    /// The operation concerned (an existing one, for conflicts and reused keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
}

impl ApiError {
    /// The HTTP status it answers with.
    pub fn status(&self) -> StatusCode {
        self.describe().0
    }

    /// (status, type code, title): the table.
    fn describe(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid-json", "The body is not valid JSON"),
            UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported content type")
            }
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "The body is too large"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            UnknownWorkflow(_) => (StatusCode::NOT_FOUND, "unknown-workflow", "Unknown workflow"),
            UnknownSubscription(_) => (StatusCode::NOT_FOUND, "unknown-subscription", "Unknown subscription"),
            InvalidEvent(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-event", "The event is not a valid CloudEvent")
            }
            InvalidSubscription(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-subscription", "The subscription is not valid")
            }
            InvalidInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-input", "The request is not valid"),
            IdempotencyKeyReused(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused with another request",
            ),
            ConcurrencyConflict(_) => (StatusCode::CONFLICT, "concurrency-conflict", "Already running"),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", "Not possible in the current state"),
            Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Not authenticated"),
            StaleCallback(_) => {
                (StatusCode::UNAUTHORIZED, "stale-callback-token", "The callback token no longer applies")
            }
            Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            OriginNotAllowed(_) => (StatusCode::FORBIDDEN, "origin-not-allowed", "Not allowed from this site"),
            Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Unavailable"),
            StoreUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", "The store does not answer"),
            TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests"),
            TooManyStreams(_) => (StatusCode::TOO_MANY_REQUESTS, "too-many-streams", "Too many open streams"),
            UnknownService(_) => (StatusCode::NOT_FOUND, "unknown-service", "Unknown service"),
            NoInstance { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "no-instance", "The service cannot take requests now")
            }
            BadGateway(_) => (StatusCode::BAD_GATEWAY, "upstream-failed", "The service failed"),
            GatewayTimeout(_) => {
                (StatusCode::GATEWAY_TIMEOUT, "upstream-timeout", "The service did not answer in time")
            }
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    /// Seconds for `Retry-After`, on the answers that say when to try again.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests(secs) | ApiError::NoInstance { retry_after: secs, .. } => Some(*secs),
            // Nothing says when one of the user's streams ends; a few seconds
            // keeps a reconnecting client from spinning.
            ApiError::TooManyStreams(_) => Some(STREAMS_RETRY_AFTER),
            ApiError::StoreUnavailable(_) => Some(1),
            _ => None,
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.describe();
        let operation_id = match self {
            ApiError::IdempotencyKeyReused(id) | ApiError::ConcurrencyConflict(id) => Some(id.to_string()),
            _ => None,
        };
        Problem {
            kind: format!("urn:herald:problem:{code}"),
            title,
            status: status.as_u16(),
            detail: self.to_string(),
            operation_id,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::StoreUnavailable(detail) => tracing::warn!(%detail, "the store does not answer"),
            _ => {}
        }
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(problem)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let ApiError::Unauthorized(_) | ApiError::StaleCallback(_) = &self {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after()
            && let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let ApiError::ConcurrencyConflict(id) = &self
            && let Ok(v) = HeaderValue::from_str(&format!("/v1/operations/{id}"))
        {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp
    }
}

/// Any error answer not already a problem document (the framework's own
/// rejections: a path that is not UTF-8, a query of the wrong type) becomes
/// one here, so every error a client sees has the same shape.
pub async fn ensure_problem(resp: Response) -> Response {
    let status = resp.status();
    let is_problem =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return resp;
    }
    let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&body).trim().to_string();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::NOT_FOUND => ApiError::NotFound(if detail.is_empty() { "not found".into() } else { detail }),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge("the body is too large".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType(if detail.is_empty() { "unsupported content type".into() } else { detail })
        }
        s if s.is_client_error() => ApiError::BadRequest(if detail.is_empty() { "bad request".into() } else { detail }),
        _ => ApiError::Internal(detail),
    };
    let mut problem = error.into_response();
    *problem.status_mut() = status;
    problem
}

impl From<herald_broker::Error> for ApiError {
    fn from(e: herald_broker::Error) -> Self {
        match e {
            herald_broker::Error::UnknownSubscription(name) => ApiError::UnknownSubscription(name),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<herald_store::Error> for ApiError {
    fn from(e: herald_store::Error) -> Self {
        use herald_store::Error::*;
        match e {
            // The store's trouble, not a fault of herald's: the client may
            // try again.
            Backend(_) | Closed | Io(_) => ApiError::StoreUnavailable(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_does_not_answer_is_a_503_to_retry_and_its_words_stay_inside() {
        let e = ApiError::from(herald_store::Error::Backend("connection refused by db.internal:5432".into()));
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let problem = ApiError::StoreUnavailable("db.internal".into()).problem();
        assert_eq!(problem.kind, "urn:herald:problem:store-unavailable");
        assert!(!problem.detail.contains("db.internal"), "{}", problem.detail);
        let corrupt = ApiError::from(herald_store::Error::Corrupt("row 7".into()));
        assert_eq!(corrupt.problem().status, 500);
    }
}
