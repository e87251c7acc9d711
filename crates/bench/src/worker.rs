//! The no-op step service of the workloads, run as its own process
//! (`herald bench-worker`): every step answers a small JSON object at once.
//! `/hold/...` answers 202 and keeps the callback, so W2 can hold
//! operations open and complete them when it chooses.

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

/// Serves on `listen` and prints `listening http://…` on stdout once bound.
pub async fn run(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let holds: Holds = Arc::default();
    let app = Router::new()
        .route("/step/{name}", post(|| async { Json(json!({"ok": true})) }))
        .route("/hold/{name}", post(hold))
        .route("/held", get(take_held))
        .with_state(holds);
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
