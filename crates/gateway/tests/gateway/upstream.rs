//! The upstream services of the gateway tests: real processes (this test
//! binary run again as `upstream_process`), so one can be killed mid-test.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, Version, header},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use futures::StreamExt;
use serde_json::{Value, json};

/// A running upstream; killed when dropped.
pub struct Upstream {
    pub url: String,
    child: Child,
}

impl Upstream {
    pub fn start(name: &str) -> Self {
        // reqwest (in `set`, `calls`) needs a crypto provider even for http.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["upstream_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("HERALD_UPSTREAM", name)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let url = loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "upstream {name} did not start");
            if let Some(at) = line.find("listening ") {
                break line[at + "listening ".len()..].trim().to_string();
            }
        };
        Upstream { url, child }
    }

    /// SIGKILL, mid-test.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Switches a behaviour of the upstream (`fail`: 500, `busy`: 503 with
    /// `Retry-After`, `slow`, `sick`, `close`: each connection closed after
    /// its answer) on or off.
    pub async fn set(&self, mode: &str, on: bool) {
        let url = format!("{}/_mode/{mode}?on={on}", self.url);
        assert!(reqwest::Client::new().post(url).send().await.unwrap().status().is_success());
    }

    /// How many requests each path has had.
    pub async fn calls(&self) -> BTreeMap<String, u64> {
        reqwest::get(format!("{}/_calls", self.url)).await.unwrap().json().await.unwrap()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Default)]
struct State_ {
    name: String,
    fail: Arc<AtomicBool>,
    busy: Arc<AtomicBool>,
    close: Arc<AtomicBool>,
    slow: Arc<AtomicBool>,
    sick: Arc<AtomicBool>,
    calls: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// Serves as an upstream when run as the child (`HERALD_UPSTREAM` set).
pub async fn serve_as_child() {
    let Ok(name) = std::env::var("HERALD_UPSTREAM") else { return };
    let state = State_ { name, ..Default::default() };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/count", post(count))
        .route("/big", get(big))
        .route("/_mode/{mode}", post(mode))
        .route("/_calls", get(calls))
        .fallback(any(echo))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
}

fn counted(s: &State_, path: &str) {
    *s.calls.lock().unwrap().entry(path.to_string()).or_default() += 1;
}

/// Answers who it is, what it saw and the port the request came from;
/// fails, dawdles or closes the connection when told to.
async fn echo(
    State(s): State<State_>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    counted(&s, uri.path());
    if s.slow.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let seen: BTreeMap<String, String> =
        headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let answer = json!({
        "instance": s.name, "method": method.as_str(), "path": uri.path(), "query": uri.query(),
        "version": format!("{version:?}"), "headers": seen, "body_bytes": body.len(),
        "peer_port": peer.port(),
    });
    let status = match (s.fail.load(Ordering::Relaxed), s.busy.load(Ordering::Relaxed)) {
        (true, _) => StatusCode::INTERNAL_SERVER_ERROR,
        (_, true) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let mut resp = (status, Json(answer)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if s.close.load(Ordering::Relaxed) {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

async fn healthz(State(s): State<State_>) -> StatusCode {
    if s.sick.load(Ordering::Relaxed) { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
}

/// Counts a streamed body's bytes without keeping them.
async fn count(State(s): State<State_>, body: Body) -> Json<Value> {
    counted(&s, "/count");
    let total = AtomicU64::new(0);
    let mut stream = body.into_data_stream();
    // A body cut off on the way (the gateway's limit) just ends the count.
    while let Some(Ok(chunk)) = stream.next().await {
        total.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    Json(json!({"bytes": total.load(Ordering::Relaxed)}))
}

/// Streams `mb` megabytes of zeros.
async fn big(Query(q): Query<BTreeMap<String, u64>>) -> Body {
    let mb = q.get("mb").copied().unwrap_or(1);
    let chunk = Bytes::from(vec![0u8; 1024 * 1024]);
    Body::from_stream(futures::stream::iter((0..mb).map(move |_| Ok::<_, std::io::Error>(chunk.clone()))))
}

async fn mode(
    State(s): State<State_>,
    axum::extract::Path(mode): axum::extract::Path<String>,
    Query(q): Query<BTreeMap<String, bool>>,
) -> StatusCode {
    let on = q.get("on").copied().unwrap_or(true);
    let flag = match mode.as_str() {
        "fail" => &s.fail,
        "busy" => &s.busy,
        "slow" => &s.slow,
        "sick" => &s.sick,
        "close" => &s.close,
        _ => return StatusCode::NOT_FOUND,
    };
    flag.store(on, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

async fn calls(State(s): State<State_>) -> Json<BTreeMap<String, u64>> {
    Json(s.calls.lock().unwrap().clone())
}
