//! The caller's W3C trace context, read from its request.

use axum::http::HeaderMap;
use herald_core::trace::TraceParent;

/// The caller's `traceparent` (one the W3C recommendation accepts) with
/// its `tracestate`; anything else starts a trace of herald's own, as the
/// recommendation says a receiver must.
pub fn caller(headers: &HeaderMap) -> Option<(TraceParent, Option<String>)> {
    let parent = TraceParent::parse(headers.get("traceparent")?.to_str().ok()?)?;
    // Several `tracestate` lines are one list.
    let states: Vec<&str> = headers.get_all("tracestate").iter().filter_map(|v| v.to_str().ok()).collect();
    Some((parent, (!states.is_empty()).then(|| states.join(","))))
}
