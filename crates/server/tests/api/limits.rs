use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn past_the_connection_limit_new_connections_wait_until_a_busy_one_closes() {
    use tokio::io::AsyncWriteExt;
    let svc = StepService::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir, &[&sequential("order", &["a"], "")], &svc, |c| c.limits.max_connections = 2).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // Busy, not idle: each is in the middle of sending a request.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = tokio::net::TcpStream::connect(addr.clone()).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\n").await.unwrap();
        held.push(tcp);
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();

    let blocked = http.get(app.url("/healthz")).timeout(Duration::from_millis(500)).send().await;
    assert!(blocked.is_err_and(|e| e.is_timeout()), "a third connection is not served while two are busy");

    drop(held);
    let served = http.get(app.url("/healthz")).timeout(Duration::from_secs(5)).send().await.unwrap();
    assert_eq!(served.status(), 200, "served once a connection closed");
}

#[tokio::test]
async fn a_connection_that_never_asks_anything_does_not_hold_up_a_graceful_stop() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;
    let _silent = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    // Let the server take the connection in before stopping.
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);

    let stopped = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;

    assert!(stopped.is_ok(), "the stop waited on a silent connection");
}
