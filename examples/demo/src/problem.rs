//! Failure answers as `application/problem+json` (RFC 9457). herald shows
//! `detail` to the end user, so it is always a sentence a shopper can read.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// Short slug; becomes the relative URI `/problems/<kind>`.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem { status, kind, title, detail: detail.into() }
    }

    /// The request itself could not be understood (not the user's fault).
    pub fn malformed(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "malformed-request", "Malformed request", detail)
    }

    /// The operation's input lacks something this step needs.
    pub fn invalid_input(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-input", "Invalid input", detail)
    }

    pub fn not_found() -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", "There is nothing at this address.")
    }

    pub fn body(&self) -> serde_json::Value {
        json!({
            "type": format!("/problems/{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        })
    }
}

/// herald retries these; every other failure is final.
pub fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS
}

/// A JSON response; failures get the problem content type.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let content_type = if status.is_success() { "application/json" } else { "application/problem+json" };
    (status, [(header::CONTENT_TYPE, content_type)], body.to_string()).into_response()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body())
    }
}
