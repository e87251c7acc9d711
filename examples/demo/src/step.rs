//! How the in-memory step endpoints behave, whichever app they live in:
//! the SDK's [`StepCall`] reads herald's envelope and key; here a repeated
//! `Idempotency-Key` is answered from the store, the pace is waited out,
//! the work done and its reply kept if it is final.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{MethodRouter, get, post},
};
use herald_core::task::Phase;
use herald_sdk::step::{Envelope, StepCall, StepReply};
use serde_json::Value;

use crate::dedupe::Dedupe;

/// Runs step work at most once per key. One per app, shared by its routes.
#[derive(Debug)]
pub struct Steps {
    dedupe: Dedupe,
    pace: Duration,
}

impl Steps {
    pub fn new(pace: Duration) -> Arc<Self> {
        Arc::new(Steps { dedupe: Dedupe::default(), pace })
    }

    /// Answers `call` with `work`'s reply, or with the kept reply if this
    /// key already has a final one. `work` is synchronous: the state is in
    /// memory, and no lock is held across an await.
    pub async fn run(&self, call: StepCall, work: impl FnOnce(&Envelope) -> Result<Value, StepReply>) -> StepReply {
        let StepCall { key, envelope, .. } = call;
        let slot = self.dedupe.slot(&key);
        let mut kept = slot.lock().await;
        if let Some(reply) = kept.as_ref() {
            tracing::debug!(%key, "repeated key: replaying the kept reply");
            return reply.clone();
        }
        pace(self.pace, &envelope).await;
        let reply = work(&envelope).map_or_else(|failed| failed, StepReply::Done);
        log(&key, &envelope, &reply);
        if matches!(reply, StepReply::Done(_)) {
            self.dedupe.record_applied(&key);
        }
        // A reply asking herald to retry is not the key's final answer: the
        // retry must get through to the work.
        if reply.is_final() {
            *kept = Some(reply.clone());
        }
        reply
    }

    /// `GET /applied`: `{ "<idempotency key>": <times the work was applied> }`.
    pub fn routes(self: &Arc<Self>) -> Router {
        Router::new().route("/applied", get(applied)).with_state(self.clone())
    }
}

async fn applied(State(steps): State<Arc<Steps>>) -> Json<BTreeMap<String, u32>> {
    Json(steps.dedupe.applied())
}

/// Waits out the pace of a forward step, so a person can watch progress
/// live; undoing is not paced.
pub async fn pace(pace: Duration, envelope: &Envelope) {
    if envelope.phase == Phase::Forward && !pace.is_zero() {
        tokio::time::sleep(pace).await;
    }
}

pub fn log(key: &str, envelope: &Envelope, reply: &StepReply) {
    tracing::info!(
        %key, workflow = %envelope.workflow, step = %envelope.step, attempt = envelope.attempt,
        status = reply.parts().0.as_u16(), "step answered"
    );
}

/// A failure for good with a status of its own (409 sold out, 402 declined,
/// 404 nowhere); `detail` is what herald shows the shopper.
pub fn refuse(status: StatusCode, detail: impl Into<String>) -> StepReply {
    StepReply::Failed { status, detail: detail.into() }
}

/// An app whose routes are step endpoints run by its [`Steps`].
pub trait App: Send + Sync + 'static {
    fn steps(&self) -> &Steps;
}

/// A `POST` step endpoint doing `work` once per idempotency key.
pub fn post_step<A: App>(work: fn(&A, &Envelope) -> Result<Value, StepReply>) -> MethodRouter<Arc<A>> {
    post(
        move |State(app): State<Arc<A>>, call: StepCall| async move { app.steps().run(call, |env| work(&app, env)).await },
    )
}
