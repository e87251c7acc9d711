//! herald's spans, out over OTLP when the standard `OTEL_*` variables ask.
//!
//! An operation outlives the request that started it, the node that ran
//! a step and any restart, so its spans are not scoped to a task: each is
//! written once it is over, with the ids the operation keeps
//! ([`herald_core::trace::TraceContext`]) and times taken from what the
//! store recorded. Every span id is chosen by herald before the span is
//! handed to the SDK: a call's `traceparent` names its span before the
//! call is made, and a step's span, written by whichever node ends the
//! step, has an id its attempts (on any node) could name as their parent.
//!
//! Off (the default) a [`Tracer`] is a `None`: callers ask [`Tracer::is_on`]
//! before building a span, so tracing off costs a branch.

mod settings;

use std::{cell::Cell, sync::Arc, time::SystemTime};

use opentelemetry::{
    Context,
    trace::{
        Link, Span as _, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
        TracerProvider as _,
    },
};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider,
};
use sha2::{Digest, Sha256};

pub use opentelemetry::{KeyValue, trace::SpanKind};
pub use settings::Settings;

/// Where herald's spans go: nowhere (off) or an OTLP exporter.
#[derive(Clone, Default)]
pub struct Tracer(Option<Arc<Inner>>);

struct Inner {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Tracer {
    pub fn off() -> Self {
        Tracer(None)
    }

    /// A tracer exporting as `settings` say; off when they do not ask.
    pub fn start(settings: &Settings) -> anyhow::Result<Self> {
        if !settings.enabled {
            return Ok(Tracer::off());
        }
        use opentelemetry_otlp::WithExportConfig as _;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(settings.protocol);
        if let Some(endpoint) = &settings.endpoint {
            exporter = exporter.with_endpoint(endpoint.clone());
        }
        let exporter = exporter.build()?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(settings.service_name.clone()).build();
        let mut batch = BatchConfigBuilder::default();
        if let Some(delay) = settings.batch_delay {
            batch = batch.with_scheduled_delay(delay);
        }
        let processor = BatchSpanProcessor::builder(exporter).with_batch_config(batch.build()).build();
        let provider = SdkTracerProvider::builder()
            .with_id_generator(Chosen::default())
            .with_resource(resource)
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer("herald");
        tracing::info!(
            endpoint = settings.endpoint.as_deref().unwrap_or("(the exporter's default)"),
            "traces are exported over OTLP"
        );
        Ok(Tracer(Some(Arc::new(Inner { provider, tracer }))))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Writes a span that is over.
    pub fn record(&self, s: Span) {
        let Some(inner) = &self.0 else { return };
        let flags = if s.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        let cx = match s.parent {
            Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(s.trace_id),
                SpanId::from(parent),
                flags,
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let links = s
            .links
            .iter()
            .map(|l| {
                let flags = TraceFlags::new(l.flags);
                let cx = SpanContext::new(
                    TraceId::from(l.trace_id),
                    SpanId::from(l.parent_id),
                    flags,
                    true,
                    TraceState::default(),
                );
                Link::with_context(cx)
            })
            .collect();
        let builder = inner
            .tracer
            .span_builder(s.name)
            .with_kind(s.kind)
            .with_start_time(s.start)
            .with_attributes(s.attributes)
            .with_links(links);
        // The SDK draws the ids from its generator as the span starts:
        // `Chosen` hands it these.
        CHOSEN.set((s.trace_id, s.id));
        let mut span = builder.start_with_context(&inner.tracer, &cx);
        CHOSEN.set((0, 0));
        if let Some(error) = s.error {
            span.set_status(opentelemetry::trace::Status::error(error));
        }
        span.end_with_timestamp(s.end.max(s.start));
    }

    /// Sends what is buffered and stops exporting (at shutdown).
    pub fn shutdown(&self) {
        if let Some(inner) = &self.0
            && let Err(e) = inner.provider.shutdown()
        {
            tracing::warn!(error = %e, "the last spans could not be exported");
        }
    }
}

/// One span, over: written by [`Tracer::record`].
pub struct Span {
    pub name: String,
    pub kind: SpanKind,
    pub trace_id: u128,
    /// The parent span, of this trace; `None` makes a trace's root.
    pub parent: Option<u64>,
    pub sampled: bool,
    pub id: u64,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    /// Spans this one follows from without being their child: the
    /// producer of an event a consumer span handles.
    pub links: Vec<herald_core::trace::TraceParent>,
    /// Set when what the span did failed.
    pub error: Option<String>,
}

impl Span {
    /// A span of `cx`'s trace under `parent`; `id` fresh unless set after.
    pub fn under(cx: &herald_core::trace::TraceContext, parent: u64, name: String, kind: SpanKind) -> Self {
        let now = SystemTime::now();
        Span {
            name,
            kind,
            trace_id: cx.trace(),
            parent: Some(parent),
            sampled: cx.sampled,
            id: new_id(),
            start: now,
            end: now,
            attributes: Vec::new(),
            links: Vec::new(),
            error: None,
        }
    }
}

/// `url.full`, `server.address` and `server.port` of a call to `url`,
/// without its credentials, query or fragment: they may carry what is not
/// herald's to export (a webhook's secret path is the owner's choice, so
/// callers that send to one pass only its origin).
pub fn url_attributes(url: &str) -> Vec<KeyValue> {
    let Ok(mut u) = url::Url::parse(url) else { return Vec::new() };
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    let mut a = vec![KeyValue::new("url.full", u.to_string())];
    if let Some(host) = u.host_str() {
        a.push(KeyValue::new("server.address", host.to_string()));
    }
    if let Some(port) = u.port_or_known_default() {
        a.push(KeyValue::new("server.port", i64::from(port)));
    }
    a
}

/// The context of span `id`: the child of `caller`'s span in its trace,
/// or, without a caller, the root of a new sampled trace.
pub fn span_of(caller: Option<&herald_core::trace::TraceParent>, id: u64) -> herald_core::trace::TraceParent {
    match caller {
        Some(p) => herald_core::trace::TraceParent { parent_id: id, ..*p },
        None => herald_core::trace::TraceParent { trace_id: rand::random::<u128>() | 1, parent_id: id, flags: 1 },
    }
}

/// A fresh span id (never zero).
pub fn new_id() -> u64 {
    rand::random::<u64>() | 1
}

/// The id of a span that several nodes must agree on without talking:
/// the same `parent` and `parts` give the same id.
pub fn derived(parent: u64, parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new().chain_update(parent.to_be_bytes());
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) | 1
}

thread_local! {
    /// The ids the next span started on this thread takes (0: draw one).
    static CHOSEN: Cell<(u128, u64)> = const { Cell::new((0, 0)) };
}

/// Hands the SDK the ids herald chose (see [`CHOSEN`]), else random ones.
#[derive(Debug, Default)]
struct Chosen(RandomIdGenerator);

impl IdGenerator for Chosen {
    fn new_trace_id(&self) -> TraceId {
        match CHOSEN.get().0 {
            0 => self.0.new_trace_id(),
            id => TraceId::from(id),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match CHOSEN.get().1 {
            0 => self.0.new_span_id(),
            id => SpanId::from(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_what_is_not_ours() {
        let a = url_attributes("http://user:secret@pay.internal:8080/charge?token=abc#x");
        let text = format!("{a:?}");
        assert!(text.contains("http://pay.internal:8080/charge"), "{text}");
        assert!(!text.contains("secret") && !text.contains("token") && !text.contains("user"), "{text}");
        assert!(url_attributes("not a url").is_empty());
    }

    #[test]
    fn derived_ids_agree_and_differ() {
        assert_eq!(derived(7, &[b"charge", b"forward"]), derived(7, &[b"charge", b"forward"]));
        assert_ne!(derived(7, &[b"charge", b"forward"]), derived(8, &[b"charge", b"forward"]));
        assert_ne!(derived(7, &[b"charge", b"forward"]), derived(7, &[b"chargefor", b"ward"]));
    }
}
