//! The no-op step service of the workloads, run as its own process
//! (`herald bench-worker`): every step answers a small JSON object at once.
//! `/hold/...` answers 202 and keeps the callback, so W2 can hold
//! operations open and complete them when it chooses. `/events` is W3's
//! push consumer: it acknowledges each event and keeps its lag.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::StatusCode,
    routing::{get, post},
    serve::ListenerExt,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Serialize, Deserialize)]
pub struct Held {
    pub url: String,
    pub token: String,
}

type Holds = Arc<Mutex<Vec<Held>>>;
/// (event number, lag in µs) of each pushed event received.
type Lags = Arc<Mutex<Vec<(u64, u64)>>>;

/// Serves on `listen` and prints `listening http://…` on stdout once bound.
pub async fn run(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let holds: Holds = Arc::default();
    let lags: Lags = Arc::default();
    let events = Router::new().route("/events", post(receive)).route("/events/lags", get(take_lags)).with_state(lags);
    let app = Router::new()
        .route("/step/{name}", post(|| async { Json(json!({"ok": true})) }))
        // The gateway workload's upstream.
        .route("/ok", get(|| async { Json(json!({"ok": true})) }))
        .route("/hold/{name}", post(hold))
        .route("/held", get(take_held))
        .with_state(holds)
        .merge(events);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

async fn hold(State(holds): State<Holds>, body: Bytes) -> StatusCode {
    let envelope: Value = serde_json::from_slice(&body).unwrap_or_default();
    let cb = &envelope["callback"];
    if let (Some(url), Some(token)) = (cb["url"].as_str(), cb["token"].as_str()) {
        holds.lock().expect("holds").push(Held { url: url.into(), token: token.into() });
    }
    StatusCode::ACCEPTED
}

/// Hands over (and forgets) the callbacks held so far.
async fn take_held(State(holds): State<Holds>) -> Json<Vec<Held>> {
    Json(std::mem::take(&mut *holds.lock().expect("holds")))
}

/// A pushed event, or a batch of them: acknowledged at once, lags kept.
async fn receive(State(lags): State<Lags>, body: Bytes) -> StatusCode {
    let events = match serde_json::from_slice::<Value>(&body).unwrap_or_default() {
        Value::Array(events) => events,
        one => vec![one],
    };
    let got: Option<Vec<(u64, u64)>> = events.iter().map(crate::pubsub::lag_of).collect();
    match got {
        Some(got) => {
            lags.lock().expect("lags").extend(got);
            StatusCode::OK
        }
        None => StatusCode::BAD_REQUEST,
    }
}

/// Hands over (and forgets) the lags kept so far.
async fn take_lags(State(lags): State<Lags>) -> Json<Vec<(u64, u64)>> {
    Json(std::mem::take(&mut *lags.lock().expect("lags")))
}
