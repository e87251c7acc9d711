//! The gateway's requests, counted as each answer goes out, and the
//! registry's state (circuits, limits, instances), read at each scrape.
//! Label values are names herald knows (configured services, registered
//! instances), never a path a client sent.

use std::{sync::OnceLock, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Requests {
    service: String,
    /// The answer's class: `2xx`, `3xx`, `4xx`, `5xx`.
    code: String,
    /// `service` when an instance answered, `herald` when herald answered
    /// for it (no instance could take it, a timeout, an unreachable one).
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByService {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CircuitState {
    service: String,
    /// `closed`, `half_open` or `open`: the one the circuit is in is 1.
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByInstance {
    service: String,
    instance: String,
}

/// From a millisecond to a minute.
fn latency_buckets() -> Histogram {
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
}

/// From a millisecond (no wait) to half a minute: a task waits that long in
/// memory at most before it goes back to the store, and is counted again.
fn wait_buckets() -> Histogram {
    Histogram::new([0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

pub struct Gateway {
    requests: Family<Requests, Counter>,
    duration: Family<ByService, Histogram, fn() -> Histogram>,
    waits: Family<ByService, Histogram, fn() -> Histogram>,
    rate_limited: Counter,
    circuit: Family<CircuitState, Gauge>,
    limit: Family<ByService, Gauge>,
    in_flight: Family<ByService, Gauge>,
    waiting: Family<ByService, Gauge>,
    instance_up: Family<ByInstance, Gauge>,
}

/// One service's counters, each made at its first use (a service the
/// gateway never answers for shows no series) and kept: an answer then
/// costs two atomic adds and a histogram's, no lookup.
#[derive(Clone)]
pub struct ServiceCalls {
    service: String,
    requests: Family<Requests, Counter>,
    durations: Family<ByService, Histogram, fn() -> Histogram>,
    waits_by: Family<ByService, Histogram, fn() -> Histogram>,
    /// By source (service, herald), then class (1xx to 5xx).
    answers: [[OnceLock<Counter>; 5]; 2],
    duration: OnceLock<Histogram>,
    waits: OnceLock<Histogram>,
}

impl ServiceCalls {
    /// An answer with `status` went out after `took`; `by_herald`: herald
    /// answered for the service.
    pub fn answered(&self, status: u16, by_herald: bool, took: Duration) {
        let class = status.clamp(100, 599) / 100;
        let counter = self.answers[usize::from(by_herald)][usize::from(class - 1)].get_or_init(|| {
            let source = if by_herald { "herald" } else { "service" };
            let labels = Requests { service: self.service.clone(), code: format!("{class}xx"), source: source.into() };
            self.requests.get_or_create(&labels).clone()
        });
        counter.inc();
        self.duration.get_or_init(|| self.by_service(&self.durations)).observe(took.as_secs_f64());
    }

    /// A call of herald's own (a step, a compensation, a notification)
    /// waited `took` for the service to take it.
    pub fn waited(&self, took: Duration) {
        self.waits.get_or_init(|| self.by_service(&self.waits_by)).observe(took.as_secs_f64());
    }

    fn by_service(&self, family: &Family<ByService, Histogram, fn() -> Histogram>) -> Histogram {
        family.get_or_create(&ByService { service: self.service.clone() }).clone()
    }
}

/// A service as a scrape sees it (from `GET /v1/services`' view).
#[derive(Debug, Clone)]
pub struct ServiceState {
    pub name: String,
    /// `closed`, `half_open` or `open`.
    pub circuit: &'static str,
    pub limit: u32,
    pub in_flight: u32,
    /// Calls (step calls, notifications) waiting for the service's turn.
    pub waiting: usize,
    /// Each instance's id and whether it may take calls (up or not yet
    /// checked, and not ejected).
    pub instances: Vec<(String, bool)>,
}

impl Gateway {
    pub(crate) fn register(r: &mut Registry) -> Self {
        let g = Gateway {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_buckets),
            waits: Family::new_with_constructor(wait_buckets),
            rate_limited: Counter::default(),
            circuit: Family::default(),
            limit: Family::default(),
            in_flight: Family::default(),
            waiting: Family::default(),
            instance_up: Family::default(),
        };
        r.register("gateway_requests", "Requests through the gateway, by service and answer", g.requests.clone());
        r.register_with_unit(
            "gateway_request_duration",
            "From a request's arrival to its answer's head",
            Unit::Seconds,
            g.duration.clone(),
        );
        r.register_with_unit(
            "service_wait",
            "How long herald's own calls (steps, compensations, notifications) waited for a service to take them",
            Unit::Seconds,
            g.waits.clone(),
        );
        r.register("gateway_rate_limited", "Requests refused by the gateway's rate limit", g.rate_limited.clone());
        r.register("service_circuit_state", "A service's circuit breaker: 1 for its state", g.circuit.clone());
        r.register("service_concurrency_limit", "Calls a service is let have in flight now", g.limit.clone());
        r.register("service_in_flight", "Calls in flight to a service", g.in_flight.clone());
        r.register("service_waiting", "Calls waiting for a service's turn", g.waiting.clone());
        r.register("service_instance_up", "An instance may take calls (1) or not (0)", g.instance_up.clone());
        g
    }

    /// The counters of `service`'s answers.
    pub fn service(&self, service: &str) -> ServiceCalls {
        ServiceCalls {
            service: service.to_string(),
            requests: self.requests.clone(),
            durations: self.duration.clone(),
            waits_by: self.waits.clone(),
            answers: Default::default(),
            duration: OnceLock::new(),
            waits: OnceLock::new(),
        }
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    pub(crate) fn set(&self, services: &[ServiceState]) {
        for family in [&self.limit, &self.in_flight, &self.waiting] {
            family.clear();
        }
        self.circuit.clear();
        self.instance_up.clear();
        for s in services {
            let by = ByService { service: s.name.clone() };
            self.limit.get_or_create(&by).set(i64::from(s.limit));
            self.in_flight.get_or_create(&by).set(i64::from(s.in_flight));
            self.waiting.get_or_create(&by).set(s.waiting as i64);
            for state in ["closed", "half_open", "open"] {
                let labels = CircuitState { service: s.name.clone(), state: state.to_string() };
                self.circuit.get_or_create(&labels).set(i64::from(state == s.circuit));
            }
            for (id, up) in &s.instances {
                let labels = ByInstance { service: s.name.clone(), instance: id.clone() };
                self.instance_up.get_or_create(&labels).set(i64::from(*up));
            }
        }
    }
}
