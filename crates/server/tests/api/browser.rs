//! What a browser is told: the page's Content-Security-Policy and framing
//! rule, `nosniff` on every answer, and POSTs taken only as JSON, so a form
//! on another site cannot act through a visitor's browser.

use std::sync::Arc;

use axum::{Router, response::Html, routing::get};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::helpers::*;

fn assert_hardened(what: &str, header: impl Fn(&str) -> Option<String>) {
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{what}: nosniff");
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{what}: X-Frame-Options");
    let csp = header("content-security-policy").unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    let directive = |name: &str| {
        csp.split(';').map(str::trim).find(|d| d.split_whitespace().next() == Some(name)).map(str::to_string)
    };
    assert_eq!(directive("default-src").as_deref(), Some("default-src 'self'"), "{what}: {csp}");
    assert_eq!(directive("frame-ancestors").as_deref(), Some("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(directive("connect-src").as_deref(), Some("connect-src 'self'"), "{what}: {csp}");
    let scripts = directive("script-src").unwrap_or_else(|| format!("(default) {}", directive("default-src").unwrap()));
    assert!(!scripts.contains("unsafe-inline") && !scripts.contains("unsafe-eval"), "{what}: {csp}");
}

fn of(resp: &reqwest::Response) -> impl Fn(&str) -> Option<String> + '_ {
    |name| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

#[tokio::test]
async fn the_page_runs_only_scripts_and_styles_from_files_of_its_own_origin() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;

    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_hardened("GET /", of(&page));
    let html = page.text().await.unwrap();
    // Nothing inline: the policy forbids it, so the page must not need it.
    assert!(!html.contains("<style"), "an inline style block");
    assert!(!html.contains(" style="), "an inline style attribute");
    let inline_handler = html.split_whitespace().any(|w| w.starts_with("on") && w.contains("=\""));
    assert!(!inline_handler, "an inline event handler");
    let scripts: Vec<&str> = html.match_indices("<script").map(|(i, _)| &html[i..]).collect();
    assert!(!scripts.is_empty());
    for (tag, kind) in [("<script src=\"", "text/javascript"), ("<link rel=\"stylesheet\" href=\"", "text/css")] {
        let srcs: Vec<&str> =
            html.match_indices(tag).map(|(i, _)| html[i + tag.len()..].split('"').next().unwrap()).collect();
        assert!(!srcs.is_empty(), "no {tag}");
        for src in srcs {
            assert!(src.starts_with('/') && !src.starts_with("//"), "{src} is not same-origin");
            let file = app.http.get(app.url(src)).send().await.unwrap();
            assert_eq!(file.status(), 200, "{src}");
            assert!(of(&file)("content-type").unwrap().starts_with(kind), "{src}");
            assert_eq!(of(&file)("x-content-type-options").as_deref(), Some("nosniff"), "{src}");
        }
    }
    assert_eq!(scripts.len(), html.matches("<script src=\"").count(), "every script is a file");
}

/// The demo page is ES modules: app.js imports the others (among them the
/// package's built client, herald.js), each a file of the same origin,
/// served as JavaScript with `nosniff` (a browser runs a module only with a
/// JavaScript type).
#[tokio::test]
async fn every_module_the_page_imports_is_served_as_javascript_from_its_own_origin() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;
    let html = app.http.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<script src=\"/ui/app.js\" type=\"module\">"), "app.js is loaded as a module");

    let (mut todo, mut seen) = (vec!["app.js".to_string()], Vec::new());
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        let file = app.http.get(app.url(&format!("/ui/{name}"))).send().await.unwrap();
        assert_eq!(file.status(), 200, "{name}");
        assert!(of(&file)("content-type").unwrap().starts_with("text/javascript"), "{name}");
        assert_eq!(of(&file)("x-content-type-options").as_deref(), Some("nosniff"), "{name}");
        let text = file.text().await.unwrap();
        for line in text.lines().filter(|l| l.starts_with("import ")) {
            let from = line.split(" from '").nth(1).and_then(|f| f.split('\'').next()).unwrap_or_default();
            let next =
                from.strip_prefix("./").unwrap_or_else(|| panic!("{name} imports {from:?}, not a file beside it"));
            todo.push(next.to_string());
        }
        seen.push(name);
    }
    assert!(seen.iter().any(|n| n == "herald.js"), "the page uses the package's client: {seen:?}");
    let served = app.http.get(app.url("/ui/herald.js")).send().await.unwrap().text().await.unwrap();
    let built = include_str!("../../../../clients/js/dist/herald.js");
    assert_eq!(served, built, "/ui/herald.js is the package's built file");
}

#[tokio::test]
async fn every_answer_of_the_api_carries_nosniff_on_every_path() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.on("/a", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;
    let id = app.start_id("order", json!({})).await;

    let answers = [
        app.http.get(app.url("/v1/workflows")).send().await.unwrap(),
        app.http.get(app.url("/v1/openapi.json")).send().await.unwrap(),
        app.http.get(app.url(&format!("/v1/operations/{id}"))).send().await.unwrap(),
        app.http.get(app.url("/v1/operations/op_nope")).send().await.unwrap(),
        app.http.get(app.url("/v1/no-such-thing")).send().await.unwrap(),
        app.http.post(app.url("/v1/workflows/order/operations")).body("{}").send().await.unwrap(),
        // A stream on a connection in use (routed), and as a first request (straight from the socket).
        app.http.get(app.url(&format!("/v1/operations/{id}/events"))).send().await.unwrap(),
    ];
    for resp in &answers {
        assert_hardened(resp.url().path(), of(resp));
    }
    for path in [format!("/v1/operations/{id}/events"), "/v1/operations/op_nope/events".to_string()] {
        let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let resp = fresh.get(app.url(&path)).send().await.unwrap();
        assert_hardened(&format!("first request {path}"), of(&resp));
    }
    gate.add_permits(1);
}

#[tokio::test]
async fn routes_merged_beside_herald_carry_the_same_headers() {
    let svc = StepService::start().await;
    let routes = Router::new().route("/demo/page", get(|| async { Html("<p>a page of the demo</p>") }));
    let app = spawn_app_merged(tempfile::tempdir().unwrap(), &[], &svc, |_| {}, routes).await;
    let resp = app.http.get(app.url("/demo/page")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_hardened("GET /demo/page", of(&resp));
}

#[tokio::test]
async fn a_post_that_is_not_json_is_refused_even_with_no_body_and_changes_nothing() {
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.on("/a", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;
    let id = app.start_id("order", json!({})).await;
    let cancel = app.url(&format!("/v1/operations/{id}:cancel"));

    // What an HTML form on another site can send: no type, a form, plain text.
    let forms = [
        app.http.post(&cancel).send().await.unwrap(),
        app.http
            .post(&cancel)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("reason=x")
            .send()
            .await
            .unwrap(),
        app.http.post(&cancel).header("content-type", "text/plain").send().await.unwrap(),
        app.http
            .post(&cancel)
            .header("content-type", "multipart/form-data; boundary=x")
            .body("--x--")
            .send()
            .await
            .unwrap(),
    ];
    for resp in forms {
        let (status, body) = (resp.status(), resp.json::<Value>().await.unwrap());
        assert_eq!((status.as_u16(), body["type"].as_str()), (415, Some("urn:herald:problem:unsupported-media-type")));
    }
    for (method, path) in [
        (reqwest::Method::POST, "/v1/me/notifications:read-all".to_string()),
        (reqwest::Method::POST, "/v1/me/notifications/nt_1:read".to_string()),
        (reqwest::Method::POST, "/v1/dead-letters:redrive".to_string()),
        (reqwest::Method::POST, "/v1/subscriptions/s:pull".to_string()),
        (reqwest::Method::PUT, "/v1/subscriptions/s".to_string()),
        (reqwest::Method::PUT, "/v1/services/svc/instances/i-1".to_string()),
        (reqwest::Method::POST, format!("/v1/operations/{id}/steps/a:complete")),
    ] {
        let resp = app.http.request(method.clone(), app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 415, "{method} {path}");
    }
    assert_eq!(app.get(&id).await["status"], "running", "nothing was cancelled");

    // JSON with no body (and a charset) is a cancel with no reason.
    let resp = app.http.post(&cancel).header("content-type", "application/json; charset=utf-8").send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    gate.add_permits(1);
    let op = app.wait_final(&id).await;
    assert_eq!(op["status"], "cancelled");
}
