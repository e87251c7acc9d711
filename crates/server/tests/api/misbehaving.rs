//! Step services that misbehave at the HTTP level, written byte for byte:
//! an answer cut off mid-body, a 2xx that is not JSON, an HTML error page,
//! a service that flaps. herald retries by policy, keeps what it can keep,
//! tells the user each state in words, and other operations keep their
//! pace meanwhile.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::helpers::*;

/// A service answering each path as scripted, counting its calls.
async fn misbehaving() -> (String, Arc<Mutex<HashMap<String, u32>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let counted = calls.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(answer(tcp, counted.clone()));
        }
    });
    (url, calls)
}

async fn answer(mut tcp: TcpStream, calls: Arc<Mutex<HashMap<String, u32>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // The head, then the body its Content-Length announces.
    let (path, body_len, head_end) = loop {
        let Ok(n @ 1..) = tcp.read(&mut chunk).await else { return };
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let len = head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
        break (path, len, end + 4);
    };
    while buf.len() < head_end + body_len {
        let Ok(n @ 1..) = tcp.read(&mut chunk).await else { return };
        buf.extend_from_slice(&chunk[..n]);
    }
    let n = {
        let mut calls = calls.lock().unwrap();
        let n = calls.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    let whole = |status: &str, ct: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let out = match (path.as_str(), n) {
        // Promises 100 bytes, sends 12, and hangs up: the first time.
        ("/cut", 1) => {
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"partial\": ".into()
        }
        ("/cut", _) => whole("200 OK", "application/json", "{\"whole\": true}"),
        ("/text", _) => whole("200 OK", "text/plain", "done, thanks"),
        ("/html", _) => whole(
            "500 Internal Server Error",
            "text/html",
            "<html><body><h1>Whoops</h1><pre>at line 3</pre></body></html>",
        ),
        ("/flap", n) if n % 2 == 1 => whole("503 Service Unavailable", "text/plain", "busy"),
        _ => whole("200 OK", "application/json", "{}"),
    };
    let _ = tcp.write_all(out.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

#[tokio::test]
async fn misbehaving_services_are_retried_by_policy_and_the_user_sees_each_state_in_words() {
    let (url, calls) = misbehaving().await;
    let svc = StepService::start().await;
    let wf = |name: &str, step: &str| sequential(name, &[step], "").replace("svc", "bad");
    let files =
        [wf("cut", "cut"), wf("text", "text"), wf("html", "html"), wf("flap", "flap"), sequential("fine", &["a"], "")];
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &files, &svc, |c| {
        c.services.insert("bad".into(), herald_server::config::ServiceConfig::new(vec![url.clone()]));
    })
    .await;
    let start = |w: &'static str| app.start_id(w, json!({"n": 1}));
    let (cut, text, html, flap) = (start("cut").await, start("text").await, start("html").await, start("flap").await);
    let fine: Vec<String> = futures::future::join_all((0..5).map(|_| start("fine"))).await;
    for id in &fine {
        assert_eq!(app.wait_final(id).await["status"], "succeeded", "other operations keep their pace");
    }

    // Cut off mid-body: not taken as done with half a result; asked again.
    let op = app.wait_final(&cut).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(op["steps"][0]["result"], json!({"whole": true}), "the whole answer, not the cut one");
    assert!(said(&op, "step_retrying", "cut off"), "the retry says why: {op:#}");
    // A 2xx that is not JSON: done, its text kept as the result.
    let op = app.wait_final(&text).await;
    assert_eq!((op["status"].as_str(), &op["steps"][0]["result"]), (Some("succeeded"), &json!("done, thanks")));
    // An HTML error page: retried by policy, then failed; the user is not
    // shown the page.
    let op = app.wait_final(&html).await;
    assert_eq!(op["status"], "failed");
    assert_eq!(calls.lock().unwrap()["/html"], 3, "the workflow's three attempts");
    let shown = op.to_string();
    assert!(!shown.contains("<html") && !shown.contains("Whoops"), "no page shown to the user: {op:#}");
    assert!(said(&op, "step_failed", "500"), "{op:#}");
    // Flapping: retried until it works.
    let op = app.wait_final(&flap).await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(calls.lock().unwrap()["/flap"], 2);
}

/// Whether a timeline entry of `kind` has an error (or message) saying `words`.
fn said(op: &Value, kind: &str, words: &str) -> bool {
    op["timeline"].as_array().unwrap().iter().any(|e| {
        e["type"] == kind && [&e["error"], &e["message"]].iter().any(|t| t.as_str().is_some_and(|t| t.contains(words)))
    })
}
