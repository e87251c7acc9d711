//! Notifications to channels beyond the inbox: a signed POST to the
//! configured webhook, or an email over SMTP; retried with backoff,
//! dead-lettered when exhausted. An operation's final email is the last
//! use of the address: once it is out (or given up), the workflow's
//! `redact` fields are erased.

use std::time::Duration;

use chrono::Utc;
use herald_core::{
    Command, TaskKind,
    notify::Channel,
    retry::{AttemptError, RetryPolicy},
    signature,
    workflow::raw::RawRetry,
};
use herald_store::{DeadLetter, DeadLetterKind, Task};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::header::ContentType,
    transport::smtp::authentication::Credentials,
};
use serde_json::Value;

use super::Engine;
use crate::config::{EmailConfig, EmailTls, ServiceConfig, WebhookConfig};

/// 8 attempts from 1 s, doubling, at most 5 minutes apart.
fn policy(raw: Option<RawRetry>, what: &str) -> anyhow::Result<RetryPolicy> {
    let defaults = RawRetry {
        attempts: Some(8),
        initial: Some(herald_core::Span::from_millis(1000)),
        max: Some(herald_core::Span::from_millis(300_000)),
        ..Default::default()
    };
    RetryPolicy::from_raw(raw.unwrap_or(defaults)).map_err(|(f, m)| anyhow::anyhow!("{what}.retry.{f}: {m}"))
}

pub struct Webhook {
    /// The path on the webhook's origin, which the registry knows as the
    /// service [`WEBHOOK_SERVICE`] (so deliveries get its circuit breaker).
    path: String,
    secret: Vec<u8>,
    timeout: Duration,
    retry: RetryPolicy,
}

/// The registry's name for the webhook's origin.
pub const WEBHOOK_SERVICE: &str = "herald.webhook";

impl Webhook {
    /// The webhook, and the service its calls go to: the URL's origin
    /// (`scheme://host:port`) with the webhook's circuit breaker.
    pub fn new(c: WebhookConfig) -> anyhow::Result<(Self, ServiceConfig)> {
        let rest = c.url.strip_prefix("http://").or_else(|| c.url.strip_prefix("https://"));
        let Some(rest) = rest.filter(|r| !r.is_empty()) else {
            anyhow::bail!("webhook.url must be an http(s) URL");
        };
        anyhow::ensure!(c.secret.len() >= 16, "webhook.secret needs at least 16 characters");
        let split = rest.find('/').unwrap_or(rest.len());
        let origin = c.url[..c.url.len() - rest.len() + split].to_string();
        let path = if split == rest.len() { "/".to_string() } else { rest[split..].to_string() };
        let timeout = c.timeout.map_or(Duration::from_secs(10), |t| t.0);
        let hook = Webhook { path, secret: c.secret.into_bytes(), timeout, retry: policy(c.retry, "webhook")? };
        let mut service = ServiceConfig::new(vec![origin]);
        if let Some(circuit) = c.circuit {
            service.circuit = circuit;
        }
        Ok((hook, service))
    }
}

pub struct Email {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    retry: RetryPolicy,
}

impl Email {
    pub fn new(c: EmailConfig) -> anyhow::Result<Self> {
        let builder = match c.tls {
            EmailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
            EmailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)?,
            EmailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host)?,
        };
        let mut builder = builder.port(c.port).timeout(Some(c.timeout.map_or(Duration::from_secs(10), |t| t.0)));
        if let (Some(user), Some(pass)) = (c.username, c.password) {
            builder = builder.credentials(Credentials::new(user, pass));
        }
        let from = c.from.parse().map_err(|e| anyhow::anyhow!("email.from: {e}"))?;
        Ok(Email { mailer: builder.build(), from, retry: policy(c.retry, "email")? })
    }
}

/// Why a delivery did not land, and whether trying again could help.
struct Failure {
    error: String,
    retryable: bool,
}

impl Engine {
    pub(super) async fn deliver(
        &self,
        task: Task,
        channel: Channel,
        attempt: u32,
        payload: Value,
    ) -> herald_store::Result<()> {
        // A receiver whose circuit is open is waited for without spending
        // an attempt, as a step waits for its service.
        if channel == Channel::Webhook
            && let Some(wait) = self.service_unavailable(WEBHOOK_SERVICE)
        {
            return self.defer(task, wait).await;
        }
        let (outcome, retry) = match channel {
            Channel::Webhook => match &self.0.webhook {
                Some(hook) => (self.post(hook, task.id, &payload).await, hook.retry.clone()),
                None => (
                    Err(Failure { error: "no webhook is configured".into(), retryable: false }),
                    RetryPolicy::default(),
                ),
            },
            Channel::Email => match &self.0.email {
                Some(email) => (send(email, &payload).await, email.retry.clone()),
                None => (
                    Err(Failure { error: "no email server is configured".into(), retryable: false }),
                    RetryPolicy::default(),
                ),
            },
            Channel::Inbox => (Ok(()), RetryPolicy::default()),
        };
        let last_use = payload["final"] == true;
        let failure = match outcome {
            Ok(()) => {
                self.0.store.finish_task(task.id).await?;
                return self.after_last_use(&task, last_use).await;
            }
            Err(f) => f,
        };
        if !failure.retryable || retry.exhausted(attempt) {
            tracing::warn!(operation_id = %task.op, attempts = attempt, error = %failure.error, "a notification is dead-lettered");
            let mut payload = payload;
            if last_use && let Some(to) = payload.get_mut("to") {
                *to = Value::String("(erased)".into());
            }
            let now = Utc::now();
            let letter = DeadLetter {
                id: 0,
                kind: if channel == Channel::Email { DeadLetterKind::Email } else { DeadLetterKind::Webhook },
                subscription: None,
                topic: None,
                workflow: payload["workflow"].as_str().map(str::to_string),
                operation_id: Some(task.op.clone()),
                step: None,
                attempts: attempt,
                errors: vec![AttemptError { attempt, at: now, error: failure.error.clone() }],
                error: failure.error,
                payload,
                created_at: now,
            };
            self.0.store.dead_letter(task.id, letter).await?;
            return self.after_last_use(&task, last_use).await;
        }
        let due = Utc::now()
            + chrono::Duration::from_std(retry.delay_before(attempt + 1, rand::random())).unwrap_or_default();
        let kind = TaskKind::Deliver { channel, attempt: attempt + 1, payload };
        if self.0.store.retry_task(task.id, kind.clone(), due).await? {
            self.schedule(Task { id: task.id, op: task.op, kind, due, owned: false }, None);
        }
        Ok(())
    }

    /// The final email is out or given up: the address has had its last
    /// use. An earlier email that lands after the erasure leaves its task's
    /// copy of the address behind on disk, so that is cleaned too.
    async fn after_last_use(&self, task: &Task, last_use: bool) -> herald_store::Result<()> {
        if last_use {
            self.apply(&task.op, None, Command::Redact).await?;
        } else if self.0.store.get(&task.op).await?.is_some_and(|op| !op.redacted.is_empty()) {
            self.0.store.erase_residue().await?;
        }
        Ok(())
    }

    async fn post(&self, hook: &Webhook, delivery: i64, payload: &Value) -> Result<(), Failure> {
        let body = serde_json::to_vec(payload).map_err(|e| Failure { error: e.to_string(), retryable: false })?;
        let signed = signature::sign(&hook.secret, Utc::now().timestamp(), &body);
        let service = self
            .0
            .services
            .service(WEBHOOK_SERVICE)
            .ok_or_else(|| Failure { error: "the webhook is not registered".into(), retryable: false })?;
        let lease = service.pick(&[]).map_err(|_| Failure {
            error: "the receiver keeps failing; waiting before trying again".into(),
            retryable: true,
        })?;
        let sent = service
            .client()
            .post(format!("{}{}", lease.base(), hook.path))
            .timeout(hook.timeout)
            .header("content-type", "application/json")
            .header(signature::HEADER, signed)
            .header("herald-delivery", delivery.to_string())
            .body(body)
            .send()
            .await;
        lease.finish(sent.as_ref().is_ok_and(|r| !r.status().is_server_error()));
        let error = match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("the receiver answered {}", r.status()),
            Err(e) if e.is_timeout() => "the receiver did not answer in time".into(),
            Err(_) => "the receiver could not be reached".into(),
        };
        Err(Failure { error, retryable: true })
    }
}

async fn send(email: &Email, payload: &Value) -> Result<(), Failure> {
    let permanent = |error: String| Failure { error, retryable: false };
    let to = payload["to"].as_str().unwrap_or_default();
    let to = to.parse().map_err(|_| permanent(format!("`{to}` is not an email address")))?;
    let message = Message::builder()
        .from(email.from.clone())
        .to(to)
        .subject(payload["subject"].as_str().unwrap_or_default())
        .header(ContentType::TEXT_PLAIN)
        .body(payload["body"].as_str().unwrap_or_default().to_string())
        .map_err(|e| permanent(e.to_string()))?;
    email
        .mailer
        .send(message)
        .await
        .map(drop)
        .map_err(|e| Failure { error: format!("the mail server did not take it: {e}"), retryable: !e.is_permanent() })
}
