//! Push subscriptions: herald POSTs each event to a real service on
//! loopback, retries what fails, keeps per-key order, dead-letters what
//! cannot be delivered, and delivers it again when a person redrives it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{broker_helpers::calls, helpers::*};

async fn app(svc: &StepService) -> TestApp {
    spawn_app(&[], svc).await
}

fn push(attempts: u32) -> Value {
    json!({"topic": "orders", "push": {"service": "svc", "path": "/events", "max_in_flight": 8},
           "retry": {"attempts": attempts, "initial": "20ms", "max": "100ms"}})
}

#[tokio::test]
async fn each_event_is_pushed_and_retried_until_it_lands() {
    let svc = StepService::start().await;
    svc.then("/events", vec![Reply::Status(503, "busy"), Reply::Status(503, "busy")]);
    let app = app(&svc).await;
    assert_eq!(app.put_subscription("analytics", push(5)).await.status(), 201);

    app.publish("orders", &cloud_event("e1", "OrderPlaced", json!({"data": {"total": 12}}))).await;

    let got = calls(&svc, "/events", 3).await;
    assert!(got.iter().all(|c| c.key == "analytics//tests/e1"), "one idempotency key per event and subscription");
    assert_eq!(got[2].body["data"]["total"], 12, "the event in the CloudEvents JSON format");
    assert_eq!(got[2].body["specversion"], "1.0");
    app.acknowledged("analytics", Duration::from_secs(5)).await;
    assert_eq!(svc.calls("/events").len(), 3, "delivered once it landed");
}

#[tokio::test]
async fn an_event_the_consumer_refuses_is_dead_lettered_at_once_and_a_redrive_delivers_it_again() {
    let svc = StepService::start().await;
    let app = app(&svc).await;
    a_refused_event_is_dead_lettered_and_redriven(&app, &svc).await;
}

/// On any backend: a 400 buries the event at once, in herald's one
/// dead-letter list, and a redrive with an edited payload delivers it.
pub(crate) async fn a_refused_event_is_dead_lettered_and_redriven(app: &TestApp, svc: &StepService) {
    svc.then("/events", vec![Reply::Status(400, "this order has no items")]);
    app.put_subscription("analytics", push(5)).await;

    app.publish("orders", &cloud_event("e1", "OrderPlaced", json!({"data": {"items": []}}))).await;
    let letters = app.dead_letters("subscription=analytics", 1, Duration::from_secs(10)).await;

    assert_eq!(letters[0]["kind"], "event");
    assert_eq!(letters[0]["attempts"], 1, "a 400 is not tried again");
    assert_eq!(letters[0]["error"], "this order has no items");
    assert_eq!(svc.calls("/events").len(), 1);
    let id = letters[0]["id"].as_i64().unwrap();
    let mut fixed = letters[0]["payload"].clone();
    fixed["data"] = json!({"items": [{"sku": "tea"}]});
    let redriven = app
        .http
        .post(app.url(&format!("/v1/dead-letters/{id}:redrive")))
        .json(&json!({"payload": fixed}))
        .send()
        .await
        .unwrap();
    assert_eq!(redriven.status(), 204);
    let got = calls(svc, "/events", 2).await;
    assert_eq!(got[1].body["data"]["items"][0]["sku"], "tea", "the edited event went out");
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]), "redriven: gone");
    let again = app
        .http
        .post(app.url(&format!("/v1/dead-letters/{id}:redrive")))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

/// (key, event id, began, ended) of each delivery.
type Timings = Arc<Mutex<Vec<(String, String, Instant, Instant)>>>;

/// A consumer that records when each event's delivery began and ended.
async fn timing_consumer() -> (String, Timings) {
    let seen: Timings = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: axum::Json<Value>| {
            let log = log.clone();
            async move {
                let began = Instant::now();
                tokio::time::sleep(Duration::from_millis(10)).await;
                let key = body["partitionkey"].as_str().unwrap().to_string();
                log.lock().unwrap().push((key, body["id"].as_str().unwrap().to_string(), began, Instant::now()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn events_of_one_key_go_to_a_push_consumer_in_order_one_at_a_time() {
    let svc = StepService::start().await;
    let (url, seen) = timing_consumer().await;
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[], &svc, |c| {
        c.services.get_mut("other").unwrap().instances = vec![url];
    })
    .await;
    let mut sub = push(5);
    sub["push"]["service"] = json!("other");
    app.put_subscription("analytics", sub).await;

    const KEYS: [&str; 3] = ["a", "b", "c"];
    let batch: Vec<Value> =
        (0..30).map(|i| cloud_event(&format!("e{i:02}"), "T", json!({"partitionkey": KEYS[i % 3]}))).collect();
    let resp = app
        .http
        .post(app.url("/v1/topics/orders/events"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(Value::Array(batch).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let arrived = async || (seen.lock().unwrap().len() >= 30).then_some(());
    eventually("every event arrived", Duration::from_secs(10), arrived).await;

    let seen = seen.lock().unwrap().clone();
    let mut overlapped_across_keys = false;
    for (i, (key, _, began, ended)) in seen.iter().enumerate() {
        for (other, _, b2, e2) in &seen[i + 1..] {
            let overlap = began < e2 && b2 < ended;
            assert!(!(overlap && key == other), "two events of key {key} were out at once");
            overlapped_across_keys |= overlap;
        }
    }
    assert!(overlapped_across_keys, "other keys proceed beside each other");
    for key in ["a", "b", "c"] {
        let mut ids: Vec<(&Instant, &String)> = seen.iter().filter(|s| s.0 == key).map(|s| (&s.2, &s.1)).collect();
        ids.sort();
        let order: Vec<&String> = ids.iter().map(|(_, id)| *id).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "key {key} in publish order");
    }
}

#[tokio::test]
async fn a_consumer_that_keeps_failing_exhausts_the_attempts_and_a_bulk_redrive_tries_again() {
    let svc = StepService::start().await;
    svc.on("/events", Reply::Status(500, "down"));
    // This test is about the subscription's attempts, not the instance's
    // circuit (which would hold the events back while it is open).
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[], &svc, |c| {
        let circuit = &mut c.services.get_mut("svc").unwrap().circuit;
        circuit.consecutive_failures = 1000;
        circuit.min_requests = 1000;
    })
    .await;
    app.put_subscription("analytics", push(3)).await;
    app.put_subscription("other", push(3)).await;

    app.publish("orders", &cloud_event("e1", "T", json!({}))).await;
    let letters = app.dead_letters("subscription=analytics", 1, Duration::from_secs(10)).await;
    app.dead_letters("subscription=other", 1, Duration::from_secs(10)).await;

    assert_eq!(letters[0]["attempts"], 3);
    assert_eq!(letters[0]["errors"].as_array().unwrap().len(), 3, "every attempt's error");
    svc.on("/events", Reply::Json(json!({})));
    let before = svc.calls("/events").len();
    let bulk: Value = app
        .http
        .post(app.url("/v1/dead-letters:redrive"))
        .json(&json!({"subscription": "analytics"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((bulk["redriven"].as_u64(), bulk["more"].as_bool()), (Some(1), Some(false)));
    calls(&svc, "/events", before + 1).await;
    let left = app.get_json("/v1/dead-letters").await["items"].as_array().unwrap().clone();
    assert_eq!(left.len(), 1, "only the filtered subscription's were redriven");
    assert_eq!(left[0]["subscription"], "other");
}

#[tokio::test]
async fn while_the_consumers_circuit_is_open_its_events_wait_without_spending_attempts() {
    let svc = StepService::start().await;
    svc.then("/events", vec![Reply::Status(500, "down"), Reply::Status(500, "down")]);
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[], &svc, |c| {
        let circuit = &mut c.services.get_mut("svc").unwrap().circuit;
        circuit.consecutive_failures = 2;
        circuit.open_for = herald_core::Span::from_millis(500);
    })
    .await;
    let mut sub = push(3);
    sub["retry"]["max"] = json!("20ms");
    app.put_subscription("analytics", sub).await;

    app.publish("orders", &cloud_event("e1", "T", json!({}))).await;
    app.publish("orders", &cloud_event("e2", "T", json!({}))).await;
    let got = calls(&svc, "/events", 4).await;

    // Two failures opened the circuit; the events waited it out and then
    // went through, well within their three attempts.
    assert_eq!(got.len(), 4);
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_a_consumer_that_refuses_connections_wait_and_spend_no_attempt() {
    let svc = StepService::start().await;
    let port = free_port(); // connections refused until the consumer starts
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[], &svc, |c| {
        let down = herald_server::config::ServiceConfig::new(vec![format!("http://127.0.0.1:{port}")]);
        c.services.insert("down".into(), down);
    })
    .await;
    // Two attempts each: an attempt spent on a refused connection would bury it.
    let sub = json!({"topic": "orders", "push": {"service": "down", "path": "/events", "max_in_flight": 8},
                     "retry": {"attempts": 2, "initial": "20ms", "max": "100ms"}});
    assert_eq!(app.put_subscription("audit-log", sub).await.status(), 201);
    for i in 0..30 {
        app.publish("orders", &cloud_event(&format!("e{i}"), "OrderPlaced", json!({}))).await;
    }

    // Down for three seconds (the outage, not a wait for a condition).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.stats("audit-log").await["dead_letters"], 0, "nothing buried while it was down");
    let consumer = StepService::start_on(port).await;

    let got = calls(&consumer, "/events", 30).await;
    app.acknowledged("audit-log", Duration::from_secs(10)).await;
    assert_eq!(consumer.calls("/events").len(), 30, "each event delivered once");
    assert!(
        got.iter().all(|c| c.attempt == "1"),
        "each on its first attempt: {:?}",
        got.iter().map(|c| &c.attempt).collect::<Vec<_>>()
    );
    assert_eq!(app.stats("audit-log").await["dead_letters"], 0);
}
