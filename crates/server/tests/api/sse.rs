use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::helpers::*;

/// Reads SSE frames until `n` events arrived or the stream ended.
pub async fn read_events(resp: reqwest::Response, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut body = resp.bytes_stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(c)) => c.unwrap(),
            Ok(None) => break,
            Err(_) => panic!("no event within the deadline; got {out:?}"),
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while out.len() < n
            && let Some(end) = buf.find("\n\n")
        {
            let frame: String = buf.drain(..end + 2).collect();
            let data: String = frame.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            let id = frame.lines().find_map(|l| l.strip_prefix("id: ")).map(str::to_string);
            if !data.is_empty() {
                let e: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(Some(e["seq"].to_string()), id, "the SSE id is the event's seq");
                out.push(e);
            }
        }
    }
    out
}

/// A client whose every request opens a new connection: a stream is then
/// the connection's first request, and herald serves it straight from the
/// socket rather than through its router.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

#[tokio::test]
async fn a_watcher_that_reconnects_with_last_event_id_misses_nothing_and_sees_nothing_twice() {
    resume_without_gaps(fresh_client).await;
}

#[tokio::test]
async fn a_stream_asked_for_on_a_connection_in_use_resumes_the_same_way() {
    // Pooled: the stream reuses the connection the start request used.
    resume_without_gaps(reqwest::Client::new).await;
}

#[tokio::test]
async fn a_stream_of_an_unknown_operation_is_a_404_problem_on_either_path() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;
    for http in [fresh_client(), app.http.clone()] {
        for id in ["op_0193aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "op_nope"] {
            let resp = http.get(app.url(&format!("/v1/operations/{id}/events"))).send().await.unwrap();
            assert_eq!(resp.status(), 404);
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["type"], "urn:herald:problem:not-found");
        }
    }
}

#[tokio::test]
async fn a_stream_resumed_past_the_final_event_ends_after_what_followed_it() {
    let svc = StepService::start().await;
    let redacting = sequential("order", &["a"], "[retention]\nredact = [\"card\"]");
    let app = spawn_app(&[&redacting], &svc).await;
    let id = app.start_id("order", json!({"card": "4242424242424242"})).await;
    let op = app.wait_for(&id, Duration::from_secs(10), |op| event_types(op).contains(&"redacted".to_string())).await;
    let types = event_types(&op);
    let last = types.len() as u64;
    assert_eq!(types[types.len() - 2..], ["succeeded", "redacted"]);
    let events_url = app.url(&format!("/v1/operations/{id}/events"));

    for http in [reqwest::Client::new(), fresh_client()] {
        let resp = http.get(&events_url).header("last-event-id", (last - 1).to_string()).send().await.unwrap();
        // Read to the stream's end: it must end, not idle on keep-alives.
        let rest = read_events(resp, usize::MAX).await;
        assert_eq!(rest.iter().map(|e| e["type"].as_str().unwrap()).collect::<Vec<_>>(), ["redacted"]);
        let after = http.get(&events_url).header("last-event-id", last.to_string()).send().await.unwrap();
        assert_eq!(after.status(), 204);
    }
}

async fn resume_without_gaps(client: fn() -> reqwest::Client) {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.on("/b", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let app = spawn_app(&[&sequential("order", &["a", "b", "c"], "")], &svc).await;
    let id = app.start_id("order", json!({})).await;
    let events_url = app.url(&format!("/v1/operations/{id}/events"));

    let http = client();
    let _ = http.get(app.url("/healthz")).send().await.unwrap();
    let first = read_events(http.get(&events_url).send().await.unwrap(), 3).await;
    assert_eq!(first.iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    // The connection is dropped here; the operation moves on meanwhile.
    gate.add_permits(1);
    app.wait_final(&id).await;

    let resp = http.get(&events_url).header("last-event-id", "3").send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let rest = read_events(resp, usize::MAX).await;
    let seqs: Vec<u64> = rest.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (4..4 + seqs.len() as u64).collect::<Vec<_>>(), "no gap, no duplicate");
    assert_eq!(rest.last().unwrap()["type"], "succeeded", "the stream ends with the outcome");
    assert!(!rest.last().unwrap()["message"].as_str().unwrap().is_empty());

    let after_end =
        http.get(&events_url).header("last-event-id", seqs.last().unwrap().to_string()).send().await.unwrap();
    assert_eq!(after_end.status(), 204, "nothing more will come: EventSource stops reconnecting");
}

#[tokio::test]
async fn a_live_watcher_sees_each_step_as_it_happens() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.on("/b", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let app = spawn_app(&[&sequential("order", &["a", "b"], "")], &svc).await;
    let id = app.start_id("order", json!({})).await;
    let resp = app.http.get(app.url(&format!("/v1/operations/{id}/events"))).send().await.unwrap();

    let watcher = tokio::spawn(read_events(resp, usize::MAX));
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "b")["status"] == "running").await;
    gate.add_permits(1);
    let events = watcher.await.unwrap();

    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec!["accepted", "started", "step_started", "step_succeeded", "step_started", "step_succeeded", "succeeded"]
    );
    assert_eq!(events[2]["message"], "Doing a");
}
