//! A real herald on port 0 with its own SQLite directory, and real step
//! services on loopback whose answers each test scripts.

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
use herald_server::{Application, Config, config::ServiceConfig, workflows};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// The token [`TestApp::get`] reads operations with, on a secured server.
    pub token: Option<String>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    pub handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Starts herald with these workflow files, every service pointing at `svc`.
pub async fn spawn_app(workflow_files: &[&str], svc: &StepService) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), workflow_files, svc).await
}

pub async fn spawn_app_in(dir: tempfile::TempDir, workflow_files: &[&str], svc: &StepService) -> TestApp {
    spawn_app_with(dir, workflow_files, svc, |_| {}).await
}

/// As [`spawn_app_in`], with the configuration adjusted by `tweak`.
pub async fn spawn_app_with(
    dir: tempfile::TempDir,
    workflow_files: &[&str],
    svc: &StepService,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_app_merged(dir, workflow_files, svc, tweak, Router::new()).await
}

/// As [`spawn_app_with`], with `routes` served beside herald's own (as the demo's are).
pub async fn spawn_app_merged(
    dir: tempfile::TempDir,
    workflow_files: &[&str],
    svc: &StepService,
    tweak: impl FnOnce(&mut Config),
    routes: Router,
) -> TestApp {
    let mut config =
        Config { listen: "127.0.0.1:0".parse().unwrap(), data_dir: dir.path().join("data"), ..Config::default() };
    config.engine.poll_interval = herald_core::Span::from_millis(100);
    config.engine.shutdown_grace = herald_core::Span::from_millis(2000);
    config.limits.max_body_bytes = 64 * 1024;
    for name in ["svc", "other"] {
        config.services.insert(name.into(), ServiceConfig::new(vec![svc.url.clone()]));
    }
    tweak(&mut config);
    let defs =
        workflow_files.iter().map(|t| workflows::parse_checked("test.toml", t, &config.services).unwrap().1).collect();
    let app = Application::build_with(config, defs).await.expect("herald starts").merge(routes);
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp { base, http: reqwest::Client::new(), token: None, dir, stop: Some(stop), handle: Some(handle) }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn start(&self, workflow: &str, input: Value) -> reqwest::Response {
        self.http.post(self.url(&format!("/v1/workflows/{workflow}/operations"))).json(&input).send().await.unwrap()
    }

    /// Starts an operation and answers its id.
    pub async fn start_id(&self, workflow: &str, input: Value) -> String {
        let resp = self.start(workflow, input).await;
        assert_eq!(resp.status(), 202, "start answered {}", resp.status());
        resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    }

    /// GET of any path, answered as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn get(&self, id: &str) -> Value {
        let mut req = self.http.get(self.url(&format!("/v1/operations/{id}")));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Polls the operation until `pred` holds, failing after `limit`.
    pub async fn wait_for(&self, id: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let op = self.get(id).await;
            if pred(&op) {
                return op;
            }
            assert!(tokio::time::Instant::now() < deadline, "condition not met within {limit:?}; operation: {op:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_final(&self, id: &str) -> Value {
        self.wait_for(id, Duration::from_secs(20), |op| {
            matches!(op["status"].as_str(), Some("succeeded" | "failed" | "cancelled"))
        })
        .await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap().unwrap();
        self.dir
    }
}

pub fn event_types(op: &Value) -> Vec<String> {
    op["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
}

pub fn step<'a>(op: &'a Value, name: &str) -> &'a Value {
    op["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no step {name}"))
}

/// A port nothing listens on (yet): connections to it are refused.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How a scripted service answers one call.
#[derive(Clone)]
pub enum Reply {
    Json(Value),
    Status(u16, &'static str),
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
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let reply = {
        let mut s = script.lock().unwrap();
        let method = method.to_string();
        s.calls.push(Call { method, path: path.clone(), target, signature, raw, key, traceparent, attempt, body });
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

/// A workflow of named sequential steps on service `svc`, each at `/<name>`,
/// with a compensation at `/<name>/undo`; `extra` is added to the top.
pub fn sequential(name: &str, steps: &[&str], extra: &str) -> String {
    let mut s = format!("name = \"{name}\"\nlabel = \"Test run\"\n{extra}\n");
    for st in steps {
        s.push_str(&format!(
            "[[steps]]\nname = \"{st}\"\nlabel = \"Doing {st}\"\ndone_label = \"{st} done\"\ncall = {{ service = \"svc\", path = \"/{st}\" }}\nretry = {{ attempts = 3, initial = \"20ms\", max = \"100ms\" }}\ntimeout = \"5s\"\ncompensate = {{ service = \"svc\", path = \"/{st}/undo\" }}\n"
        ));
    }
    s
}

/// An answer read off a connection of its own.
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The problem document's `type`, if the body is one.
    pub fn problem_type(&self) -> String {
        let body: Value = serde_json::from_slice(&self.body).unwrap_or_default();
        body["type"].as_str().unwrap_or_default().to_string()
    }
}

/// Sends `request` (raw HTTP/1.1 with `Connection: close`, so any header,
/// `Host` included, is as written) on a new connection to herald, and reads
/// the answer until herald closes it (within 10 s).
pub async fn raw(app: &TestApp, request: &str) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf))
        .await
        .expect("herald closes the connection after its answer")
        .unwrap();
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(head) = resp.parse(&buf).unwrap() else { panic!("a partial answer: {buf:?}") };
    RawAnswer {
        status: resp.code.unwrap(),
        headers: resp
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        body: buf[head..].to_vec(),
    }
}
