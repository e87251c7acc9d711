//! The no-op step service of the workloads, run as its own process
//! (`herald bench-worker`): every step answers a small JSON object at once.
//! `/hold/...` answers 202 and keeps the callback, so W2 can hold
//! operations open and complete them when it chooses. `/events` is W3's
//! push consumer: it acknowledges each event and keeps its lag.
//! `/shed/{percent}/...` answers 503 to that share of first attempts, as a
//! service shedding load would; `/load` tells the step calls it had in
//! flight at most, and how many it shed.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use herald_sdk::load::Load;

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
    let load = Shedding::default();
    let steps = Router::new()
        .route("/step/{name}", post(|| async { Json(json!({"ok": true})) }))
        .route("/shed/{percent}/{name}", post(shed))
        .route_layer(axum::middleware::from_fn_with_state(load.load.clone(), Load::count))
        .route("/load", get(take_load))
        .with_state(load);
    let app = Router::new()
        // The gateway workload's upstream.
        .route("/ok", get(|| async { Json(json!({"ok": true})) }))
        .route("/hold/{name}", post(hold))
        .route("/held", get(take_held))
        .with_state(holds)
        .merge(events)
        .merge(steps);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

/// Step calls in flight, their peak, and the answers shed.
#[derive(Clone, Default)]
struct Shedding {
    load: Arc<Load>,
    shed: Arc<AtomicU64>,
}

/// What `/load` tells (and resets).
#[derive(Serialize, Deserialize, Default, Clone, Copy)]
pub struct LoadSeen {
    pub peak_in_flight: u64,
    pub calls: u64,
    pub shed: u64,
}

/// 503 to `percent` of first attempts (the envelope's `attempt`), 200 else.
async fn shed(
    State(load): State<Shedding>,
    axum::extract::Path((percent, _name)): axum::extract::Path<(u32, String)>,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let envelope: Value = serde_json::from_slice(&body).unwrap_or_default();
    if envelope["attempt"] == 1 && rand::random_range(0..100) < percent {
        load.shed.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"detail": "busy"})));
    }
    (StatusCode::OK, Json(json!({"ok": true})))
}

async fn take_load(State(load): State<Shedding>) -> Json<LoadSeen> {
    let seen = load.load.take();
    Json(LoadSeen { peak_in_flight: seen.peak, calls: seen.calls, shed: load.shed.swap(0, Ordering::Relaxed) })
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
