//! The client: start and follow operations, publish events, consume pull
//! subscriptions. One `reqwest` connection pool, cheap to clone.

use std::time::Duration;

use herald_broker::{CloudEvent, Message, Nacked, Published};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{Error, OperationView, Result};

/// A herald server, as one service (or admin, or end user) sees it.
///
/// ```no_run
/// # async fn run() -> herald_sdk::Result<()> {
/// let herald = herald_sdk::Client::new("http://127.0.0.1:7070").with_token("service-token");
/// let op = herald.start("place-order", &serde_json::json!({"customer": "alice"})).await?;
/// println!("{} is {:?}", op.operation.id, op.operation.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// How to start an operation.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// Retries with the same key and input return the same operation.
    pub idempotency_key: Option<String>,
    /// Wait up to this long for the operation to end before answering.
    pub wait: Option<Duration>,
    /// Who the operation is about, when the workflow does not say.
    pub subject: Option<String>,
}

/// What a `nack` asks for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Nack {
    /// Go out again after this long; default the subscription's backoff.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "span")]
    pub delay: Option<Duration>,
    /// `Some(false)`: the event can never be processed; dead-letter it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn span<S: serde::Serializer>(d: &Option<Duration>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format!("{}ms", d.as_millis())),
        None => s.serialize_none(),
    }
}

/// Where a step that answered 202 reports its result (from its envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    pub url: String,
    pub token: String,
}

#[derive(Deserialize)]
struct Events {
    events: Vec<Published>,
}

#[derive(Deserialize)]
struct Pulled {
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Acked {
    unknown: Vec<String>,
}

impl Client {
    pub fn new(base_url: impl Into<String>) -> Self {
        // One TLS provider for the process (ring), as herald itself uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().tcp_nodelay(true).build().expect("an HTTP client with default settings");
        Client { http, base: base_url.into().trim_end_matches('/').to_string(), token: None }
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Starts an operation of `workflow`: answers once it is durable.
    pub async fn start(&self, workflow: &str, input: &Value) -> Result<OperationView> {
        self.start_with(workflow, input, &Start::default()).await
    }

    pub async fn start_with(&self, workflow: &str, input: &Value, opts: &Start) -> Result<OperationView> {
        let mut req = self.request(Method::POST, &format!("/v1/workflows/{workflow}/operations")).json(input);
        if let Some(k) = &opts.idempotency_key {
            req = req.header("idempotency-key", k);
        }
        if let Some(w) = opts.wait {
            req = req.header("prefer", format!("wait={}", w.as_secs().max(1)));
        }
        if let Some(s) = &opts.subject {
            req = req.header("herald-subject", s);
        }
        answer(req).await
    }

    pub async fn operation(&self, id: &str) -> Result<OperationView> {
        answer(self.request(Method::GET, &format!("/v1/operations/{id}"))).await
    }

    pub async fn cancel(&self, id: &str, reason: &str) -> Result<OperationView> {
        answer(self.request(Method::POST, &format!("/v1/operations/{id}:cancel")).json(&json!({"reason": reason})))
            .await
    }

    /// Publishes one event; durable when it answers.
    pub async fn publish(&self, topic: &str, event: &CloudEvent) -> Result<Published> {
        let mut out = self.publish_batch(topic, std::slice::from_ref(event)).await?;
        out.pop().ok_or_else(|| Error::Decode("herald answered no event".into()))
    }

    /// Publishes events in order, in one request.
    pub async fn publish_batch(&self, topic: &str, events: &[CloudEvent]) -> Result<Vec<Published>> {
        let body = serde_json::to_vec(events).map_err(|e| Error::Decode(e.to_string()))?;
        let req = self
            .request(Method::POST, &format!("/v1/topics/{topic}/events"))
            .header("content-type", "application/cloudevents-batch+json")
            .body(body);
        Ok(answer::<Events>(req).await?.events)
    }

    /// Leases up to `max` events of a pull subscription, waiting up to `wait`
    /// (at most 30 s) when none is due.
    pub async fn pull(&self, sub: &str, max: usize, wait: Duration) -> Result<Vec<Message>> {
        let body = json!({"max": max, "wait": format!("{}ms", wait.as_millis())});
        let req = self.request(Method::POST, &format!("/v1/subscriptions/{sub}:pull")).json(&body);
        Ok(answer::<Pulled>(req).await?.messages)
    }

    /// Acknowledges; answers the ack ids whose lease had already ended.
    pub async fn ack(&self, sub: &str, ack_ids: &[String]) -> Result<Vec<String>> {
        let req =
            self.request(Method::POST, &format!("/v1/subscriptions/{sub}:ack")).json(&json!({"ack_ids": ack_ids}));
        Ok(answer::<Acked>(req).await?.unknown)
    }

    pub async fn nack(&self, sub: &str, ack_ids: &[String], nack: &Nack) -> Result<Nacked> {
        let mut body = serde_json::to_value(nack).map_err(|e| Error::Decode(e.to_string()))?;
        body["ack_ids"] = json!(ack_ids);
        answer(self.request(Method::POST, &format!("/v1/subscriptions/{sub}:nack")).json(&body)).await
    }

    /// Completes a step that answered 202, with its result or the reason it failed.
    pub async fn complete(&self, callback: &Callback, outcome: std::result::Result<Value, String>) -> Result<()> {
        let body = match outcome {
            Ok(result) => json!({"result": result}),
            Err(error) => json!({"error": error, "retryable": false}),
        };
        let req = self.http.post(&callback.url).bearer_auth(&callback.token).json(&body);
        answer::<Value>(req).await.map(drop)
    }
}

/// Sends the request; a 2xx body as `T`, anything else as the problem it is.
pub(crate) async fn answer<T: DeserializeOwned>(req: RequestBuilder) -> Result<T> {
    let resp = req.send().await?;
    let status = resp.status();
    if status.is_success() {
        return resp.json::<T>().await.map_err(|e| Error::Decode(e.to_string()));
    }
    Err(problem(status, &resp.bytes().await.unwrap_or_default()))
}

pub(crate) fn problem(status: StatusCode, body: &[u8]) -> Error {
    let p: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    Error::Problem {
        status: status.as_u16(),
        kind: text("type").unwrap_or_else(|| "about:blank".into()),
        detail: text("detail").unwrap_or_else(|| status.to_string()),
    }
}
