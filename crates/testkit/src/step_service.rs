//! A real step service on loopback whose answers each test scripts, and
//! which records every call it gets (body, key, signature, trace).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::IntoResponse,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// How a scripted service answers one call.
#[derive(Clone)]
pub enum Reply {
    Json(Value),
    /// A problem document with this status and `detail`.
    Status(u16, &'static str),
    /// This status with this JSON body, as a framework's error page.
    JsonStatus(u16, Value),
    Accept,
    /// Waits for a permit, then answers the inner reply.
    Gate(Arc<Semaphore>, Box<Reply>),
    Sleep(Duration, Box<Reply>),
}

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// The path and query, as on the request line.
    pub target: String,
    /// `Herald-Signature`, when the service has a secret.
    pub signature: String,
    /// The body as it came, for checking its signature.
    pub raw: Bytes,
    pub key: String,
    pub traceparent: String,
    /// `Accept-Language`: on a step call, the operation's language.
    pub accept_language: String,
    /// `Herald-Attempt`, on pushed events.
    pub attempt: String,
    pub body: Value,
}

#[derive(Default)]
struct Script {
    queued: HashMap<String, VecDeque<Reply>>,
    fixed: HashMap<String, Reply>,
    calls: Vec<Call>,
}

#[derive(Clone)]
pub struct StepService {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl StepService {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// As [`StepService::start`], on a given port.
    pub async fn start_on(port: u16) -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new().fallback(handle).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        StepService { url, script }
    }

    /// Every call to `path` answers `reply` (after any queued replies).
    pub fn on(&self, path: &str, reply: Reply) -> &Self {
        self.script.lock().unwrap().fixed.insert(path.into(), reply);
        self
    }

    /// The next calls to `path` answer these, in order.
    pub fn then(&self, path: &str, replies: Vec<Reply>) -> &Self {
        self.script.lock().unwrap().queued.entry(path.into()).or_default().extend(replies);
        self
    }

    pub fn calls(&self, path: &str) -> Vec<Call> {
        self.script.lock().unwrap().calls.iter().filter(|c| c.path == path).cloned().collect()
    }

    pub fn all_calls(&self) -> Vec<Call> {
        self.script.lock().unwrap().calls.clone()
    }

    /// The service's ledger: how many calls came with each idempotency key.
    pub fn calls_per_key(&self) -> HashMap<String, usize> {
        let mut ledger = HashMap::new();
        for call in &self.script.lock().unwrap().calls {
            *ledger.entry(call.key.clone()).or_default() += 1;
        }
        ledger
    }
}

async fn handle(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> axum::response::Response {
    let path = uri.path().to_string();
    let target = uri.path_and_query().map_or(path.clone(), |p| p.to_string());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (key, traceparent, attempt) = (header("idempotency-key"), header("traceparent"), header("herald-attempt"));
    let signature = header(herald_core::signature::HEADER);
    let accept_language = header("accept-language");
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let reply = {
        let mut s = script.lock().unwrap();
        let method = method.to_string();
        let call = Call {
            method,
            path: path.clone(),
            target,
            signature,
            raw,
            key,
            traceparent,
            accept_language,
            attempt,
            body,
        };
        s.calls.push(call);
        let queued = s.queued.get_mut(&path).and_then(VecDeque::pop_front);
        queued.or_else(|| s.fixed.get(&path).cloned()).unwrap_or_else(|| Reply::Json(json!({ "done": path })))
    };
    answer(reply).await
}

fn answer(reply: Reply) -> futures::future::BoxFuture<'static, axum::response::Response> {
    Box::pin(async move {
        match reply {
            Reply::Json(v) => axum::Json(v).into_response(),
            Reply::Status(code, detail) => (
                StatusCode::from_u16(code).unwrap(),
                [("content-type", "application/problem+json")],
                json!({ "title": "step failed", "detail": detail }).to_string(),
            )
                .into_response(),
            Reply::JsonStatus(code, v) => (StatusCode::from_u16(code).unwrap(), axum::Json(v)).into_response(),
            Reply::Accept => StatusCode::ACCEPTED.into_response(),
            Reply::Gate(gate, inner) => {
                gate.acquire().await.unwrap().forget();
                answer(*inner).await
            }
            Reply::Sleep(d, inner) => {
                tokio::time::sleep(d).await;
                answer(*inner).await
            }
        }
    })
}
