//! One call of a step's service: the envelope, the headers, and what the
//! answer means (DESIGN.md: 2xx done, 202 later by callback, 4xx but
//! 408/429 permanent, 5xx and timeouts retried; a connection that could
//! not be made sent nothing, and the step waits without spending the
//! attempt).
//!
//! The call says which language the operation speaks (`Accept-Language`,
//! and `lang` in the envelope): a service's problem `detail` is shown to
//! the user on the timeline and in the outcome, so it should be written in
//! that language. What herald says itself when a call goes wrong is in it too.

use std::{collections::BTreeMap, time::Duration};

use herald_core::{Operation, StepState, lang::say, machine::Outcome, task::Phase, workflow::Call};
use serde::Serialize;
use serde_json::Value;

use herald_gateway::registry::Verdict;

/// Longest piece of a service's error text kept on the timeline.
const ERROR_TEXT: usize = 200;

/// The largest answer a step's result may be: it is kept in the
/// operation, read with it and sent to every later step.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The JSON body every step call carries.
#[derive(Serialize)]
pub struct Envelope<'a> {
    pub operation_id: String,
    pub workflow: &'a str,
    pub step: &'a str,
    pub attempt: u32,
    pub phase: Phase,
    pub subject: Option<&'a str>,
    /// The language the operation speaks to its user (`de`, `en`): write
    /// what the user is shown (a problem's `detail`) in it.
    pub lang: &'a str,
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
        lang: &op.lang,
        input: &op.input,
        results,
        callback,
    }
}

pub struct Request<'a> {
    pub call: &'a Call,
    /// The instance's base URL and the call's path.
    pub url: String,
    pub timeout: Duration,
    pub idempotency_key: String,
    pub traceparent: String,
    /// The caller's `tracestate`, passed on as it came.
    pub tracestate: Option<String>,
    /// `Herald-Signature`, for services with a secret.
    pub signature: Option<String>,
    /// The operation's language: sent as `Accept-Language`, and the one
    /// herald's own words about the call are in.
    pub lang: String,
    pub body: Vec<u8>,
}

/// The outcome, and what it says about the service (`Unreachable`:
/// nothing was sent, and the outcome is not to be recorded).
pub async fn call(http: &reqwest::Client, req: Request<'_>) -> (Outcome, Verdict) {
    let method = reqwest::Method::from_bytes(req.call.method.as_str().as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut builder = http
        .request(method, req.url)
        .timeout(req.timeout)
        .header("content-type", "application/json")
        .header("idempotency-key", req.idempotency_key)
        .header("traceparent", req.traceparent);
    if let Ok(lang) = reqwest::header::HeaderValue::from_str(&req.lang) {
        builder = builder.header(reqwest::header::ACCEPT_LANGUAGE, lang);
    }
    if let Some(sig) = req.signature {
        builder = builder.header(herald_core::signature::HEADER, sig);
    }
    if let Some(state) = req.tracestate {
        builder = builder.header("tracestate", state);
    }
    let sent = builder.body(req.body).send().await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return transport_failure(&e, req.timeout, &req.lang),
    };
    let status = resp.status();
    let verdict = Verdict::of_status(status.as_u16());
    let retry_after = retry_after(resp.headers());
    let (body, read) = read_capped(resp, MAX_ANSWER_BYTES).await;
    if status == reqwest::StatusCode::ACCEPTED {
        return (Outcome::Accepted, verdict);
    }
    if status.is_success() {
        if read == Read::Cut {
            // The work may be done, but its result is not whole: asked
            // again (the same key), the service answers it again.
            let error = say(&req.lang, "call_cut_off", &[]);
            return (
                Outcome::Failed { error, retryable: true, maybe_applied: true, retry_after: None },
                Verdict::Failed,
            );
        }
        let kept = match read {
            Read::Whole => {
                herald_core::nesting::check(&body).map_err(|e| say(&req.lang, "call_answer_unkept", &[("error", &e)]))
            }
            _ => Err(say(&req.lang, "call_answer_too_large", &[("n", &(MAX_ANSWER_BYTES / 1024))])),
        };
        if let Err(error) = kept {
            // Kept, it could not be read back: the step fails for good.
            return (Outcome::Failed { error, retryable: false, maybe_applied: true, retry_after: None }, verdict);
        }
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(clip(&String::from_utf8_lossy(&body))))
        };
        return (Outcome::Done(value), verdict);
    }
    let code = status.as_u16();
    let retryable = code == 408 || code == 429 || status.is_server_error();
    // A service shedding load did not take the work on.
    let maybe_applied = status.is_server_error() && verdict != Verdict::Busy;
    let retry_after = if verdict == Verdict::Busy { retry_after } else { None };
    let error = describe(status, &body, FOR_A_PERSON, &req.lang);
    (Outcome::Failed { error, retryable, maybe_applied, retry_after }, verdict)
}

/// How much of an answer's body [`read_capped`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    Whole,
    /// There was more than the cap (the rest is not read).
    TooLarge,
    /// The connection broke before the body's end.
    Cut,
}

/// An answer's body, read up to `cap` bytes, and how much of it that was.
pub(crate) async fn read_capped(mut resp: reqwest::Response, cap: usize) -> (bytes::Bytes, Read) {
    let mut body = bytes::BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > cap => {
                body.extend_from_slice(&chunk[..cap - body.len()]);
                return (body.freeze(), Read::TooLarge);
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return (body.freeze(), Read::Whole),
            Err(_) => return (body.freeze(), Read::Cut),
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare between services).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs))
}

fn transport_failure(e: &reqwest::Error, timeout: Duration, lang: &str) -> (Outcome, Verdict) {
    let failed =
        |error: String, maybe_applied| Outcome::Failed { error, retryable: true, maybe_applied, retry_after: None };
    // First: a connection that was never made carried nothing, even when
    // making it is what ran out of time. (Nothing is recorded then, so no
    // user reads this.)
    if e.is_connect() {
        return (failed("the service could not be reached".into(), false), Verdict::Unreachable);
    }
    if e.is_timeout() {
        let error = say(lang, "call_timed_out", &[("within", &humantime::format_duration(timeout))]);
        return (failed(error, true), Verdict::TimedOut);
    }
    (failed(say(lang, "call_connection_failed", &[]), true), Verdict::Failed)
}

/// The fields of a failed answer a step's reason may come from. An end
/// user reads it on the timeline, so only a problem document's fields
/// written for a person count (RFC 9457 `detail`, then `title`); an
/// `error` or `message` field is often an exception's text.
pub(crate) const FOR_A_PERSON: &[&str] = &["detail", "title"];

/// The same for answers only services and admins read (a push
/// consumer's refusal): any field that names the error.
pub(crate) const FOR_SERVICES: &[&str] = &["detail", "title", "error", "message"];

/// A short reason from a failed answer: the first of `fields` that holds
/// text, else the status line, said in `lang`.
pub(crate) fn describe(status: reqwest::StatusCode, body: &[u8], fields: &[&str], lang: &str) -> String {
    let reason = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| fields.iter().find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string)));
    match reason {
        Some(r) if !r.trim().is_empty() => clip(r.trim()),
        _ => {
            let line = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
            say(lang, "call_answered", &[("status", &line.trim())])
        }
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() <= ERROR_TEXT {
        return s.to_string();
    }
    let cut: String = s.chars().take(ERROR_TEXT).collect();
    format!("{cut}…")
}
