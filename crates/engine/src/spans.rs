//! An operation's spans (see `herald_trace`), each written when what it
//! describes is over, from the state the commit left and the times the
//! store keeps: the same on every node, before and after a restart.
//!
//! The tree: the operation's span (its id kept with the operation) holds
//! a span per step and per compensation; those hold their attempts (the
//! client spans whose id goes out in `traceparent`), retry backoffs and
//! waits for a service. Notifications hang from the operation's span.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use herald_core::{
    Event, EventKind, Operation,
    task::Phase,
    trace::{TraceContext, TraceParent},
};
use herald_trace::{KeyValue, Span, SpanKind, Tracer, derived};

/// The trace an operation's spans join.
pub(crate) fn context(op: &Operation) -> TraceContext {
    op.trace.clone().unwrap_or_else(|| TraceContext::of_id(&op.id))
}

/// The id of the span of `step`'s phase, parent of its attempts: derived
/// from the operation's span and the round (a redrive starts another).
pub(crate) fn phase_span(cx: &TraceContext, op: &Operation, step: &str, phase: Phase) -> u64 {
    let run = op.step(step).map(|(_, s)| s);
    let round = match phase {
        Phase::Forward => run.map_or(0, |s| s.retry_base),
        Phase::Compensation => run.and_then(|s| s.compensation.as_ref()).map_or(0, |c| c.base),
    };
    derived(cx.span(), &[step.as_bytes(), phase_name(phase).as_bytes(), &round.to_be_bytes()])
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Forward => "forward",
        Phase::Compensation => "compensation",
    }
}

/// The attributes every span of `op` carries.
pub(crate) fn about(op: &Operation) -> Vec<KeyValue> {
    vec![KeyValue::new("herald.operation.id", op.id.to_string()), KeyValue::new("herald.workflow", op.workflow.clone())]
}

/// A step call's client span attributes, in the HTTP conventions' words;
/// the URL without its query, which may carry what is not ours to export.
pub(crate) fn call_attributes(
    op: &Operation,
    (step, attempt, phase): (&str, u32, Phase),
    method: &str,
    url: &str,
    service: &str,
) -> Vec<KeyValue> {
    let mut a = about(op);
    a.push(KeyValue::new("herald.step", step.to_string()));
    a.push(KeyValue::new("herald.attempt", i64::from(attempt)));
    a.push(KeyValue::new("herald.phase", phase_name(phase)));
    a.push(KeyValue::new("herald.service", service.to_string()));
    a.push(KeyValue::new("http.request.method", method.to_string()));
    a.extend(herald_trace::url_attributes(url));
    a
}

fn time(t: DateTime<Utc>) -> SystemTime {
    SystemTime::from(t)
}

/// Writes the spans `events`, committed on `op`, end.
pub(crate) fn commit(tracer: &Tracer, op: &Operation, events: &[Event], inbox: bool) {
    if !tracer.is_on() {
        return;
    }
    let cx = context(op);
    for e in events {
        match &e.kind {
            EventKind::StepSucceeded { step, .. } => phase(tracer, &cx, op, step, Phase::Forward, e, None),
            EventKind::StepFailed { step, error } | EventKind::StepHeld { step, error } => {
                phase(tracer, &cx, op, step, Phase::Forward, e, Some(error));
            }
            EventKind::StepCompensated { step } => phase(tracer, &cx, op, step, Phase::Compensation, e, None),
            EventKind::CompensationFailed { step, error } => {
                phase(tracer, &cx, op, step, Phase::Compensation, e, Some(error));
            }
            EventKind::StepRetrying { step, attempt, error, next_attempt_at } => {
                backoff(tracer, &cx, op, (step, Phase::Forward, *attempt), e.at, *next_attempt_at, error);
            }
            EventKind::CompensationRetrying { step, attempt, error, next_attempt_at } => {
                backoff(tracer, &cx, op, (step, Phase::Compensation, *attempt), e.at, *next_attempt_at, error);
            }
            EventKind::StepDelayed { step } => {
                let parent = phase_span(&cx, op, step, Phase::Forward);
                moment(tracer, &cx, op, parent, format!("late: {step}"), e.at);
            }
            EventKind::Delayed => moment(tracer, &cx, op, cx.span(), "late".into(), e.at),
            EventKind::Succeeded | EventKind::Failed { .. } | EventKind::Cancelled { .. } => {
                operation(tracer, &cx, op, e);
            }
            _ => {}
        }
    }
    if inbox {
        let mut s = Span::under(&cx, cx.span(), "notify inbox".into(), SpanKind::Internal);
        s.attributes = about(op);
        s.attributes.push(KeyValue::new("herald.notification.channel", "inbox"));
        (s.start, s.end) = (time(op.updated_at), time(op.updated_at));
        tracer.record(s);
    }
}

/// The operation's own span, from its acceptance to its end: a server
/// span when a caller's `traceparent` started it.
fn operation(tracer: &Tracer, cx: &TraceContext, op: &Operation, e: &Event) {
    let caller = cx.parent_id;
    let kind = if caller.is_some() { SpanKind::Server } else { SpanKind::Internal };
    let mut s = Span::under(cx, 0, format!("operation {}", op.workflow), kind);
    (s.parent, s.id) = (caller, cx.span());
    (s.start, s.end) = (time(op.created_at), time(e.at));
    s.attributes = about(op);
    s.attributes.push(KeyValue::new("herald.outcome", op.status.as_str()));
    s.attributes.push(KeyValue::new("herald.delayed", op.delayed));
    s.attributes.push(KeyValue::new("herald.needs_attention", op.needs_attention));
    if let EventKind::Failed { reason } = &e.kind {
        s.error = Some(reason.clone());
    }
    tracer.record(s);
}

/// A step's (or its compensation's) span, from its first attempt to `e`.
fn phase(tracer: &Tracer, cx: &TraceContext, op: &Operation, step: &str, ph: Phase, e: &Event, error: Option<&String>) {
    let Some((_, run)) = op.step(step) else { return };
    let started = match ph {
        Phase::Forward => run.started_at,
        Phase::Compensation => run.compensation.as_ref().and_then(|c| c.started_at),
    };
    let name = match ph {
        Phase::Forward => format!("step {step}"),
        Phase::Compensation => format!("compensate {step}"),
    };
    let mut s = Span::under(cx, cx.span(), name, SpanKind::Internal);
    s.id = phase_span(cx, op, step, ph);
    (s.start, s.end) = (time(started.unwrap_or(e.at)), time(e.at));
    s.attributes = about(op);
    s.attributes.push(KeyValue::new("herald.step", step.to_string()));
    let attempts = match ph {
        Phase::Forward => run.attempts_this_round(),
        Phase::Compensation => run.compensation.as_ref().map_or(0, |c| c.attempts.saturating_sub(c.base)),
    };
    s.attributes.push(KeyValue::new("herald.attempts", i64::from(attempts)));
    s.error = error.cloned();
    // An `await` step's result is the event it waited for: linked to its producer.
    if ph == Phase::Forward
        && let Some(event) = run.result.as_ref().filter(|r| r.get("specversion").is_some())
        && let Some(producer) = event.get("traceparent").and_then(|t| t.as_str()).and_then(TraceParent::parse)
    {
        s.links.push(producer);
    }
    tracer.record(s);
}

/// The wait before a failed attempt is tried again, as planned when it failed.
fn backoff(
    tracer: &Tracer,
    cx: &TraceContext,
    op: &Operation,
    (step, ph, attempt): (&str, Phase, u32),
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    error: &str,
) {
    let mut s = Span::under(cx, phase_span(cx, op, step, ph), format!("retry backoff {step}"), SpanKind::Internal);
    (s.start, s.end) = (time(from), time(until));
    s.attributes = about(op);
    s.attributes.push(KeyValue::new("herald.step", step.to_string()));
    s.attributes.push(KeyValue::new("herald.attempt", i64::from(attempt)));
    s.attributes.push(KeyValue::new("herald.failed_because", error.to_string()));
    tracer.record(s);
}

/// Something that happened at one moment: a step or the operation late.
fn moment(tracer: &Tracer, cx: &TraceContext, op: &Operation, parent: u64, name: String, at: DateTime<Utc>) {
    let mut s = Span::under(cx, parent, name, SpanKind::Internal);
    (s.start, s.end) = (time(at), time(at));
    s.attributes = about(op);
    if let Some(by) = op.expected_by {
        s.attributes.push(KeyValue::new("herald.expected_by", by.to_rfc3339()));
    }
    tracer.record(s);
}

/// The wait for `service`'s turn that began at `began`, when there was one.
pub(crate) fn waited(
    tracer: &Tracer,
    cx: &TraceContext,
    op: &Operation,
    parent: u64,
    service: &str,
    began: SystemTime,
) {
    if !tracer.is_on() {
        return;
    }
    let now = SystemTime::now();
    if now.duration_since(began).unwrap_or_default() < WAIT_WORTH_A_SPAN {
        return;
    }
    let mut s = Span::under(cx, parent, format!("wait for {service}"), SpanKind::Internal);
    (s.start, s.end) = (began, now);
    s.attributes = about(op);
    s.attributes.push(KeyValue::new("herald.service", service.to_string()));
    tracer.record(s);
}

/// Shorter waits for a turn are the admission itself, not news.
const WAIT_WORTH_A_SPAN: std::time::Duration = std::time::Duration::from_millis(10);
