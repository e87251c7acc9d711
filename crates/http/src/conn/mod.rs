//! What one client connection may cost: how long each part of a request
//! may take, how large its head may be, and when an idle one gives its
//! place back. The API's listener and the gateway's express lane hold
//! every connection to these.

pub mod host;
pub mod idle;

use std::time::Duration;

/// How long a client may take to send its request head, once begun.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause in a request body before the request is given up.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a write may wait on a client that reads nothing.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head; a larger one is answered 431.
pub const MAX_HEAD: usize = 32 * 1024;

/// A request's announced `Content-Length`, refused (413) past `limit` at
/// once: not after that much has come, nor after the body's timeout.
pub fn announced_length(headers: &axum::http::HeaderMap, limit: u64) -> Result<Option<u64>, crate::problem::ApiError> {
    let length = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match length {
        Some(n) if n > limit => {
            Err(crate::problem::ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes")))
        }
        _ => Ok(length),
    }
}
