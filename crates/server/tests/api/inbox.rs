use std::time::Duration;

use futures::StreamExt;
use herald_server::config::JwtAlgorithm;
use serde_json::Value;

use crate::{
    auth::{SERVICE, fresh_client, secured, start_for, user},
    helpers::*,
};

async fn inbox(app: &TestApp, token: &str) -> Value {
    app.http.get(app.url("/v1/me/notifications")).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

/// `POST` of a marking action, as JSON with no body.
pub async fn mark(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    let req = app.http.post(app.url(path)).bearer_auth(token).header("content-type", "application/json");
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_inbox_keeps_one_notification_per_operation_rewritten_as_it_moves() {
    let (app, _svc) = secured(JwtAlgorithm::HS256).await;
    let alice = user("alice");
    let first = start_for(&app, "alice").await;
    app.wait_final(&first).await;

    let box1 = inbox(&app, &alice).await;
    let items = box1["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one notification, not one per event: {box1}");
    assert_eq!(items[0]["operation_id"], first.as_str());
    assert_eq!(items[0]["status"], "succeeded");
    assert_eq!(items[0]["level"], "success");
    assert_eq!(items[0]["title"], "Test run");
    assert!(items[0]["body"].as_str().unwrap().contains("done"), "{}", items[0]["body"]);
    assert_eq!(box1["unread"], 1);

    let second = start_for(&app, "alice").await;
    app.wait_final(&second).await;
    assert_eq!(inbox(&app, &alice).await["unread"], 2);

    let nid = items[0]["id"].as_str().unwrap().to_string();
    let read = mark(&app, &format!("/v1/me/notifications/{nid}:read"), &alice).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.json::<Value>().await.unwrap()["unread"], 1);
    let again = mark(&app, &format!("/v1/me/notifications/{nid}:read"), &alice).await;
    assert_eq!(again.status(), 200, "reading twice is harmless");

    let bob = user("bob");
    assert_eq!(inbox(&app, &bob).await["items"].as_array().unwrap().len(), 0, "bob's inbox is his own");
    let theirs = mark(&app, &format!("/v1/me/notifications/{nid}:read"), &bob).await;
    assert_eq!(theirs.status(), 404, "another's notification does not exist for him");

    let all = mark(&app, "/v1/me/notifications:read-all", &alice).await;
    assert_eq!(all.json::<Value>().await.unwrap()["marked"], 1);
    assert_eq!(inbox(&app, &alice).await["unread"], 0);
    let service = app.http.get(app.url("/v1/me/notifications")).bearer_auth(SERVICE).send().await.unwrap();
    assert_eq!(service.status(), 403);
}

/// Inbox changes read from an SSE response as they come.
pub struct Changes {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl Changes {
    pub fn new(resp: reqwest::Response) -> Self {
        assert_eq!(resp.status(), 200);
        Changes { body: resp.bytes_stream().boxed(), buf: String::new() }
    }

    pub async fn next(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            while out.len() < n
                && let Some(end) = self.buf.find("\n\n")
            {
                let frame: String = self.buf.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                    out.push(serde_json::from_str(data).unwrap());
                }
            }
            if out.len() < n {
                let chunk =
                    tokio::time::timeout(Duration::from_secs(20), self.body.next()).await.expect("a change in time");
                self.buf.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
            }
        }
        out
    }
}

async fn changes(resp: reqwest::Response, n: usize) -> Vec<Value> {
    Changes::new(resp).next(n).await
}

#[tokio::test]
async fn the_inbox_stream_is_live_and_resumes_after_a_disconnect_without_gaps() {
    let (app, svc) = secured(JwtAlgorithm::HS256).await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    svc.on("/a", Reply::Gate(gate.clone(), Box::new(Reply::Json(serde_json::json!({})))));
    let alice = user("alice");
    let url = app.url("/v1/me/notifications/stream");

    let live = fresh_client().get(&url).bearer_auth(&alice).send().await.unwrap();
    let id = start_for(&app, "alice").await;
    let first = changes(live, 1).await;
    assert_eq!(first[0]["notification"]["operation_id"], id.as_str());
    assert_eq!(first[0]["notification"]["status"], "running");
    assert_eq!(first[0]["unread"], 1);
    let seen = first[0]["notification"]["version"].as_u64().unwrap();
    // Disconnected (the response is dropped); the operation ends meanwhile.
    gate.add_permits(1);
    app.wait_final(&id).await;

    let resumed =
        fresh_client().get(&url).bearer_auth(&alice).header("last-event-id", seen.to_string()).send().await.unwrap();
    let rest = changes(resumed, 1).await;
    assert_eq!(rest[0]["notification"]["status"], "succeeded", "the change made while away arrives");
    assert!(rest[0]["notification"]["version"].as_u64().unwrap() > seen);

    let mut other_tab = Changes::new(fresh_client().get(format!("{url}?access_token={alice}")).send().await.unwrap());
    let backlog = other_tab.next(1).await;
    assert_eq!(backlog[0]["notification"]["read"], false);
    let nid = rest[0]["notification"]["id"].as_str().unwrap().to_string();
    mark(&app, &format!("/v1/me/notifications/{nid}:read"), &alice).await;
    let got = other_tab.next(1).await;
    assert_eq!(got[0]["notification"]["read"], true, "marking read reaches open streams");
    assert_eq!(got[0]["unread"], 0);
}
