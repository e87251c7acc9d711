//! What `GET /v1/services` shows of each service: its instances, and why
//! it takes calls or not — its circuit (and why it opened), its
//! concurrency limit, the calls in flight and the work waiting its turn.

use std::{sync::atomic::Ordering, time::Instant};

use serde::Serialize;
use serde_json::Value;

use super::{Balance, Health, Registry};

#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    pub name: String,
    pub balance: Balance,
    pub circuit: CircuitView,
    /// Calls herald lets be in flight to the service now: lowered when it
    /// answers 429/503 or times out, grown back as calls succeed.
    pub limit: u32,
    /// The most the limit may grow to (the service's `max_in_flight`).
    pub max_in_flight: u32,
    pub in_flight: u32,
    /// Tasks waiting for the service to take their call.
    pub waiting: usize,
    pub instances: Vec<InstanceView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CircuitView {
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    /// Why it opened, while it is not closed.
    pub reason: Option<String>,
    /// While open: when it lets probes through.
    pub retry_after_ms: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub url: String,
    pub health: Health,
    /// Ejected for failing calls in a row: not chosen until this passes.
    pub ejected_for_ms: Option<u64>,
    pub in_flight: usize,
    /// Moving average of recent answers.
    pub latency_ms: f64,
    pub requests: u64,
    pub failures: u64,
    /// Registered at run time: how long until it goes without a heartbeat.
    pub expires_in_ms: Option<u64>,
    /// As registered: any JSON (`null` for the configured instances).
    #[schema(value_type = Value)]
    pub metadata: Value,
}

impl Registry {
    pub fn views(&self) -> Vec<ServiceView> {
        let now = Instant::now();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        self.all()
            .into_iter()
            .filter(|s| !s.name.starts_with("herald."))
            .map(|s| {
                let gate = s.gate.lock().expect("gate");
                let circuit = CircuitView {
                    state: gate.circuit.name(now),
                    reason: gate.circuit.reason().map(str::to_string),
                    retry_after_ms: gate.circuit.retry_after(now).map(ms),
                };
                let (limit, max_in_flight, in_flight) = (gate.limit.limit(), gate.limit.max(), gate.limit.in_flight());
                drop(gate);
                ServiceView {
                    name: s.name.clone(),
                    balance: s.settings.balance,
                    circuit,
                    limit,
                    max_in_flight,
                    in_flight,
                    waiting: s.waiting(),
                    instances: s
                        .instances()
                        .iter()
                        .map(|i| InstanceView {
                            id: i.id.clone(),
                            url: i.base.clone(),
                            health: i.health(),
                            ejected_for_ms: i.outlier.lock().expect("outlier").ejected_for(now).map(ms),
                            in_flight: i.in_flight.load(Ordering::Relaxed),
                            latency_ms: i.latency_us.load(Ordering::Relaxed) as f64 / 1000.0,
                            requests: i.requests.load(Ordering::Relaxed),
                            failures: i.failures.load(Ordering::Relaxed),
                            expires_in_ms: i
                                .expires_at
                                .lock()
                                .expect("ttl")
                                .map(|t| t.saturating_duration_since(now).as_millis() as u64),
                            metadata: i.metadata.clone(),
                        })
                        .collect(),
                }
            })
            .collect()
    }
}
