//! The SDK end to end: a step service written with the step helpers and
//! the inbox (on SQLite), driven by a real herald that signs its calls, and
//! the client starting, watching and completing operations.

mod common;

use std::{sync::Arc, time::Duration};

use axum::{Extension, Router, routing::post};
use futures::StreamExt;
use herald_sdk::{
    Client, Inbox, Outbox,
    step::{StepCall, StepReply, StepSecret},
};
use herald_testkit::eventually;
use serde_json::{Value, json};
use sqlx::{SqlitePool, sqlite::SqliteConnectOptions};
use tokio::sync::Mutex;

const SECRET: &str = "shop-secret-0123456789";

const ORDER: &str = r#"
name = "order"
label = "Your order"
[[steps]]
name = "reserve"
label = "Reserving your items"
call = { service = "shop", path = "/reserve" }
[[steps]]
name = "charge"
label = "Taking your payment"
call = { service = "shop", path = "/charge" }
[[steps]]
name = "ship"
call = { service = "shop", path = "/ship" }
"#;

#[derive(Clone)]
struct Shop {
    pool: SqlitePool,
    callbacks: Arc<Mutex<Vec<herald_sdk::Callback>>>,
}

/// Does a step's work once per key: the inbox answers a repeat.
async fn once(shop: &Shop, call: &StepCall, work: impl FnOnce(&StepCall) -> StepReply) -> StepReply {
    let mut tx = shop.pool.begin().await.unwrap();
    if let Some(stored) = Inbox::claim(&mut *tx, &call.key).await.unwrap() {
        return stored;
    }
    let reply = work(call);
    sqlx::query("INSERT INTO work (key) VALUES ($1)").bind(&call.key).execute(&mut *tx).await.unwrap();
    Inbox::keep(&mut *tx, &call.key, &reply).await.unwrap();
    tx.commit().await.unwrap();
    reply
}

async fn reserve(Extension(shop): Extension<Shop>, call: StepCall) -> StepReply {
    once(&shop, &call, |_| StepReply::done(json!({"reservation": "r-1"}))).await
}

async fn charge(Extension(shop): Extension<Shop>, call: StepCall) -> StepReply {
    once(&shop, &call, |call| {
        #[derive(serde::Deserialize)]
        struct Input {
            card: String,
        }
        let input: Input = match call.envelope.input() {
            Ok(i) => i,
            Err(reply) => return reply,
        };
        if input.card.ends_with("0002") {
            return StepReply::failed("Your card was declined.");
        }
        let reservation = call.envelope.result("reserve", "reservation").cloned().unwrap_or(Value::Null);
        StepReply::done(json!({"charged_for": reservation}))
    })
    .await
}

/// Shipping answers 202; the test completes it through its callback.
async fn ship(Extension(shop): Extension<Shop>, call: StepCall) -> StepReply {
    shop.callbacks.lock().await.push(call.envelope.callback.clone().unwrap());
    StepReply::accepted()
}

async fn shop() -> (String, Shop, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteConnectOptions::new().filename(dir.path().join("shop.db")).create_if_missing(true);
    let pool = SqlitePool::connect_with(opts).await.unwrap();
    Outbox::create_tables(&pool).await.unwrap();
    sqlx::query("CREATE TABLE work (key TEXT)").execute(&pool).await.unwrap();
    let shop = Shop { pool, callbacks: Arc::default() };
    let app = Router::new()
        .route("/reserve", post(reserve))
        .route("/charge", post(charge))
        .route("/ship", post(ship))
        .layer(Extension(shop.clone()))
        .layer(Extension(StepSecret::new(SECRET)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, shop, dir)
}

async fn work_done(shop: &Shop, key: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM work WHERE key = $1").bind(key).fetch_one(&shop.pool).await.unwrap()
}

async fn callback(shop: &Shop) -> herald_sdk::Callback {
    eventually("the shipping step called", Duration::from_secs(10), async || shop.callbacks.lock().await.pop()).await
}

#[tokio::test]
async fn a_watched_operation_runs_signed_steps_once_and_finishes_by_callback() {
    let (url, shop, _dir) = shop().await;
    let h = common::herald(&[ORDER], &[("shop", &url, Some(SECRET))]).await;
    let client = Client::new(&h.base);

    let started = client.start("order", &json!({"card": "4242424242424242"})).await.unwrap();
    let id = started.operation.id.to_string();
    let mut events = std::pin::pin!(client.watch(&id, 0));
    let cb = callback(&shop).await;
    client.complete(&cb, Ok(json!({"tracking": "T-1"}))).await.unwrap();
    let mut seen = Vec::new();
    while let Some(e) = events.next().await {
        seen.push(e.unwrap());
    }

    assert_eq!(seen.last().unwrap().kind, herald_sdk::EventKind::Succeeded);
    assert!(seen.iter().any(|e| e.message == "Reserving your items"), "the labels, as the user reads them");
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order");
    let op = client.operation(&id).await.unwrap();
    assert_eq!(op.operation.status, herald_sdk::OpStatus::Succeeded);
    assert_eq!(op.operation.steps[1].result, Some(json!({"charged_for": "r-1"})), "earlier results reach later steps");
    assert_eq!(op.operation.steps[2].result, Some(json!({"tracking": "T-1"})));
    assert_eq!(work_done(&shop, &format!("{id}/reserve")).await, 1);
}

#[tokio::test]
async fn a_repeated_call_gets_the_kept_answer_and_an_unsigned_or_misdirected_one_is_refused() {
    let (url, shop, _dir) = shop().await;
    let envelope = json!({"operation_id": "op_1", "workflow": "order", "step": "charge", "attempt": 1,
                          "phase": "forward", "input": {"card": "4000000000000002"}, "results": {}});
    let body = envelope.to_string();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    // Signed as herald would sign it for `POST <signed_for>`, sent to /charge.
    let send = |signed_for: Option<&str>| {
        let mut req = http.post(format!("{url}/charge")).header("idempotency-key", "op_1/charge").body(body.clone());
        if let Some(target) = signed_for {
            let now = chrono::Utc::now().timestamp();
            let sig = herald_core::signature::sign(SECRET.as_bytes(), now, "POST", target, body.as_bytes());
            req = req.header(herald_sdk::SIGNATURE_HEADER, sig);
        }
        req.send()
    };

    let first = send(Some("/charge")).await.unwrap();
    let (status, first_body) = (first.status(), first.text().await.unwrap());
    let again = send(Some("/charge")).await.unwrap();
    let (again_status, again_body) = (again.status(), again.text().await.unwrap());
    let unsigned = send(None).await.unwrap();
    let for_another_route = send(Some("/reserve")).await.unwrap();

    assert_eq!(status, 422, "a declined card fails for good");
    assert!(first_body.contains("Your card was declined."));
    assert_eq!((again_status, again_body), (status, first_body), "the same answer, kept");
    assert_eq!(work_done(&shop, "op_1/charge").await, 1, "the work was done once");
    assert_eq!(unsigned.status(), 401);
    assert_eq!(for_another_route.status(), 401, "a body signed for /reserve is no good at /charge");
}

#[tokio::test]
async fn a_handler_under_a_nested_router_verifies_the_path_and_query_herald_sent() {
    async fn charge(call: StepCall) -> StepReply {
        StepReply::done(json!({"key": call.key}))
    }
    let app = Router::new()
        .nest("/shop", Router::new().route("/charge", post(charge)))
        .layer(Extension(StepSecret::new(SECRET)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/shop/charge?region=eu", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let body = json!({"operation_id": "op_1", "workflow": "order", "step": "charge", "attempt": 1,
                      "phase": "forward", "input": {}, "results": {}})
    .to_string();
    let send = |target: &str| {
        let now = chrono::Utc::now().timestamp();
        let sig = herald_core::signature::sign(SECRET.as_bytes(), now, "POST", target, body.as_bytes());
        let req = http.post(&url).header("idempotency-key", "op_1/charge").header(herald_sdk::SIGNATURE_HEADER, sig);
        req.body(body.clone()).send()
    };

    let as_sent = send("/shop/charge?region=eu").await.unwrap();
    let without_prefix = send("/charge?region=eu").await.unwrap();
    let without_query = send("/shop/charge").await.unwrap();

    assert_eq!(as_sent.status(), 200);
    assert_eq!(without_prefix.status(), 401);
    assert_eq!(without_query.status(), 401);
}

#[tokio::test]
async fn a_declined_card_fails_the_operation_with_the_reason_the_service_gave() {
    let (url, _shop, _dir) = shop().await;
    let h = common::herald(&[ORDER], &[("shop", &url, Some(SECRET))]).await;
    let client = Client::new(&h.base);

    let started = client
        .start_with(
            "order",
            &json!({"card": "4000000000000002"}),
            &herald_sdk::Start { wait: Some(Duration::from_secs(10)), ..Default::default() },
        )
        .await
        .unwrap();

    assert_eq!(started.operation.status, herald_sdk::OpStatus::Failed);
    assert!(started.operation.outcome.unwrap().summary.contains("Your card was declined"));
    let err = client.start("nope", &json!({})).await.unwrap_err();
    assert_eq!(err.problem_type(), Some("urn:herald:problem:unknown-workflow"));
}

#[tokio::test]
async fn events_are_published_pulled_and_given_back() {
    let h = common::herald(&[], &[]).await;
    let client = Client::new(&h.base);
    reqwest::Client::new()
        .put(format!("{}/v1/subscriptions/s", h.base))
        .json(&json!({"topic": "t", "retry": {"attempts": 2}}))
        .send()
        .await
        .unwrap();

    let published = client.publish("t", &common::event("e1", "T")).await.unwrap();
    let again = client.publish("t", &common::event("e1", "T")).await.unwrap();
    let m = client.pull("s", 10, Duration::from_secs(1)).await.unwrap();
    let nacked = client
        .nack("s", &[m[0].ack_id.clone()], &herald_sdk::Nack { delay: Some(Duration::ZERO), ..Default::default() })
        .await
        .unwrap();
    let m2 = client.pull("s", 10, Duration::from_secs(2)).await.unwrap();
    let unknown = client.ack("s", &[m2[0].ack_id.clone(), m[0].ack_id.clone()]).await.unwrap();

    assert!(!published.duplicate && again.duplicate);
    assert_eq!(nacked.retrying, 1);
    assert_eq!(m2[0].attempt, 2);
    assert_eq!(unknown, [m[0].ack_id.clone()], "the first lease was over");
}

#[tokio::test]
async fn a_pushed_event_arrives_signed_and_a_retry_reply_brings_it_again() {
    use herald_sdk::step::PushedEvent;
    let seen: Arc<Mutex<Vec<(String, u32, String)>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new()
        .route(
            "/events",
            post(move |pushed: PushedEvent| {
                let log = log.clone();
                async move {
                    log.lock().await.push((pushed.key.clone(), pushed.attempt, pushed.event.id.clone()));
                    if pushed.attempt == 1 { StepReply::retry("not ready yet") } else { StepReply::done(json!({})) }
                }
            }),
        )
        .layer(Extension(StepSecret::new(SECRET)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let h = common::herald(&[], &[("consumer", &url, Some(SECRET))]).await;
    let put = reqwest::Client::new()
        .put(format!("{}/v1/subscriptions/audit", h.base))
        .json(&json!({"topic": "t", "push": {"service": "consumer", "path": "/events"}, "retry": {"initial": "20ms"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);

    Client::new(&h.base).publish("t", &common::event("e1", "T")).await.unwrap();
    let again = async || (seen.lock().await.len() >= 2).then_some(());
    eventually("the event came again", Duration::from_secs(10), again).await;

    let seen = seen.lock().await.clone();
    assert_eq!(seen[0], ("audit//sdk-tests/e1".to_string(), 1, "e1".to_string()));
    assert_eq!(seen[1].1, 2);
}
