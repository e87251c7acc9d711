//! The step services and subscribers of the run, in the test's process so
//! they outlive every kill: each answers 503 to about 30 % of calls, fails
//! the charge of an order that asks to fail, takes the confirmation with a
//! 202 and completes it later by callback, and writes down every answer it
//! gave, with when.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use tokio::time::Instant;

/// What the services saw.
#[derive(Default, Clone)]
pub struct Ledger {
    /// Every answer to a call, per idempotency key: when the call came,
    /// and the status. When it came, not when it was answered: a call that
    /// came before a kill is answered after it, to a herald that is gone.
    pub answers: HashMap<String, Vec<(Instant, u16)>>,
    /// Callbacks herald took (2xx, or a 409 after an answer was lost), per key.
    pub completed: HashMap<String, Vec<Instant>>,
    /// When herald was killed.
    pub kills: Vec<Instant>,
    /// The operations named by the events pushed, per topic.
    pub delivered: HashMap<String, HashSet<String>>,
}

#[derive(Default)]
struct Inner {
    ledger: Ledger,
    /// Calls and callbacks under way, by path.
    open: BTreeMap<String, usize>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    rng: Arc<Mutex<StdRng>>,
    http: reqwest::Client,
}

pub struct Services {
    pub url: String,
    shared: Shared,
}

impl Services {
    pub async fn start(seed: u64) -> Services {
        let shared = Shared {
            inner: Arc::default(),
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed.wrapping_add(1)))),
            http: herald_testkit::client_within(Duration::from_secs(10)),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Services { url, shared }
    }

    /// What is under way at the services right now, by path.
    pub fn in_flight(&self) -> BTreeMap<String, usize> {
        self.shared.inner.lock().unwrap().open.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (k.clone(), *n)).collect()
    }

    pub fn killed(&self) {
        self.shared.inner.lock().unwrap().ledger.kills.push(Instant::now());
    }

    pub fn ledger(&self) -> Ledger {
        self.shared.inner.lock().unwrap().ledger.clone()
    }
}

impl Shared {
    fn roll(&self, p: f64) -> bool {
        self.rng.lock().unwrap().random_bool(p)
    }

    fn millis(&self, range: std::ops::Range<u64>) -> Duration {
        Duration::from_millis(self.rng.lock().unwrap().random_range(range))
    }

    /// Counts `what` as under way until the guard is dropped.
    fn open(&self, what: &str) -> Open {
        *self.inner.lock().unwrap().open.entry(what.to_string()).or_default() += 1;
        Open(self.clone(), what.to_string())
    }
}

struct Open(Shared, String);

impl Drop for Open {
    fn drop(&mut self) {
        *self.0.inner.lock().unwrap().open.get_mut(&self.1).expect("opened") -= 1;
    }
}

async fn handle(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let came = Instant::now();
    let path = uri.path().to_string();
    let _open = s.open(&path);
    // A moment's work, so that kills land mid-call.
    tokio::time::sleep(s.millis(2..20)).await;
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(topic) = path.strip_prefix("/events/") {
        if s.roll(0.1) {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let op = body["operationid"].as_str().unwrap_or_default().to_string();
        s.inner.lock().unwrap().ledger.delivered.entry(topic.to_string()).or_default().insert(op);
        return StatusCode::OK.into_response();
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let status = if s.roll(0.3) {
        503
    } else if path == "/charge" && body["input"]["fail"] == true {
        422
    } else if path == "/confirm" {
        202
    } else {
        200
    };
    s.inner.lock().unwrap().ledger.answers.entry(key.clone()).or_default().push((came, status));
    match status {
        503 => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")]).into_response(),
        422 => (
            StatusCode::UNPROCESSABLE_ENTITY,
            [("content-type", "application/problem+json")],
            json!({"title": "Declined", "detail": "Your card was declined."}).to_string(),
        )
            .into_response(),
        202 => {
            let callback = body["callback"].clone();
            tokio::spawn(complete(s.clone(), callback, key));
            StatusCode::ACCEPTED.into_response()
        }
        _ => axum::Json(json!({ "done": path })).into_response(),
    }
}

/// Completes a confirmation a moment after it was taken, trying again while
/// herald is down, until herald takes it (2xx), finds it done (409) or
/// says the attempt is no longer the step's (401: another is under way).
async fn complete(s: Shared, callback: Value, key: String) {
    let _open = s.open("callback");
    let (Some(url), Some(token)) = (callback["url"].as_str(), callback["token"].as_str()) else { return };
    tokio::time::sleep(s.millis(20..300)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    // A callback whose answer was lost (herald died mid-request) may have
    // been taken: asked again, herald then says the step is done (409).
    let mut lost = false;
    let taken = loop {
        if Instant::now() >= deadline {
            break false;
        }
        let sent = s.http.post(url).bearer_auth(token).json(&json!({"result": {"confirmed": true}})).send().await;
        match sent.map(|r| r.status().as_u16()) {
            Ok(200..=299) => break true,
            Ok(409) => break lost,
            Ok(401) => break false,
            Err(_) => lost = true,
            Ok(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if taken {
        s.inner.lock().unwrap().ledger.completed.entry(key).or_default().push(Instant::now());
    }
}

impl Ledger {
    /// The keys herald called again after it had an answer that did the
    /// work: between the calls of two such answers for one key there must
    /// be a kill (the first answer died with herald before it was recorded).
    pub fn keys_answered_again(&self) -> Vec<String> {
        let mut broken = Vec::new();
        for (key, answers) in &self.answers {
            let mut done: Vec<Instant> =
                answers.iter().filter(|(_, s)| (200..300).contains(s)).map(|(at, _)| *at).collect();
            done.sort();
            for pair in done.windows(2) {
                if !self.kills.iter().any(|k| pair[0] < *k && *k < pair[1]) {
                    broken.push(format!("{key}: answered twice with no kill between ({answers:?})"));
                }
            }
        }
        broken
    }

    /// Whether `key` did its work at the service: a 2xx answer (and for a
    /// confirmation, the callback herald took).
    pub fn took_effect(&self, key: &str, by_callback: bool) -> bool {
        let answered = self.answers.get(key).is_some_and(|a| a.iter().any(|(_, s)| (200..300).contains(s)));
        answered && (!by_callback || self.completed.get(key).is_some_and(|c| !c.is_empty()))
    }

    /// Whether `key` was called at all.
    pub fn called(&self, key: &str) -> bool {
        self.answers.contains_key(key)
    }

    /// Events answered 2xx (named by their operation) that were never
    /// pushed, and orders that succeeded without their event pushed.
    pub fn undelivered<'a>(
        &self,
        published: impl Iterator<Item = &'a String>,
        ops: &HashMap<String, Value>,
    ) -> Vec<String> {
        let seen = |topic: &str, id: &str| self.delivered.get(topic).is_some_and(|d| d.contains(id));
        let mut broken: Vec<String> = published
            .filter(|id| !seen("parcels", id))
            .map(|id| format!("{id}: its parcel event was never pushed"))
            .collect();
        for (id, op) in ops {
            if op["workflow"] == "order" && op["status"] == "succeeded" && !seen("orders", id) {
                broken.push(format!("{id}: succeeded, and its order.placed event was never pushed"));
            }
        }
        broken
    }
}
