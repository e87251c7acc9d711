//! How hard herald presses a step service: its calls in flight now, the
//! most at once, and how many, counted around each request by a
//! middleware. herald keeps its own view (`GET /v1/services`: its limit
//! and calls in flight); this is the service's.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, middleware, routing::post};
//! use herald_sdk::load::Load;
//!
//! let load = Arc::new(Load::default());
//! let app: Router = Router::new()
//!     .route("/erase", post(|| async { "done" }))
//!     .route_layer(middleware::from_fn_with_state(load.clone(), Load::count));
//! // later: load.seen().peak
//! ```

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use serde::{Deserialize, Serialize};

/// The counts, shared by every request the middleware wraps.
#[derive(Debug, Default)]
pub struct Load {
    in_flight: AtomicU64,
    peak: AtomicU64,
    calls: AtomicU64,
}

/// The counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub in_flight: u64,
    /// The most requests in flight at once.
    pub peak: u64,
    pub calls: u64,
}

impl Load {
    pub fn seen(&self) -> Seen {
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        Seen { in_flight: read(&self.in_flight), peak: read(&self.peak), calls: read(&self.calls) }
    }

    /// The counts so far, and a fresh start for the peak and the calls.
    pub fn take(&self) -> Seen {
        let take = |n: &AtomicU64| n.swap(0, Ordering::Relaxed);
        Seen { in_flight: self.in_flight.load(Ordering::Relaxed), peak: take(&self.peak), calls: take(&self.calls) }
    }

    /// The middleware (`axum::middleware::from_fn_with_state`).
    pub async fn count(State(load): State<Arc<Load>>, req: Request, next: Next) -> Response {
        load.calls.fetch_add(1, Ordering::Relaxed);
        let now = load.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        load.peak.fetch_max(now, Ordering::Relaxed);
        let resp = next.run(req).await;
        load.in_flight.fetch_sub(1, Ordering::Relaxed);
        resp
    }
}
