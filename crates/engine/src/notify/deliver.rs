//! Notifications to channels beyond the inbox: a signed POST to the
//! configured webhook, or an email over SMTP; retried with backoff,
//! dead-lettered when exhausted. Both receivers are services of the
//! registry (`herald.webhook`, `herald.email`), so a delivery is admitted
//! like any call: it waits, spending no attempt, while herald holds the
//! receiver back or cannot connect to it. An operation's final email is
//! the last use of the address: once it is out (or given up), the
//! workflow's `redact` fields are erased.

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

use herald_gateway::registry::{Lease, ServiceConfig, Verdict};

use crate::{
    Engine,
    config::{EmailConfig, EmailTls, WebhookConfig},
    spans, turn,
};
use herald_trace::SpanKind;

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

/// The registry's name for the SMTP server.
pub const EMAIL_SERVICE: &str = "herald.email";

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
    /// For the whole exchange of one attempt. lettre's own timeout covers
    /// only the connect: a server that takes the connection and then says
    /// nothing (or stalls mid-message) would hold the delivery forever.
    timeout: Duration,
    retry: RetryPolicy,
}

impl Email {
    /// The mailer, and the service its sends go through (the SMTP server's
    /// address, with the default breaker and limit).
    pub fn new(c: EmailConfig) -> anyhow::Result<(Self, ServiceConfig)> {
        let service = ServiceConfig::new(vec![format!("smtp://{}:{}", c.host, c.port)]);
        let builder = match c.tls {
            EmailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
            EmailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)?,
            EmailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host)?,
        };
        let timeout = c.timeout.map_or(Duration::from_secs(10), |t| t.0);
        let mut builder = builder.port(c.port).timeout(Some(timeout));
        if let (Some(user), Some(pass)) = (c.username, c.password) {
            builder = builder.credentials(Credentials::new(user, pass));
        }
        let from = c.from.parse().map_err(|e| anyhow::anyhow!("email.from: {e}"))?;
        Ok((Email { mailer: builder.build(), from, timeout, retry: policy(c.retry, "email")? }, service))
    }
}

/// Why a delivery did not land, and whether trying again could help.
struct Failure {
    error: String,
    retryable: bool,
}

impl Failure {
    fn permanent(error: impl Into<String>) -> Self {
        Failure { error: error.into(), retryable: false }
    }
}

impl Engine {
    pub(crate) async fn deliver(
        &self,
        task: Task,
        channel: Channel,
        attempt: u32,
        payload: Value,
    ) -> herald_store::Result<()> {
        let service = match channel {
            Channel::Webhook => self.0.services.service(WEBHOOK_SERVICE),
            Channel::Email => self.0.services.service(EMAIL_SERVICE),
            Channel::Inbox => None,
        };
        // The operation's trace, read only when spans go somewhere.
        let traced = match (&service, self.0.tracer.is_on()) {
            (Some(_), true) => self.0.store.get(&task.op).await?.map(|op| (spans::context(&op), spans::about(&op))),
            _ => None,
        };
        let (span, began) = (herald_trace::new_id(), std::time::SystemTime::now());
        let traceparent = traced.as_ref().map(|(cx, _)| cx.child(span).to_string());
        let lease = match &service {
            Some(svc) => match self.turn(svc, &task, None).await? {
                turn::Turn::Go { lease, .. } => Some(lease),
                turn::Turn::Later => return Ok(()),
            },
            None => None,
        };
        let (outcome, retry) = match (channel, lease) {
            (Channel::Webhook, Some(lease)) if let Some(hook) = &self.0.webhook => {
                (post(hook, task.id.row, &payload, lease, traceparent).await, hook.retry.clone())
            }
            (Channel::Email, Some(lease)) if let Some(email) = &self.0.email => {
                (send(email, &payload, lease).await, email.retry.clone())
            }
            (Channel::Inbox, _) => (Sent::Done, RetryPolicy::default()),
            (Channel::Webhook, _) => {
                (Sent::Failed(Failure::permanent("no webhook is configured")), RetryPolicy::default())
            }
            (Channel::Email, _) => {
                (Sent::Failed(Failure::permanent("no email server is configured")), RetryPolicy::default())
            }
        };
        let last_use = payload["final"] == true;
        let channel_name = match channel {
            Channel::Inbox => "inbox",
            Channel::Webhook => "webhook",
            Channel::Email => "email",
        };
        if let Some((cx, about)) = traced {
            let mut s = herald_trace::Span::under(&cx, cx.span(), format!("notify {channel_name}"), SpanKind::Client);
            (s.id, s.start, s.end, s.attributes) = (span, began, std::time::SystemTime::now(), about);
            s.attributes.push(herald_trace::KeyValue::new("herald.notification.channel", channel_name));
            s.attributes.push(herald_trace::KeyValue::new("herald.attempt", i64::from(attempt)));
            s.error = match &outcome {
                Sent::Done => None,
                Sent::Not => Some("the receiver could not be reached; nothing was sent".into()),
                Sent::Failed(f) => Some(f.error.clone()),
            };
            self.0.tracer.record(s);
        }
        let counted = |outcome| self.0.metrics.operations.notified(channel_name, outcome);
        let failure = match outcome {
            Sent::Done => {
                counted("delivered");
                self.0.store.finish_task(task.id).await?;
                return self.after_last_use(&task, last_use).await;
            }
            // Nothing reached the receiver: the same attempt goes again.
            Sent::Not => return self.defer(task, turn::UNREACHABLE_RECHECK).await,
            Sent::Failed(f) => f,
        };
        if !failure.retryable || retry.exhausted(attempt) {
            tracing::warn!(operation_id = %task.op, attempts = attempt, error = %failure.error, "a notification is dead-lettered");
            counted("dead_lettered");
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
        counted("retried");
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
}

/// What one delivery came to.
enum Sent {
    Done,
    /// No connection could be made: nothing was sent, no attempt spent.
    Not,
    Failed(Failure),
}

async fn post(hook: &Webhook, delivery: i64, payload: &Value, lease: Lease, traceparent: Option<String>) -> Sent {
    let body = match serde_json::to_vec(payload) {
        Ok(b) => b,
        Err(e) => return Sent::Failed(Failure::permanent(e.to_string())),
    };
    let url = format!("{}{}", lease.base(), hook.path);
    let mut request = lease.service().client().post(&url);
    if let Some(signed) = herald_gateway::registry::sign(&hook.secret, "POST", &url, &body) {
        request = request.header(signature::HEADER, signed);
    }
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let sent = request
        .timeout(hook.timeout)
        .header("content-type", "application/json")
        .header("herald-delivery", delivery.to_string())
        .body(body)
        .send()
        .await;
    let (verdict, error) = match &sent {
        Ok(r) if r.status().is_success() => (Verdict::of_status(r.status().as_u16()), None),
        Ok(r) => (Verdict::of_status(r.status().as_u16()), Some(format!("the receiver answered {}", r.status()))),
        Err(e) if e.is_connect() => (Verdict::Unreachable, None),
        Err(e) if e.is_timeout() => (Verdict::TimedOut, Some("the receiver did not answer in time".into())),
        Err(_) => (Verdict::Failed, Some("the connection to the receiver failed".into())),
    };
    lease.finish(verdict);
    match (verdict, error) {
        (Verdict::Unreachable, _) => Sent::Not,
        (_, None) => Sent::Done,
        (_, Some(error)) => Sent::Failed(Failure { error, retryable: true }),
    }
}

/// `Content-Language` (RFC 3282), which lettre has no type for: the
/// language the email is written in, for mail clients and screen readers.
#[derive(Clone)]
struct ContentLanguage(String);

impl lettre::message::header::Header for ContentLanguage {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ContentLanguage(s.to_string()))
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        // Only tags herald checked (`lang::valid_tag`) reach here: plain ASCII.
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

async fn send(email: &Email, payload: &Value, lease: Lease) -> Sent {
    let to = payload["to"].as_str().unwrap_or_default();
    let Ok(to) = to.parse() else {
        return Sent::Failed(Failure::permanent(format!("`{to}` is not an email address")));
    };
    let message = Message::builder()
        .from(email.from.clone())
        .to(to)
        .subject(payload["subject"].as_str().unwrap_or_default())
        .header(ContentType::TEXT_PLAIN)
        .header(ContentLanguage(payload["lang"].as_str().unwrap_or(herald_core::lang::DEFAULT).to_string()))
        .body(payload["body"].as_str().unwrap_or_default().to_string());
    let message = match message {
        Ok(m) => m,
        Err(e) => return Sent::Failed(Failure::permanent(e.to_string())),
    };
    let e = match tokio::time::timeout(email.timeout, email.mailer.send(message)).await {
        Ok(Ok(_)) => {
            lease.finish(Verdict::Answered);
            return Sent::Done;
        }
        Ok(Err(e)) => e,
        Err(_) => {
            lease.finish(Verdict::TimedOut);
            let error = format!("the mail server did not answer within {}", humantime::format_duration(email.timeout));
            return Sent::Failed(Failure { error, retryable: true });
        }
    };
    // SMTP's 4xx is the server shedding load; 5xx refuses this message only.
    let verdict = match () {
        _ if never_connected(&e) => Verdict::Unreachable,
        _ if e.is_transient() => Verdict::Busy,
        _ if e.is_permanent() => Verdict::Answered,
        _ if e.is_timeout() => Verdict::TimedOut,
        _ => Verdict::Failed,
    };
    lease.finish(verdict);
    if verdict == Verdict::Unreachable {
        return Sent::Not;
    }
    Sent::Failed(Failure { error: format!("the mail server did not take it: {e}"), retryable: !e.is_permanent() })
}

/// The connection to the mail server was never made (lettre tells the
/// kind only in its source chain).
fn never_connected(e: &lettre::transport::smtp::Error) -> bool {
    use std::io::ErrorKind::{AddrNotAvailable, ConnectionRefused, HostUnreachable, NetworkUnreachable};
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable);
        }
        source = s.source();
    }
    false
}
