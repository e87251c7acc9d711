//! How every step endpoint behaves, whichever app it lives in: read the
//! envelope herald sends, answer a repeated `Idempotency-Key` from the
//! store, wait out the pace, do the work, keep the answer if it is final.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{FromRequest, Request, State},
    http::StatusCode,
    response::Response,
    routing::{MethodRouter, get, post},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    dedupe::{Answer, Dedupe},
    problem::{Problem, is_retryable, json_response},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Forward,
    Compensation,
}

/// The part of herald's envelope the demo reads. Other fields (`subject`,
/// `callback`, …) are ignored rather than refused, so herald can add some.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub operation_id: String,
    pub workflow: String,
    pub step: String,
    pub attempt: u32,
    pub phase: Phase,
    pub input: Value,
    #[serde(default)]
    pub results: BTreeMap<String, Value>,
}

impl Envelope {
    /// The operation's input as `T`; a missing or mistyped field is the
    /// caller's mistake, so it is a permanent failure.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        T::deserialize(&self.input)
            .map_err(|e| Problem::invalid_input(format!("The details sent with this request are incomplete ({e}).")))
    }

    /// A field of an earlier step's result, if that step ran and has it.
    pub fn result(&self, step: &str, field: &str) -> Option<&Value> {
        self.results.get(step).and_then(|r| r.get(field))
    }
}

/// A step call: its idempotency key and envelope. Extracting it answers
/// 400 problem+json for anything malformed, instead of axum's plain text.
#[derive(Debug)]
pub struct StepCall {
    pub key: String,
    pub envelope: Envelope,
}

impl<S: Send + Sync> FromRequest<S> for StepCall {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let key = req
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Problem::malformed("The request has no Idempotency-Key header."))?;
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::malformed(format!("The request body could not be read ({e}).")))?;
        let envelope = serde_json::from_slice(&body)
            .map_err(|e| Problem::malformed(format!("The request body is not a step envelope ({e}).")))?;
        Ok(StepCall { key, envelope })
    }
}

/// Runs step work at most once per key. One per app, shared by its routes.
#[derive(Debug)]
pub struct Steps {
    dedupe: Dedupe,
    /// How long a forward step takes, so a person can watch progress live.
    pace: Duration,
}

impl Steps {
    pub fn new(pace: Duration) -> Arc<Self> {
        Arc::new(Steps { dedupe: Dedupe::default(), pace })
    }

    /// Answers `call` with `work`'s result, or with the stored answer if
    /// this key already has a final one. `work` is synchronous: the demo's
    /// state is in memory, and no lock is held across an await.
    pub async fn run(&self, call: StepCall, work: impl FnOnce(&Envelope) -> Result<Value, Problem>) -> Response {
        let StepCall { key, envelope } = call;
        let slot = self.dedupe.slot(&key);
        let mut stored = slot.lock().await;
        if let Some(answer) = stored.as_ref() {
            tracing::debug!(%key, status = answer.status.as_u16(), "repeated key: replaying the stored answer");
            return json_response(answer.status, &answer.body);
        }
        if envelope.phase == Phase::Forward && !self.pace.is_zero() {
            tokio::time::sleep(self.pace).await;
        }
        let answer = match work(&envelope) {
            Ok(body) => Answer { status: StatusCode::OK, body },
            Err(p) => Answer { status: p.status, body: p.body() },
        };
        tracing::info!(
            %key, workflow = %envelope.workflow, step = %envelope.step, attempt = envelope.attempt,
            status = answer.status.as_u16(), "step answered"
        );
        if answer.status.is_success() {
            self.dedupe.record_applied(&key);
        }
        // A retryable failure is not the key's final answer: the retry must
        // get through to the work.
        if !is_retryable(answer.status) {
            *stored = Some(answer.clone());
        }
        json_response(answer.status, &answer.body)
    }

    /// `GET /applied`: `{ "<idempotency key>": <times the work was applied> }`.
    pub fn routes(self: &Arc<Self>) -> Router {
        Router::new().route("/applied", get(applied)).with_state(self.clone())
    }
}

async fn applied(State(steps): State<Arc<Steps>>) -> Json<BTreeMap<String, u32>> {
    Json(steps.dedupe.applied())
}

/// An app whose routes are step endpoints run by its [`Steps`].
pub trait App: Send + Sync + 'static {
    fn steps(&self) -> &Steps;
}

/// A `POST` step endpoint doing `work` once per idempotency key.
pub fn post_step<A: App>(work: fn(&A, &Envelope) -> Result<Value, Problem>) -> MethodRouter<Arc<A>> {
    post(
        move |State(app): State<Arc<A>>, call: StepCall| async move { app.steps().run(call, |env| work(&app, env)).await },
    )
}
