//! One event POSTed to a push subscription's service, in the CloudEvents
//! JSON format (or, with the subscription's `batch`, several as a JSON
//! array, answered together). 2xx acknowledges; 408, 429, 5xx, a timeout
//! or a refused connection are tried again (after `Retry-After`, when the
//! service says); any other answer means the event cannot be processed
//! there, and it goes to the dead letters at once. An event that could not
//! be sent at all (no connection) goes back unsent: no attempt is spent.

use std::time::Duration;

use herald_broker::{Message, Redelivery, Subscription};
use herald_core::trace::TraceParent;

use super::Failure;
use herald_gateway::registry::{Lease, Verdict};

use crate::invoke;

/// The longest `Retry-After` honoured; a longer one waits the backoff.
const MAX_RETRY_AFTER: Duration = herald_core::machine::MAX_RETRY_AFTER;

/// How much of a refusal's body is read, for the reason it gives.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// How soon an event whose consumer could not be reached goes again
/// (unsent: its attempt is not spent).
const UNREACHABLE_RETRY: Duration = Duration::from_secs(1);

/// A delivery's consumer span: the child of the producer's span for one
/// event, a trace's root for a batch, linked to every event's producer
/// either way (as the OpenTelemetry messaging conventions say). Its id
/// goes to the consumer in `traceparent`, tracing on or off.
pub struct Delivery {
    trace: TraceParent,
    parent: Option<u64>,
    links: Vec<TraceParent>,
    start: std::time::SystemTime,
}

impl Delivery {
    pub fn begin(chunk: &[Message]) -> Self {
        let links: Vec<TraceParent> = chunk.iter().filter_map(|m| m.event.trace_parent()).collect();
        // One event's delivery continues its producer's trace; a batch's starts one.
        let producer = if let ([_], Some(p)) = (chunk, links.first()) { Some(p) } else { None };
        let trace = herald_trace::span_of(producer, herald_trace::new_id());
        let parent = producer.map(|p| p.parent_id);
        Delivery { trace, parent, links, start: std::time::SystemTime::now() }
    }

    pub fn end(self, tracer: &herald_trace::Tracer, sub: &Subscription, count: usize, error: Option<&str>) {
        if !tracer.is_on() {
            return;
        }
        tracer.record(herald_trace::Span {
            name: format!("deliver {}", sub.name),
            kind: herald_trace::SpanKind::Consumer,
            trace_id: self.trace.trace_id,
            parent: self.parent,
            sampled: self.trace.sampled(),
            id: self.trace.parent_id,
            start: self.start,
            end: std::time::SystemTime::now(),
            attributes: vec![
                herald_trace::KeyValue::new("messaging.system", "herald"),
                herald_trace::KeyValue::new("messaging.operation.type", "process"),
                herald_trace::KeyValue::new("messaging.destination.name", sub.topic.clone()),
                herald_trace::KeyValue::new("messaging.consumer.group.name", sub.name.clone()),
                herald_trace::KeyValue::new("messaging.batch.message_count", count as i64),
            ],
            links: self.links,
            error: error.map(str::to_string),
        });
    }
}

pub async fn post(
    lease: Lease,
    path: &str,
    timeout: Duration,
    sub: &Subscription,
    chunk: &[Message],
    delivery: &Delivery,
) -> Result<(), Failure> {
    let service = lease.service().clone();
    let timeout = service.settings.timeout.map_or(timeout, |cap| cap.min(timeout));
    let url = format!("{}{path}", lease.base());
    let mut request = service.client().post(&url);
    let body = match chunk {
        [m] => {
            // The same event reaches one subscription's consumer with the
            // same key, however often it is tried.
            let key = format!("{}/{}/{}", sub.name, m.event.source, m.event.id);
            request = request
                .header("content-type", "application/cloudevents+json")
                .header("idempotency-key", key)
                .header("herald-attempt", m.attempt.to_string());
            serde_json::to_vec(&m.event).unwrap_or_default()
        }
        _ => {
            // A batch: each event's `source` and `id` identify it.
            let events: Vec<&herald_broker::CloudEvent> = chunk.iter().map(|m| &m.event).collect();
            request = request.header("content-type", "application/cloudevents-batch+json");
            serde_json::to_vec(&events).unwrap_or_default()
        }
    };
    if let Some(sig) = service.signature("POST", &url, &body) {
        request = request.header(herald_core::signature::HEADER, sig);
    }
    let sent = request
        .timeout(timeout)
        .header("herald-subscription", &sub.name)
        .header("traceparent", delivery.trace.to_string())
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            lease.finish(Verdict::Unreachable);
            let error = "the consumer could not be reached".to_string();
            return Err(Failure { error, redelivery: Redelivery::Unsent(UNREACHABLE_RETRY) });
        }
        Err(e) => {
            let timed_out = e.is_timeout();
            lease.finish(if timed_out { Verdict::TimedOut } else { Verdict::Failed });
            let error = if timed_out {
                format!("no answer within {}", humantime::format_duration(timeout))
            } else {
                "the connection to the consumer failed".into()
            };
            return Err(Failure { error, redelivery: Redelivery::Backoff });
        }
    };
    let status = resp.status();
    lease.finish(Verdict::of_status(status.as_u16()));
    if status.is_success() {
        return Ok(());
    }
    let retry_after = invoke::retry_after(resp.headers()).filter(|d| *d <= MAX_RETRY_AFTER);
    // Read only for the error it names.
    let (body, _) = invoke::read_capped(resp, ERROR_BODY_BYTES).await;
    // Read by admins, not by an operation's user: in herald's first language.
    let error = invoke::describe(status, &body, invoke::FOR_SERVICES, herald_core::lang::DEFAULT);
    let code = status.as_u16();
    let redelivery = if code == 408 || code == 429 || status.is_server_error() {
        retry_after.map_or(Redelivery::Backoff, Redelivery::After)
    } else {
        Redelivery::Never
    };
    Err(Failure { error, redelivery })
}
