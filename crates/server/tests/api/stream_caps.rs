//! An end user holds at most `limits.max_streams_per_user` event streams
//! open at once (timelines, on either path, and the inbox), and gets a
//! place back as soon as one of them ends.

use std::{sync::Arc, time::Duration};

use herald_server::config::JwtAlgorithm;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{
    auth::{SERVICE, fresh_client, secured_with, start_for, user},
    helpers::*,
};

const LIMIT: usize = 3;

/// Opens a stream as `token` (its response is the open stream).
async fn open(http: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    http.get(url).bearer_auth(token).send().await.unwrap()
}

async fn assert_too_many(resp: reqwest::Response, what: &str) {
    assert_eq!(resp.status(), 429, "{what}");
    assert!(resp.headers().get("retry-after").is_some(), "{what}: Retry-After");
    assert_eq!(resp.headers()["content-type"], "application/problem+json", "{what}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "urn:herald:problem:too-many-streams", "{what}");
}

/// Opens a stream as soon as a place is free (each refused try holds none).
async fn open_when_free(url: &str, token: &str) -> reqwest::Response {
    eventually("a place came free", Duration::from_secs(20), async || {
        let resp = open(&fresh_client(), url, token).await;
        if resp.status() == 200 {
            return Some(resp);
        }
        assert_eq!(resp.status(), 429);
        None
    })
    .await
}

#[tokio::test]
async fn an_end_user_holds_at_most_the_configured_streams_and_gets_a_place_back_when_one_ends() {
    let (app, svc) = secured_with(JwtAlgorithm::HS256, |c| c.limits.max_streams_per_user = LIMIT).await;
    let gate = Arc::new(Semaphore::new(0));
    svc.on("/a", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let (alice_op, bob_op) = (start_for(&app, "alice").await, start_for(&app, "bob").await);
    let (alice, bob) = (user("alice"), user("bob"));
    let timeline = app.url(&format!("/v1/operations/{alice_op}/events"));
    let inbox = app.url("/v1/me/notifications/stream");

    // As a first request (served from the socket), on a connection in use
    // (through the router), and the inbox: three streams, the most allowed.
    let first = open(&fresh_client(), &timeline, &alice).await;
    let pooled = reqwest::Client::new();
    assert_eq!(pooled.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    let routed = open(&pooled, &timeline, &alice).await;
    let inbox_stream = open(&fresh_client(), &inbox, &alice).await;
    for s in [&first, &routed, &inbox_stream] {
        assert_eq!(s.status(), 200, "{}", s.url());
    }

    assert_too_many(open(&fresh_client(), &timeline, &alice).await, "a fourth timeline, first request").await;
    assert_eq!(pooled.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    let busy = reqwest::Client::new();
    assert_eq!(busy.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    assert_too_many(open(&busy, &timeline, &alice).await, "a fourth timeline, routed").await;
    assert_too_many(open(&fresh_client(), &inbox, &alice).await, "a second inbox").await;

    // Others are not held back by her: bob, and services.
    let bobs = open(&fresh_client(), &app.url(&format!("/v1/operations/{bob_op}/events")), &bob).await;
    assert_eq!(bobs.status(), 200);
    let clients: Vec<_> = (0..=LIMIT).map(|_| fresh_client()).collect();
    let services = futures::future::join_all(clients.iter().map(|c| open(c, &timeline, SERVICE))).await;
    assert!(services.iter().all(|s| s.status() == 200), "services are not counted");

    // She hangs up one stream on each path: each place comes back.
    drop(first);
    let again = open_when_free(&timeline, &alice).await;
    assert_too_many(open(&fresh_client(), &timeline, &alice).await, "full again").await;
    drop(routed);
    let _another = open_when_free(&inbox, &alice).await;
    assert_too_many(open(&fresh_client(), &inbox, &alice).await, "full again").await;

    // A stream that ends by itself (its operation ended) gives its place back too.
    gate.add_permits(2);
    let told = tokio::time::timeout(Duration::from_secs(20), again.text()).await.expect("the stream ends").unwrap();
    assert!(told.contains("succeeded"), "{told}");
    let _last = open_when_free(&inbox, &alice).await;
}
