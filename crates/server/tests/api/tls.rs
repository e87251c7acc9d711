//! HTTPS on herald's own listener (`[tls]`): the API, timeline streams on
//! their own path and the gateway all over TLS; plain HTTP and clients
//! that do not trust the certificate get nothing; a handshake left
//! half-way holds up nobody. (Reloading on SIGHUP is the binary's:
//! `crates/cli/tests/tls.rs`.)

use axum::{Json, Router, http::HeaderMap, routing::get};
use herald_server::config::TlsConfig;
use herald_testkit::tls::{self, Pair};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// An instance that answers the forwarding headers it was sent.
async fn echo() -> String {
    let headers = |h: HeaderMap| async move {
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        Json(json!({"x-forwarded-proto": get("x-forwarded-proto"), "forwarded": get("forwarded")}))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, Router::new().fallback(get(headers))).await });
    url
}

// The listener is the same whatever the store.
sqlite_only! {
    #[tokio::test]
    async fn every_path_is_served_over_tls_and_plain_http_gets_no_answer() {
        let svc = StepService::start().await;
        let echo = echo().await;
        let dir = tempfile::tempdir().unwrap();
        let pair = Pair::new();
        let tls = TlsConfig { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") };
        pair.write(&tls.cert, &tls.key);
        let app = spawn_app_with(dir, &[&sequential("order", &["a"], "")], &svc, |c| {
            c.tls = Some(tls);
            c.services.insert("echo".into(), herald_server::config::ServiceConfig::new(vec![echo]));
        })
        .await;
        assert!(app.base.starts_with("https://"), "{}", app.base);
        let https = tls::client(&pair);
        // Each request on a connection of its own: streams and gateway requests
        // are then first requests, which take their own paths.
        let fresh = tls::trusting(&pair).pool_max_idle_per_host(0).build().unwrap();

        // The API, through hyper.
        let id = {
            let resp = https.post(app.url("/v1/workflows/order/operations")).json(&json!({})).send().await.unwrap();
            assert_eq!(resp.status(), 202);
            resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        };
        // The timeline, from a stream served straight from the socket.
        let stream = fresh.get(app.url(&format!("/v1/operations/{id}/events"))).send().await.unwrap();
        assert_eq!(stream.status(), 200);
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        let seen = follow(stream, "succeeded").await;
        assert!(seen.contains(&"step_succeeded".to_string()), "{seen:?}");
        let op: Value = https.get(app.url(&format!("/v1/operations/{id}"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(op["status"], "succeeded", "{op:#}");

        // The gateway, which tells the instance the client came by https,
        // whether the request opens its connection or follows another.
        for http in [&fresh, &https] {
            let resp = http.get(app.url("/gw/echo/anything")).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let seen: Value = resp.json().await.unwrap();
            assert_eq!(seen["x-forwarded-proto"], "https", "{seen}");
            assert!(seen["forwarded"].as_str().unwrap().contains(";proto=https"), "{seen}");
        }

        // A client that does not trust the certificate is refused it.
        let untrusting = herald_testkit::client();
        assert!(untrusting.get(app.url("/readyz")).send().await.is_err(), "a certificate nobody vouched for was taken");

        // Plain HTTP on the TLS port: no HTTP answer, nothing served.
        let addr = app.base.trim_start_matches("https://").to_string();
        let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
        plain.write_all(format!("GET /readyz HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), plain.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "a plain request was held open");
        assert!(!answer.starts_with(b"HTTP/"), "plain HTTP was answered: {:?}", String::from_utf8_lossy(&answer));

        // A handshake begun and left (half a record) holds up nobody.
        let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
        let resp = fresh.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
}
