//! An in-memory mailbox standing in for an email provider: both apps
//! "send" mail by filing it here, and `GET /outbox` shows what went out.

use std::sync::{Arc, Mutex};

use axum::{Json, Router, extract::State, routing::get};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{lock, new_id};

#[derive(Debug, Clone, Serialize)]
pub struct Mail {
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub sent_at: DateTime<Utc>,
    pub operation_id: String,
}

#[derive(Debug, Default)]
pub struct Mailbox(Mutex<Vec<Mail>>);

impl Mailbox {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Files a message and returns its id.
    pub fn send(&self, operation_id: &str, to: &str, subject: &str, body: String) -> String {
        let message_id = new_id("msg");
        lock(&self.0).push(Mail {
            message_id: message_id.clone(),
            to: to.to_string(),
            subject: subject.to_string(),
            body,
            sent_at: Utc::now(),
            operation_id: operation_id.to_string(),
        });
        message_id
    }

    /// Newest first, as a mail client lists them.
    pub fn list(&self) -> Vec<Mail> {
        lock(&self.0).iter().rev().cloned().collect()
    }

    /// `GET /outbox`.
    pub fn routes(self: &Arc<Self>) -> Router {
        Router::new().route("/outbox", get(sent)).with_state(self.clone())
    }
}

async fn sent(State(mailbox): State<Arc<Mailbox>>) -> Json<Vec<Mail>> {
    Json(mailbox.list())
}
