//! Starting an operation: what follows once a handler has read the request
//! and checked the caller. The API's `POST /v1/workflows/{name}/operations`
//! and the gateway's `async` routes both come here.

use std::sync::Arc;

use chrono::Utc;
use herald_core::{
    Command, Operation, OperationId, machine,
    workflow::{ConcurrencyKey, OnConflict},
};
use herald_http::problem::ApiError;
use herald_store::{Accepted, Applied, IdempotencyKey, NewOperation, SupersedeFn};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Engine;

pub struct StartRequest<'a> {
    pub workflow: &'a str,
    /// The operation's input: a JSON object.
    pub input: Value,
    /// Who it is about, as the caller said (`Herald-Subject`); else the
    /// workflow's `subject` pointer into the input says.
    pub subject: Option<String>,
    pub idempotency_key: Option<String>,
    /// The body as sent: a reused idempotency key is caught by comparing it.
    pub body: &'a [u8],
    /// The languages the user reads, best first (their token's `lang`
    /// claim, then `Accept-Language`); the workflow's `language_from`
    /// pointer into the input goes before them.
    pub languages: Vec<String>,
    /// The caller's `traceparent` and `tracestate`: the operation joins its trace.
    pub trace: Option<(herald_core::trace::TraceParent, Option<String>)>,
}

pub enum Started {
    Created(Applied),
    /// The same idempotency key and body were seen before: that operation.
    Existing(Box<Operation>),
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("there is no workflow named `{0}`")]
    UnknownWorkflow(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("this Idempotency-Key was used before with a different request")]
    KeyReused(OperationId),
    #[error("another operation with the same concurrency key is running")]
    Conflict(OperationId),
    #[error(transparent)]
    Store(#[from] herald_store::Error),
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::UnknownWorkflow(name) => ApiError::UnknownWorkflow(name),
            StartError::InvalidInput(detail) => ApiError::InvalidInput(detail),
            StartError::KeyReused(id) => ApiError::IdempotencyKeyReused(id),
            StartError::Conflict(id) => ApiError::ConcurrencyConflict(id),
            StartError::Store(e) => e.into(),
        }
    }
}

impl Engine {
    /// Accepts a new operation: its subject and concurrency key, its
    /// idempotency key, its id and first events, durable when this returns.
    pub async fn start(&self, req: StartRequest<'_>) -> Result<Started, StartError> {
        let wf =
            self.workflows().latest(req.workflow).ok_or_else(|| StartError::UnknownWorkflow(req.workflow.into()))?;
        if !req.input.is_object() {
            return Err(StartError::InvalidInput("the body must be a JSON object: the operation's input".into()));
        }
        let subject = match req.subject {
            Some(s) => Some(s),
            None => wf.subject.as_deref().map(|p| pointer_text(&req.input, p, "subject")).transpose()?,
        };
        let key = match &wf.concurrency {
            None => None,
            Some(c) => Some(match &c.key {
                ConcurrencyKey::Subject => {
                    subject.clone().ok_or_else(|| StartError::InvalidInput("the operation has no subject".into()))?
                }
                ConcurrencyKey::Input(p) => pointer_text(&req.input, p, "concurrency key")?,
            }),
        };
        let idempotency = req.idempotency_key.map(|key| IdempotencyKey {
            key,
            request_hash: hex::encode(
                Sha256::new().chain_update(req.workflow.as_bytes()).chain_update([0]).chain_update(req.body).finalize(),
            ),
        });
        let observed = match wf.expected_within {
            Some(herald_core::expect::Within::Auto) => self.0.flow_times.p90(self.store(), &wf.name).await?,
            _ => None,
        };
        let now = Utc::now();
        let id = OperationId::new(now, rand::random());
        let mut wanted = req.languages;
        if let Some(Value::String(lang)) = wf.language_from.as_deref().and_then(|p| req.input.pointer(p)) {
            wanted.insert(0, lang.clone());
        }
        let lang = Some(herald_core::lang::choose(&wanted, &wf.languages).to_string());
        let intake = herald_core::operation::Intake { observed, lang };
        let (mut op, transition) = machine::accept(&wf, id.clone(), req.input, subject, key, &intake, now);
        // Kept only when a caller's trace is joined: else it follows from the id.
        op.trace = req.trace.map(|caller| herald_core::trace::TraceContext::new(caller, herald_trace::new_id()));
        let on_conflict = wf.concurrency.as_ref().map(|c| c.on_conflict);
        let supersede = (on_conflict == Some(OnConflict::Supersede)).then(|| self.superseder(id, now));
        let conflict = |outcome| self.metrics().operations.conflict(req.workflow, outcome);
        match self.accept(NewOperation { op, transition, idempotency, workflow: wf.clone(), supersede }).await? {
            Accepted::Created(applied) => Ok(Started::Created(applied)),
            Accepted::Existing(op) => {
                conflict("replayed");
                Ok(Started::Existing(op))
            }
            Accepted::KeyReused(id) => {
                conflict("key_reused");
                Err(StartError::KeyReused(id))
            }
            Accepted::Conflict(id) => {
                conflict("rejected");
                Err(StartError::Conflict(id))
            }
        }
    }
}

impl Engine {
    /// Supersedes an older operation in favour of `by`, under the older
    /// one's own workflow version.
    pub(crate) fn superseder(&self, by: OperationId, now: chrono::DateTime<Utc>) -> SupersedeFn {
        let engine = self.clone();
        Arc::new(move |older: &mut Operation| {
            let Some(wf) = engine.workflows().version(&older.workflow, older.version) else {
                return Default::default();
            };
            machine::apply(older, &wf, Command::Supersede { by: by.clone() }, now).unwrap_or_default()
        })
    }
}

/// The text at `pointer` in the input: a subject or a concurrency key.
fn pointer_text(input: &Value, pointer: &str, what: &str) -> Result<String, StartError> {
    match input.pointer(pointer) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(StartError::InvalidInput(format!("the input needs a text value at `{pointer}` (the {what})"))),
    }
}
