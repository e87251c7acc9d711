//! For fuzz/: the publish API's reading of a request's events, on plain
//! headers and bytes, since `topics` is private. Not part of herald's API;
//! adds no behaviour.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use herald_broker::CloudEvent;

/// The events `POST /v1/topics/{topic}/events` reads from these headers
/// and body, or its refusal's text. Headers hyper would not have let
/// through (a name or value that is not one) are left out.
pub fn read_events(headers: &[(&[u8], &[u8])], body: &[u8], max_batch: usize) -> Result<Vec<CloudEvent>, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(name, value);
        }
    }
    super::topics::read_events(&map, body, max_batch).map_err(|e| e.to_string())
}
