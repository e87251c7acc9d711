//! Abuse at the edges of the API: header floods, numbers too large for
//! any field, bytes that are not UTF-8, lengths announced but never sent,
//! and paths that climb out of the UI's assets. Each gets a clear 4xx at
//! once, stores nothing, and herald goes on serving.

use serde_json::{Value, json};

use crate::helpers::*;

/// A request and what herald answers it: the status, and the problem's
/// `type` (`None` where hyper refuses the framing before herald reads it).
struct Abuse {
    what: &'static str,
    request: Vec<u8>,
    status: u16,
    problem: Option<&'static str>,
}

fn get(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n").into_bytes()
}

fn get_bytes(path: &str, header: &[u8]) -> Vec<u8> {
    let mut r = get(path, "");
    r.truncate(r.len() - 2);
    r.extend_from_slice(header);
    r.extend_from_slice(b"\r\n");
    r
}

/// A start whose `Idempotency-Key` is `key`, byte for byte.
fn keyed(path: &str, key: &[u8]) -> Vec<u8> {
    let body = b"{\"customer\":\"c\"}";
    let mut header = b"Idempotency-Key: ".to_vec();
    header.extend_from_slice(key);
    header.extend_from_slice(format!("\r\nContent-Length: {}\r\n", body.len()).as_bytes());
    let mut r = post(path, "", body);
    let at = r.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    r.splice(at..at, header);
    r
}

fn post(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n{headers}\r\n"
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn abuses(op: &str) -> Vec<Abuse> {
    let start = "/v1/workflows/order/operations";
    let events = format!("/v1/operations/{op}/events");
    let sized = |body: &[u8]| format!("Content-Length: {}\r\n", body.len());
    let not_utf8 = b"{\"customer\": \"\xff\xfe\"}";
    let a = |what, request, status, problem| Abuse { what, request, status, problem };
    let mut all = vec![
        a("a flood of header lines", get("/v1/operations", &"X-A: 1\r\n".repeat(200)), 431, None),
        a("a head over 32 KiB", get("/v1/operations", &format!("X-A: {}\r\n", "a".repeat(40_000))), 431, None),
        a("a limit past 64 bits", get("/v1/operations?limit=99999999999999999999999", ""), 422, Some("invalid-input")),
        a("a limit in exponent form", get("/v1/operations?limit=1e3", ""), 422, Some("invalid-input")),
        a("a negative limit", get("/v1/operations?limit=-1", ""), 422, Some("invalid-input")),
        a("a cursor that is no cursor", get("/v1/operations?cursor=%FF%00zz", ""), 422, Some("invalid-input")),
        a(
            "a Last-Event-ID past 64 bits",
            get(&events, "Last-Event-ID: 99999999999999999999999\r\n"),
            400,
            Some("bad-request"),
        ),
        a("a negative Last-Event-ID", get(&events, "Last-Event-ID: -1\r\n"), 400, Some("bad-request")),
        a(
            "an `after` past 64 bits",
            get(&format!("{events}?after=99999999999999999999999"), ""),
            400,
            Some("bad-request"),
        ),
        a("a body that is not UTF-8", post(start, &sized(not_utf8), not_utf8), 400, Some("invalid-json")),
        a("an idempotency key that is not UTF-8", keyed(start, b"\xff\xfe"), 422, Some("invalid-input")),
        a(
            "a Last-Event-ID that is not UTF-8",
            get_bytes(&events, b"Last-Event-ID: \xff\r\n"),
            400,
            Some("bad-request"),
        ),
        // DEL is no header byte at all: hyper refuses the head.
        a("a control byte in a header", keyed(start, b"\x7f"), 400, None),
        a("a path that is not UTF-8", get("/v1/operations/op_%FF%FE", ""), 400, Some("bad-request")),
        a("a Content-Length past 64 bits", post(start, "Content-Length: 99999999999999999999999\r\n", b""), 400, None),
        // Refused on what it announces, at once: not after waiting for
        // ten gigabytes (nor for the body's 30 s timeout).
        a(
            "ten gigabytes announced",
            post(start, "Content-Length: 10000000000\r\n", b"{"),
            413,
            Some("payload-too-large"),
        ),
        a(
            "a number too large for JSON",
            post(start, &sized(b"{\"customer\": 1e999}"), b"{\"customer\": 1e999}"),
            400,
            Some("invalid-json"),
        ),
    ];
    for climb in [
        "/ui/../../../../etc/passwd",
        "/ui/..%2f..%2f..%2fetc%2fpasswd",
        "/ui/%2e%2e/%2e%2e/Cargo.toml",
        "/ui/app.js/../../../etc/passwd",
        "/ui/app.js%00.html",
        "/ui/..\\..\\Cargo.toml",
        "//etc/passwd",
        "/ui/%252e%252e/Cargo.toml",
    ] {
        all.push(a("a path out of the UI's assets", get(climb, ""), 404, Some("not-found")));
    }
    all
}

#[tokio::test]
async fn abuse_at_the_edges_gets_a_clear_4xx_and_changes_nothing() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "subject = \"/customer\"")], &svc).await;
    let op = app.start_id("order", json!({"customer": "c"})).await;
    assert_eq!(app.wait_final(&op).await["status"], "succeeded");

    let mut wrong = Vec::new();
    for abuse in abuses(&op) {
        let began = std::time::Instant::now();
        let got = raw(&app, &abuse.request).await;
        let took = began.elapsed();
        let kind = abuse.problem.map(|k| format!("urn:herald:problem:{k}"));
        let seen =
            (got.status, (got.header("content-type") == Some("application/problem+json")).then(|| got.problem_type()));
        if seen != (abuse.status, kind.clone()) || took > std::time::Duration::from_secs(5) {
            wrong.push(format!("{}: {seen:?} in {took:?}, not ({}, {kind:?})", abuse.what, abuse.status));
        }
        let body = String::from_utf8_lossy(&got.body);
        assert!(!body.contains("root:") && !body.contains("[workspace]"), "{}: a file leaked", abuse.what);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "herald still serves");
    let list: Value = app.http.get(app.url("/v1/operations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "nothing was stored but the one operation: {list}");
    assert_eq!(svc.all_calls().len(), 1, "no step was called but the one");
}
