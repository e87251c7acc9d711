//! The express lane (plain HTTP/1.1 requests carried by herald itself)
//! against hyper's path: the same request passed on the same way, a
//! connection handed to hyper at the first request the lane leaves, and
//! answers of every framing relayed whole on one connection.

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{herald, upstream::Upstream};

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// Sends `requests` (raw HTTP/1.1, all written at once) on one connection
/// to `addr`, and reads their answers: (status, headers, body) each.
/// `methods` names the requests' methods, in order.
pub async fn exchange(addr: &str, requests: &[u8], methods: &[&str]) -> Vec<Answer> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(requests).await.unwrap();
    let mut buf = Vec::new();
    let mut answers = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while answers.len() < methods.len() {
            if let Some((answer, used)) = parse(&buf, methods[answers.len()] == "HEAD") {
                answers.push(answer);
                buf.drain(..used);
                continue;
            }
            let mut chunk = [0u8; 65536];
            let got = tcp.read(&mut chunk).await.unwrap();
            assert!(got > 0, "the connection closed after {} answers", answers.len());
            buf.extend_from_slice(&chunk[..got]);
        }
    });
    read.await.expect("every answer within 10 s");
    answers
}

/// One whole answer at the start of `buf` (Content-Length or chunked; none
/// for a `HEAD`), and the bytes it took.
pub fn parse(buf: &[u8], head_only: bool) -> Option<(Answer, usize)> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(head) = resp.parse(buf).unwrap() else { return None };
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let status = resp.code.unwrap();
    let mut at = head;
    let mut body = Vec::new();
    if head_only {
        return Some(((status, headers, body), at));
    }
    if header("transfer-encoding").is_some() {
        loop {
            let httparse::Status::Complete((used, size)) = httparse::parse_chunk_size(&buf[at..]).ok()? else {
                return None;
            };
            at += used;
            if size == 0 {
                return buf[at..].starts_with(b"\r\n").then(|| ((status, headers, body), at + 2));
            }
            let end = at + size as usize;
            body.extend_from_slice(buf.get(at..end)?);
            at = end + 2;
        }
    }
    let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
    body.extend_from_slice(buf.get(at..at + len)?);
    Some(((status, headers, body), at + len))
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn both_lanes_pass_a_request_on_the_same_way() {
    let a = Upstream::start("a");
    let express = herald(&[&a], |_| {}).await;
    let hyper = herald(&[&a], |c| c.gateway.express = false).await;

    let requests: [&[u8]; 3] = [
        b"GET /gw/shop/items?q=tea HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, X-Private\r\n\
          X-Private: 1\r\nX-Custom: Kept\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\n\
          Keep-Alive: timeout=5\r\nTraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\
          X-Correlation-Id: c-1\r\nAccept: text/plain\r\n\r\n",
        b"POST /gw/shop?x=1 HTTP/1.1\r\nHost: localhost\r\nIdempotency-Key: k\r\nContent-Length: 5\r\n\
          X-Correlation-Id: c-2\r\nTraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\nhello",
        b"DELETE /gw/shop/items/7 HTTP/1.1\r\nHost: localhost\r\nX-Correlation-Id: c-3\r\n\
          Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
    ];
    for request in requests {
        let mut seen = Vec::new();
        for h in [&express, &hyper] {
            let method = std::str::from_utf8(request).unwrap().split(' ').next().unwrap();
            let answers = exchange(h.url.trim_start_matches("http://"), request, &[method]).await;
            let (status, headers, body) = &answers[0];
            assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
            let mut upstream = json(body);
            upstream.as_object_mut().unwrap().remove("peer_port");
            let mut headers: Vec<_> = headers.iter().filter(|(k, _)| k != "date").cloned().collect();
            headers.sort();
            seen.push((upstream, headers));
        }
        assert_eq!(
            seen[0],
            seen[1],
            "express (left) and hyper (right) differ for {}",
            String::from_utf8_lossy(request)
        );
        let upstream = &seen[0].0;
        assert!(upstream["headers"].get("x-private").is_none() && upstream["headers"].get("keep-alive").is_none());
        assert_eq!(upstream["headers"]["x-forwarded-for"].as_str().unwrap().split(", ").last(), Some("127.0.0.1"));
    }
}

#[tokio::test]
async fn a_connection_moves_to_hyper_at_the_first_request_the_lane_leaves() {
    let a = Upstream::start("a");
    let h = herald(&[&a], |_| {}).await;

    // Pipelined on one connection: a GET the lane takes, a chunked POST it
    // leaves to hyper, a GET hyper now keeps, and a broken request.
    let requests = b"GET /gw/shop/one HTTP/1.1\r\nHost: localhost\r\n\r\n\
        POST /gw/shop/two HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
        GET /gw/shop/three HTTP/1.1\r\nHost: localhost\r\n\r\n\
        GET /gw/shop/four HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n";
    let answers = exchange(h.url.trim_start_matches("http://"), requests, &["GET", "POST", "GET", "GET"]).await;

    let seen: Vec<Value> = answers[..3].iter().map(|(s, _, b)| (assert_eq!(*s, 200), json(b)).1).collect();
    let paths: Vec<&str> = seen.iter().map(|v| v["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/one", "/two", "/three"], "answered in order");
    assert_eq!(seen[1]["body_bytes"], 3);
    let port = |i: usize| seen[i]["peer_port"].as_u64().unwrap();
    assert_ne!(port(0), port(2), "the lane's connection to the instance is not hyper's");
    assert_eq!(port(1), port(2), "hyper carried the rest");
    assert_eq!(answers[3].0, 400, "hyper answers a broken request");
}

#[tokio::test]
async fn answers_of_every_framing_pass_whole_on_one_connection() {
    let a = Upstream::start("a");
    let h = herald(&[&a], |_| {}).await;

    // HEAD (no body, whatever the headers say), a chunked megabyte, a
    // sized JSON answer, then the same again: each must end where it ends.
    let round = b"HEAD /gw/shop/big?mb=1 HTTP/1.1\r\nHost: localhost\r\n\r\n\
        GET /gw/shop/big?mb=1 HTTP/1.1\r\nHost: localhost\r\n\r\n\
        GET /gw/shop/who HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let methods = ["HEAD", "GET", "GET", "HEAD", "GET", "GET"];
    let answers = exchange(h.url.trim_start_matches("http://"), &round.repeat(2), &methods).await;

    for pair in answers.chunks(3) {
        let [head, big, who] = pair else { unreachable!() };
        assert_eq!((head.0, head.2.len()), (200, 0));
        assert_eq!((big.0, big.2.len()), (200, 1024 * 1024));
        assert!(big.1.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked"), "relayed as framed");
        assert_eq!(json(&who.2)["instance"], "a");
    }
}
