//! Where herald lets callers in without a token (no `[auth]`, or
//! `auth.anonymous`), a page on another site must not drive it through a
//! visitor's browser: requests under a foreign `Host` (DNS rebinding) and
//! changes from a foreign `Origin` are refused on every path. With
//! credentials required, neither is checked.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{
    auth::{SERVICE, secured},
    helpers::*,
};

const REFUSED: (u16, &str) = (403, "urn:herald:problem:origin-not-allowed");

/// A raw request on a connection of its own, with these extra header lines.
async fn send(app: &TestApp, method: &str, path: &str, host: &str, extra: &[&str]) -> RawAnswer {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    let body = if method == "POST" { "{}" } else { "" };
    if method == "POST" {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    raw(app, &format!("{head}\r\n{body}")).await
}

fn refused(a: &RawAnswer) -> bool {
    (a.status, a.problem_type().as_str()) == REFUSED
        && a.header("content-type") == Some("application/problem+json")
        && a.header("x-content-type-options") == Some("nosniff")
}

/// An open herald with one operation held running, and the step service.
async fn open_app(tweak: impl FnOnce(&mut herald_server::Config)) -> (TestApp, StepService, String, Arc<Semaphore>) {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.on("/a", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&sequential("order", &["a"], "")], &svc, tweak).await;
    let id = app.start_id("order", json!({})).await;
    (app, svc, id, gate)
}

/// Every path a request can take: the page, the API, a timeline stream as
/// a first request (served from the socket), the gateway (its express lane).
fn paths(id: &str) -> Vec<String> {
    vec![
        "/".into(),
        "/v1/operations".into(),
        format!("/v1/operations/{id}"),
        format!("/v1/operations/{id}/events"),
        "/gw/svc/hello".into(),
    ]
}

#[tokio::test]
async fn without_auth_a_request_under_a_foreign_host_name_is_refused_on_every_path() {
    let (app, svc, id, gate) = open_app(|_| {}).await;
    for path in paths(&id) {
        for host in ["evil.example", "evil.example:80", "localhost.evil.example", "10.9.9.9"] {
            let a = send(&app, "GET", &path, host, &[]).await;
            assert!(refused(&a), "GET {path} as {host}: {} {}", a.status, String::from_utf8_lossy(&a.body));
        }
    }
    assert!(svc.calls("/hello").is_empty(), "the gateway passed nothing on");

    let port = app.base.rsplit(':').next().unwrap().to_string();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}"), "127.0.0.1".into()]
    {
        // Streams of unknown operations end at once; the rest answer whole.
        for path in ["/", "/v1/operations", "/v1/operations/op_nope/events", "/gw/svc/hello"] {
            let a = send(&app, "GET", path, &host, &[]).await;
            assert!(a.status < 400 || a.status == 404, "GET {path} as {host}: {}", a.status);
        }
    }
    assert_eq!(svc.calls("/hello").len(), 4, "the gateway passed each on");
    gate.add_permits(1);
}

#[tokio::test]
async fn without_auth_a_change_from_another_site_is_refused_and_changes_nothing() {
    let (app, svc, id, gate) = open_app(|_| {}).await;
    let host = app.base.trim_start_matches("http://").to_string();
    let cancel = format!("/v1/operations/{id}:cancel");
    let foreign =
        ["Origin: http://evil.example", "Origin: null", "Origin: http://localhost:1", "Sec-Fetch-Site: cross-site"];
    for line in foreign {
        for path in [cancel.as_str(), "/v1/workflows/order/operations", "/gw/svc/hello"] {
            let a = send(&app, "POST", path, &host, &[line]).await;
            assert!(refused(&a), "POST {path} with {line}: {}", a.status);
        }
    }
    assert_eq!(app.get(&id).await["status"], "running", "nothing was cancelled");
    let list = app.get_json("/v1/operations").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "nothing was started");
    assert!(svc.calls("/hello").is_empty(), "the gateway passed nothing on");

    // Reading is not changing, and herald's own pages may change things.
    let read = send(&app, "GET", &format!("/v1/operations/{id}"), &host, &["Origin: http://evil.example"]).await;
    assert_eq!(read.status, 200);
    let own = format!("Origin: http://{host}");
    let started =
        send(&app, "POST", "/v1/workflows/order/operations", &host, &[&own, "Sec-Fetch-Site: same-origin"]).await;
    assert_eq!(started.status, 202);
    let cancelled = send(&app, "POST", &cancel, &host, &[&own]).await;
    assert_eq!(cancelled.status, 202, "{}", String::from_utf8_lossy(&cancelled.body));
    let proxied = send(&app, "POST", "/gw/svc/hello", &host, &[&own]).await;
    assert_eq!(proxied.status, 200);
    gate.add_permits(2);
}

#[tokio::test]
async fn with_anonymous_callers_let_in_the_same_rule_holds_and_public_url_names_herald() {
    use herald_server::config::{StaticRole, StaticToken};
    let (app, _svc, id, gate) = open_app(|c| {
        c.auth.tokens =
            vec![StaticToken { name: "shop".into(), token: SERVICE.into(), role: StaticRole::Service, services: None }];
        c.auth.anonymous = Some(StaticRole::Admin);
        c.public_url = Some("http://herald.internal:7070/".into());
    })
    .await;
    for path in paths(&id) {
        let a = send(&app, "GET", &path, "evil.example", &[]).await;
        assert!(refused(&a), "GET {path}: {}", a.status);
    }
    let a = send(&app, "GET", "/v1/operations", "herald.internal:7070", &[]).await;
    assert_eq!(a.status, 200, "the public URL's host is herald's");
    let a =
        send(&app, "POST", &format!("/v1/operations/{id}:cancel"), "herald.internal", &["Origin: http://x.test"]).await;
    assert!(refused(&a));
    gate.add_permits(1);
}

#[tokio::test]
async fn with_credentials_required_neither_host_nor_origin_is_checked() {
    let (app, _svc) = secured(herald_server::config::JwtAlgorithm::HS256).await;
    let bearer = format!("Authorization: Bearer {SERVICE}");
    let a = send(&app, "GET", "/v1/operations", "evil.example", &[&bearer]).await;
    assert_eq!(a.status, 200);
    let a =
        send(&app, "POST", "/v1/workflows/order/operations", "evil.example", &[&bearer, "Origin: http://evil.example"])
            .await;
    // The body lacks the workflow's subject: refused for that, not for where it came from.
    let body: Value = serde_json::from_slice(&a.body).unwrap();
    assert_ne!((a.status, body["type"].as_str().unwrap_or_default()), REFUSED);
    assert_eq!(a.status, 422, "{body}");
}
