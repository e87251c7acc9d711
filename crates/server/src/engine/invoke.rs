//! One call of a step's service: the envelope, the headers, and what the
//! answer means (DESIGN.md: 2xx done, 202 later by callback, 4xx but
//! 408/429 permanent, 5xx, timeouts and connection errors retried).

use std::{collections::BTreeMap, time::Duration};

use herald_core::{Operation, StepState, machine::Outcome, task::Phase, workflow::Call};
use serde::Serialize;
use serde_json::Value;

/// Longest piece of a service's error text kept on the timeline.
const ERROR_TEXT: usize = 200;

/// The JSON body every step call carries.
#[derive(Serialize)]
pub struct Envelope<'a> {
    pub operation_id: String,
    pub workflow: &'a str,
    pub step: &'a str,
    pub attempt: u32,
    pub phase: Phase,
    pub subject: Option<&'a str>,
    pub input: &'a Value,
    /// Results of the steps that have succeeded, by step name.
    pub results: BTreeMap<&'a str, &'a Value>,
    /// Where a step that answers 202 reports its result.
    pub callback: Option<Callback>,
}

#[derive(Serialize)]
pub struct Callback {
    pub url: String,
    pub token: String,
}

pub fn envelope<'a>(
    op: &'a Operation,
    step: &'a str,
    attempt: u32,
    phase: Phase,
    callback: Option<Callback>,
) -> Envelope<'a> {
    let results = op
        .steps
        .iter()
        .filter(|s| s.status == StepState::Succeeded || s.status == StepState::Compensating)
        .filter_map(|s| s.result.as_ref().map(|r| (s.name.as_str(), r)))
        .collect();
    Envelope {
        operation_id: op.id.to_string(),
        workflow: &op.workflow,
        step,
        attempt,
        phase,
        subject: op.subject.as_deref(),
        input: &op.input,
        results,
        callback,
    }
}

pub struct Request<'a> {
    pub base: &'a str,
    pub call: &'a Call,
    pub timeout: Duration,
    pub idempotency_key: String,
    pub traceparent: String,
    /// `Herald-Signature`, for services with a secret.
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

/// The outcome, and whether the instance did its part (a 5xx, a timeout or
/// a failed connection count against it; any other answer does not).
pub async fn call(http: &reqwest::Client, req: Request<'_>) -> (Outcome, bool) {
    let method = reqwest::Method::from_bytes(req.call.method.as_str().as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut builder = http
        .request(method, format!("{}{}", req.base, req.call.path))
        .timeout(req.timeout)
        .header("content-type", "application/json")
        .header("idempotency-key", req.idempotency_key)
        .header("traceparent", req.traceparent);
    if let Some(sig) = req.signature {
        builder = builder.header(herald_core::signature::HEADER, sig);
    }
    let sent = builder.body(req.body).send().await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return (transport_failure(&e, req.timeout), false),
    };
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    if status == reqwest::StatusCode::ACCEPTED {
        return (Outcome::Accepted, true);
    }
    if status.is_success() {
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(clip(&String::from_utf8_lossy(&body))))
        };
        return (Outcome::Done(value), true);
    }
    let code = status.as_u16();
    let retryable = code == 408 || code == 429 || status.is_server_error();
    let failed = Outcome::Failed { error: describe(status, &body), retryable, maybe_applied: status.is_server_error() };
    (failed, !status.is_server_error())
}

fn transport_failure(e: &reqwest::Error, timeout: Duration) -> Outcome {
    if e.is_timeout() {
        let error = format!("no answer within {}", humantime::format_duration(timeout));
        return Outcome::Failed { error, retryable: true, maybe_applied: true };
    }
    if e.is_connect() {
        return Outcome::Failed {
            error: "the service could not be reached".into(),
            retryable: true,
            maybe_applied: false,
        };
    }
    Outcome::Failed { error: "the connection to the service failed".into(), retryable: true, maybe_applied: true }
}

/// A short reason from a failed answer: a problem document's `detail` or
/// `title`, an `error` field, or the status line.
pub(crate) fn describe(status: reqwest::StatusCode, body: &[u8]) -> String {
    let reason = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        ["detail", "title", "error", "message"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
    });
    match reason {
        Some(r) if !r.trim().is_empty() => clip(r.trim()),
        _ => format!("the service answered {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
            .trim()
            .to_string(),
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() <= ERROR_TEXT {
        return s.to_string();
    }
    let cut: String = s.chars().take(ERROR_TEXT).collect();
    format!("{cut}…")
}
