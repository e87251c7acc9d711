//! Workflows meeting topics: a `publish` step's event, and an event
//! arriving for `await` steps.

use chrono::Utc;
use herald_broker::{CloudEvent, Published};
use herald_core::{
    Command, Operation, OperationId, machine::Outcome, task::Phase, trace::TraceParent, workflow::Publish,
};
use herald_trace::{KeyValue, SpanKind};
use serde_json::json;

use crate::{Engine, invoke, spans};

impl Engine {
    /// Publishes `events` on `topic` from the span `from` (the caller's,
    /// or a step's) with its `tracestate`. Each event the producer did
    /// not give a `traceparent` carries one (the CloudEvents
    /// distributed-tracing extension): herald's producer span's when
    /// tracing, else the caller's own, so consumers join the trace either way.
    pub async fn publish(
        &self,
        topic: &str,
        mut events: Vec<CloudEvent>,
        from: Option<(TraceParent, Option<String>)>,
        mut about: Vec<KeyValue>,
    ) -> herald_broker::Result<Vec<Published>> {
        let on = self.0.tracer.is_on();
        let (span, start) = (herald_trace::new_id(), std::time::SystemTime::now());
        let caller = from.as_ref().map(|(p, _)| *p);
        let stamp = if on { Some(herald_trace::span_of(caller.as_ref(), span)) } else { caller };
        if let Some(stamp) = stamp {
            let state = from.as_ref().and_then(|(_, s)| s.as_deref());
            events.iter_mut().for_each(|e| e.trace_from(stamp, state));
        }
        let count = events.len();
        let published = self.0.broker.publish(topic, events).await;
        if let Some(stamp) = stamp.filter(|_| on) {
            about.extend([
                KeyValue::new("messaging.system", "herald"),
                KeyValue::new("messaging.operation.type", "send"),
                KeyValue::new("messaging.destination.name", topic.to_string()),
                KeyValue::new("messaging.batch.message_count", count as i64),
            ]);
            self.0.tracer.record(herald_trace::Span {
                name: format!("publish {topic}"),
                kind: SpanKind::Producer,
                trace_id: stamp.trace_id,
                parent: from.map(|(p, _)| p.parent_id),
                sampled: stamp.sampled(),
                id: span,
                start,
                end: std::time::SystemTime::now(),
                attributes: about,
                links: Vec::new(),
                error: published.as_ref().err().map(|_| "the events could not be stored".to_string()),
            });
        }
        published
    }

    /// Publishes a `publish` step's event. Its id follows from the
    /// operation and the step, so a retried publish (after a crash or a
    /// storage error) is recognised by the topic and stored once.
    pub(crate) async fn publish_step(
        &self,
        op: &Operation,
        step: &str,
        attempt: u32,
        phase: Phase,
        p: &Publish,
    ) -> Outcome {
        let event = match step_event(op, step, attempt, phase, p) {
            Ok(e) => e,
            Err(e) => {
                return Outcome::Failed {
                    error: e.to_string(),
                    retryable: false,
                    maybe_applied: false,
                    retry_after: None,
                };
            }
        };
        let cx = spans::context(op);
        let from = cx.child(spans::phase_span(&cx, op, step, phase));
        let mut about = spans::about(op);
        about.push(KeyValue::new("herald.step", step.to_string()));
        match self.publish(&p.topic, vec![event], Some((from, cx.state.clone())), about).await {
            Ok(published) => {
                let first = published.into_iter().next();
                Outcome::Done(json!({
                    "topic": p.topic,
                    "event_id": first.as_ref().map(|f| f.id.clone()),
                    "seq": first.map(|f| f.seq),
                }))
            }
            Err(e) => {
                tracing::warn!(operation_id = %op.id, step, error = %e, "publishing a step's event failed");
                Outcome::Failed {
                    error: herald_core::lang::say(&op.lang, "event_not_stored", &[]),
                    retryable: true,
                    maybe_applied: true,
                    retry_after: None,
                }
            }
        }
    }

    /// An event on a topic `await` steps listen to: every operation it may
    /// name (by the rules of the workflows that await it) is told; each
    /// decides whether it is theirs.
    pub async fn event_arrived(&self, topic: &str, event: &CloudEvent) -> herald_store::Result<()> {
        let data = event.data.as_ref();
        let mut named: Vec<OperationId> = self
            .0
            .workflows
            .await_rules(topic, &event.kind)
            .iter()
            .filter_map(|rule| rule.correlation(event.extension("operationid"), data))
            .filter_map(|id| id.parse().ok())
            .collect();
        named.sort();
        named.dedup();
        let body = event.to_json();
        for id in named {
            let cmd = Command::EventArrived { topic: topic.to_string(), event: body.clone() };
            self.apply(&id, None, cmd).await?;
        }
        Ok(())
    }
}

/// The event a `publish` step (or a compensation that publishes) sends:
/// the step envelope as its data, the operation named by `operationid`.
fn step_event(
    op: &Operation,
    step: &str,
    attempt: u32,
    phase: Phase,
    p: &Publish,
) -> Result<CloudEvent, herald_broker::EventError> {
    let id = match phase {
        Phase::Forward => format!("{}/{step}", op.id),
        Phase::Compensation => format!("{}/{step}/compensate", op.id),
    };
    let mut e = json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("/herald/workflows/{}", op.workflow),
        "type": p.kind,
        "time": Utc::now().to_rfc3339(),
        "datacontenttype": "application/json",
        "operationid": op.id.to_string(),
        "data": invoke::envelope(op, step, attempt, phase, None),
    });
    // Only the input fields the step lets subscribers see.
    e["data"]["input"] = p.input(&op.input);
    if let Some(subject) = &op.subject {
        e["subject"] = json!(subject);
    }
    CloudEvent::from_json(e)
}
