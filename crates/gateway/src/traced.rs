//! The gateway's span for a request, when spans go somewhere: a server
//! span under the caller's `traceparent` (or a trace's root), whose id the
//! request carries upstream, so the instance's span is its child. With
//! tracing off nothing here runs and `traceparent` is passed on as it came.

use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use herald_core::trace::TraceParent;
use herald_trace::{KeyValue, SpanKind, Tracer};

use crate::forward;

/// The span begun for one request; its `traceparent` goes upstream.
#[derive(Clone)]
pub struct GatewaySpan {
    pub out: TraceParent,
    parent: Option<u64>,
    start: SystemTime,
}

impl GatewaySpan {
    pub fn begin(incoming: &HeaderMap) -> Self {
        let caller = incoming.get(forward::TRACEPARENT).and_then(|v| v.to_str().ok()).and_then(TraceParent::parse);
        let out = herald_trace::span_of(caller.as_ref(), herald_trace::new_id());
        GatewaySpan { out, parent: caller.map(|p| p.parent_id), start: SystemTime::now() }
    }

    /// Sets the request's `traceparent` upstream to this span's.
    pub fn carry(&self, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.out.to_string()) {
            headers.insert(forward::TRACEPARENT, v);
        }
    }

    pub fn end(self, tracer: &Tracer, method: &str, service: &str, status: StatusCode) {
        let code = status.as_u16();
        tracer.record(herald_trace::Span {
            name: format!("{method} /gw/{service}"),
            kind: SpanKind::Server,
            trace_id: self.out.trace_id,
            parent: self.parent,
            sampled: self.out.sampled(),
            id: self.out.parent_id,
            start: self.start,
            end: SystemTime::now(),
            attributes: vec![
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("http.route", format!("/gw/{service}/{{path}}")),
                KeyValue::new("http.response.status_code", i64::from(code)),
                KeyValue::new("herald.service", service.to_string()),
            ],
            links: Vec::new(),
            error: (code >= 500).then(|| format!("answered {code}")),
        });
    }
}
