//! What a connection may hold: idle ones give their place to new clients
//! when the server is full, heads are capped in size and in time (a
//! slowloris head included), and the `Host` rules of RFC 9112 hold on
//! every path.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{express::exchange, herald, upstream::Upstream};

/// Sends one request and reads until its answer's head is in; the
/// connection stays open.
async fn ask(addr: &str, request: &[u8]) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before answering");
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
    tcp
}

#[tokio::test]
async fn silent_connections_give_their_place_to_a_new_client_when_herald_is_full() {
    let up = Upstream::start("a");
    for express in [true, false] {
        let h = herald(&[&up], |c| {
            c.limits.max_connections = 4;
            c.gateway.express = express;
        })
        .await;
        let addr = h.url.trim_start_matches("http://").to_string();
        // Every place held by a client that asked once and went quiet:
        // through the gateway (the express lane) or the API (hyper).
        let mut quiet = Vec::new();
        for path in ["/gw/shop/who", "/gw/shop/who", "/healthz", "/healthz"] {
            quiet.push(ask(&addr, format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).await);
        }
        let health = tokio::time::timeout(Duration::from_secs(5), h.get("/healthz")).await;
        assert_eq!(health.expect("a new client is served at once, not after the idle timeout").status(), 200);
        for (i, mut tcp) in quiet.into_iter().enumerate() {
            let mut rest = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
            assert!(closed.is_ok(), "quiet connection {i} kept its place (express {express})");
        }

        // Every place held by a client that connected and said nothing.
        let mut silent = Vec::new();
        for _ in 0..4 {
            silent.push(TcpStream::connect(&addr).await.unwrap());
        }
        let health = tokio::time::timeout(Duration::from_secs(5), fresh().get(format!("{}/healthz", h.url)).send());
        assert_eq!(health.await.expect("served at once").unwrap().status(), 200);
    }
}

fn fresh() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

#[tokio::test]
async fn a_request_head_over_32_kib_is_refused() {
    let up = Upstream::start("a");
    let h = herald(&[&up], |_| {}).await;
    let addr = h.url.trim_start_matches("http://");
    for path in ["/healthz", "/gw/shop/who"] {
        let big = "x".repeat(40 * 1024);
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n");
        let answers = exchange(addr, request.as_bytes(), &["GET"]).await;
        assert_eq!(answers[0].0, 431, "{path}");
        let fits = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "x".repeat(20 * 1024));
        assert_eq!(exchange(addr, fits.as_bytes(), &["GET"]).await[0].0, 200, "{path}");
    }
}

#[tokio::test]
async fn http_1_1_requests_without_exactly_one_valid_host_are_refused_on_every_path() {
    let up = Upstream::start("a");
    for express in [true, false] {
        let h = herald(&[&up], |c| c.gateway.express = express).await;
        let addr = h.url.trim_start_matches("http://");
        for path in ["/healthz", "/gw/shop/who", "/v1/operations/op_00000000000000000000000000/events"] {
            for (headers, status) in [
                ("", 400),
                ("Host: a\r\nHost: b\r\n", 400),
                ("Host: a b\r\n", 400),
                ("Host: localhost:80\r\n", if path.ends_with("events") { 404 } else { 200 }),
            ] {
                let request = format!("GET {path} HTTP/1.1\r\n{headers}\r\n");
                let answers = exchange(addr, request.as_bytes(), &["GET"]).await;
                let (got, head, _) = &answers[0];
                assert_eq!(*got, status, "{path} with {headers:?}, express {express}");
                if status == 400 {
                    assert!(head.iter().any(|(k, v)| k == "content-type" && v == "application/problem+json"));
                }
            }
        }
        let old = exchange(addr, b"GET /healthz HTTP/1.0\r\n\r\n", &["GET"]).await;
        assert_eq!(old[0].0, 200, "HTTP/1.0 needs no Host");
    }
    let seen: serde_json::Value = reqwest::get(format!("{}/_calls", up.url)).await.unwrap().json().await.unwrap();
    assert_eq!(seen["/who"], 2, "only the requests with one valid Host reached the instance: {seen}");
}

/// Sends `bytes` and waits for herald to close the connection; how long
/// that took.
async fn stall(addr: String, bytes: &'static [u8]) -> Duration {
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let began = tokio::time::Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a stalled client kept its connection a minute: {:?}", String::from_utf8_lossy(bytes));
    began.elapsed()
}

/// Sends `head` and then a header line's value a byte every half second,
/// as a slowloris client does, until herald closes the connection; how
/// long that took.
async fn trickle(addr: String, head: &'static [u8]) -> Duration {
    let (mut rd, mut wr) = TcpStream::connect(&addr).await.unwrap().into_split();
    let began = tokio::time::Instant::now();
    let dribble = async {
        wr.write_all(head).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            wr.write_all(b"a").await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    let closed = async {
        let mut rest = Vec::new();
        let _ = rd.read_to_end(&mut rest).await;
    };
    let let_go = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::select! {
            _ = closed => {},
            _ = dribble => {},
        }
    });
    let_go.await.unwrap_or_else(|_| panic!("a trickling head kept its connection a minute: {head:?}"));
    began.elapsed()
}

#[tokio::test]
async fn a_client_that_stalls_in_its_head_or_its_body_is_let_go_on_every_path() {
    let up = Upstream::start("a");
    let mut stalls = Vec::new();
    let mut heralds = Vec::new();
    for express in [true, false] {
        let h = herald(&[&up], |c| c.gateway.express = express).await;
        let addr = h.url.trim_start_matches("http://").to_string();
        for bytes in [
            b"GET /gw/shop/who HTTP/1.1\r\nHost: loc".as_slice(),
            b"POST /gw/shop/who HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"a\":",
            b"GET /healthz HTTP/1.1\r\nHost: loc",
            b"POST /v1/workflows/none/operations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"a\":",
        ] {
            stalls.push(tokio::spawn(stall(addr.clone(), bytes)));
        }
        // A head that keeps coming, a byte at a time, is let go at the
        // same time: the head's time runs from its first byte.
        for head in [b"GET /gw/shop/who HTTP/1.1\r\nX-Pad: ".as_slice(), b"GET /healthz HTTP/1.1\r\nX-Pad: "] {
            stalls.push(tokio::spawn(trickle(addr.clone(), head)));
        }
        heralds.push(h);
    }
    for (i, s) in stalls.into_iter().enumerate() {
        let took = s.await.unwrap();
        // herald's 30 s, not a reset at once nor the test's minute.
        assert!(took >= Duration::from_secs(25), "stall {i} was let go after {took:?}, before its time");
        assert!(took < Duration::from_secs(40), "stall {i} was let go after {took:?}, after its time");
    }
    drop(heralds);
}
