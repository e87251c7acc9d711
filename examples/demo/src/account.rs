//! The account service: the steps of `delete-account` (delete each kind of
//! record a user has, then send a farewell email). The audit store is
//! deliberately flaky so herald's retries can be seen working.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, extract::State, middleware, routing::get};
use herald_sdk::load::{Load, Seen};
use herald_sdk::step::{Envelope, StepReply};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    lock,
    mail::Mailbox,
    step::{App, Steps, post_step},
};

/// How many times per operation the audit store is busy before it works.
const AUDIT_BUSY_TIMES: u32 = 2;

/// The kinds of record a user has, with how many the demo pretends each
/// user starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Records {
    Transactions,
    Logs,
    Audit,
    DomainData,
    Account,
}

impl Records {
    fn seeded(self) -> u64 {
        match self {
            Records::Transactions => 17,
            Records::Logs => 342,
            Records::Audit => 58,
            Records::DomainData => 9,
            Records::Account => 1,
        }
    }
}

#[derive(Debug, Deserialize)]
struct User {
    user_id: String,
}

#[derive(Debug, Deserialize)]
struct Recipient {
    email: String,
}

#[derive(Debug)]
struct Accounts {
    steps: Arc<Steps>,
    mailbox: Arc<Mailbox>,
    /// Records left per (kind, user). Users are seeded on first sight, so
    /// any `user_id` has something to delete, and a second delete finds 0.
    records: Mutex<HashMap<(Records, String), u64>>,
    /// Audit attempts per operation id, for the busy-then-fine behaviour.
    audit_attempts: Mutex<HashMap<String, u32>>,
    /// How hard herald presses the audit store (`GET /audit/load`).
    audit_load: Arc<Load>,
}

impl App for Accounts {
    fn steps(&self) -> &Steps {
        &self.steps
    }
}

pub fn router(pace: Duration) -> Router {
    let accounts = Arc::new(Accounts {
        steps: Steps::new(pace),
        mailbox: Mailbox::new(),
        records: Mutex::default(),
        audit_attempts: Mutex::default(),
        audit_load: Arc::default(),
    });
    let audit = Router::new()
        .route("/audit/delete", post_step(Accounts::delete_audit))
        .route_layer(middleware::from_fn_with_state(accounts.audit_load.clone(), Load::count));
    Router::new()
        .route("/transactions/delete", post_step(|a: &Accounts, env| a.delete(env, Records::Transactions)))
        .route("/logs/delete", post_step(|a: &Accounts, env| a.delete(env, Records::Logs)))
        .merge(audit)
        .route("/audit/load", get(load))
        .route("/domain-data/delete", post_step(|a: &Accounts, env| a.delete(env, Records::DomainData)))
        .route("/accounts/delete", post_step(|a: &Accounts, env| a.delete(env, Records::Account)))
        .route("/mail/farewell", post_step(Accounts::farewell))
        .with_state(accounts.clone())
        .merge(accounts.steps.routes())
        .merge(accounts.mailbox.routes())
}

/// `GET /audit/load`: `{ "in_flight", "peak", "calls" }` of the audit store.
async fn load(State(a): State<Arc<Accounts>>) -> Json<Seen> {
    Json(a.audit_load.seen())
}

impl Accounts {
    fn delete(&self, env: &Envelope, kind: Records) -> Result<Value, StepReply> {
        let User { user_id } = env.input()?;
        let mut records = lock(&self.records);
        let left = records.entry((kind, user_id)).or_insert_with(|| kind.seeded());
        let deleted = std::mem::take(left);
        Ok(json!({ "deleted": deleted }))
    }

    fn delete_audit(&self, env: &Envelope) -> Result<Value, StepReply> {
        env.input::<User>()?;
        let attempt = {
            let mut attempts = lock(&self.audit_attempts);
            let n = attempts.entry(env.operation_id.clone()).or_default();
            *n += 1;
            *n
        };
        if attempt <= AUDIT_BUSY_TIMES {
            return Err(StepReply::retry(crate::words::Lang::of(env).audit_busy()));
        }
        self.delete(env, Records::Audit)
    }

    fn farewell(&self, env: &Envelope) -> Result<Value, StepReply> {
        let Recipient { email } = env.input()?;
        // Tell the user what was actually deleted, from the steps' own results.
        let deleted: Vec<String> = [
            ("delete-transactions", "transactions"),
            ("delete-logs", "log entries"),
            ("delete-audit-logs", "audit records"),
            ("delete-domain-data", "other records"),
        ]
        .iter()
        .filter_map(|(step, what)| env.result(step, "deleted").and_then(Value::as_u64).map(|n| format!("{n} {what}")))
        .collect();
        let with = if deleted.is_empty() { String::new() } else { format!(", together with {}", deleted.join(", ")) };
        let body = format!(
            "Hello,\n\nyour account has been deleted{with}.\n\nGoodbye, and thank you for having been with us."
        );
        let message_id = self.mailbox.send(&env.operation_id, &email, "Your account has been deleted", body);
        Ok(json!({ "message_id": message_id }))
    }
}
