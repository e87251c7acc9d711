//! Request smuggling: hostile framing sent byte for byte to the express
//! lane, to herald's hyper path (the lane off) and to nginx in front of the
//! same instance. The lane answers every case as the hyper path does,
//! nothing hidden inside a request reaches the instance as a request of
//! its own, and each case names what nginx answers; where the two differ,
//! the case says why herald's answer is as safe.

use std::time::Duration;

use herald_testkit::{free_port, nginx::Nginx};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{express::parse, herald, upstream::Upstream};

/// The request hidden in each case: the instance must never be called at
/// `/smuggled`.
const HIDDEN: &str = "GET /gw/shop/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
/// Ends every case: answered only if the connection survived what came
/// before, and then the server closes it.
const LAST: &str = "GET /gw/shop/last HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

struct Case {
    what: &'static str,
    /// The hostile request(s), before [`LAST`].
    bytes: String,
    /// The statuses herald answers, in order, before it closes.
    herald: &'static [u16],
    nginx: &'static [u16],
}

fn post(headers: &str, body: &str) -> String {
    format!("POST /gw/shop/a HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n{body}")
}

/// `body` as one chunk and the last chunk.
fn chunked(body: &str) -> String {
    format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
}

fn cases() -> Vec<Case> {
    let n = HIDDEN.len();
    let case = |what, bytes: String, herald, nginx| Case { what, bytes, herald, nginx };
    vec![
        // RFC 9112 §6.3: a server may refuse both, or read the body as
        // chunked and close after answering. nginx refuses; hyper (and so
        // herald) reads it chunked and closes, so what follows is never
        // read as a request.
        case(
            "Content-Length and Transfer-Encoding (CL.TE)",
            post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", &format!("0\r\n\r\n{HIDDEN}")),
            &[200],
            &[400],
        ),
        case(
            "Transfer-Encoding and Content-Length (TE.CL)",
            post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", &chunked(HIDDEN)),
            &[200],
            &[400],
        ),
        case(
            "two different Content-Lengths",
            post(&format!("Content-Length: 0\r\nContent-Length: {n}\r\n"), HIDDEN),
            &[400],
            &[400],
        ),
        // RFC 9110 §8.6 lets a recipient take identical repeated lengths
        // as one; hyper does, nginx refuses. The framing is the same
        // either way.
        case(
            "the same Content-Length twice",
            post(&format!("Content-Length: {n}\r\nContent-Length: {n}\r\n"), HIDDEN),
            &[200, 200],
            &[400],
        ),
        case("a list as Content-Length", post(&format!("Content-Length: {n}, {n}\r\n"), HIDDEN), &[400], &[400]),
        case("a plus sign in Content-Length", post(&format!("Content-Length: +{n}\r\n"), HIDDEN), &[400], &[400]),
        case("a negative Content-Length", post("Content-Length: -1\r\n", HIDDEN), &[400], &[400]),
        case("a hex Content-Length", post(&format!("Content-Length: 0x{n:x}\r\n"), HIDDEN), &[400], &[400]),
        case(
            "a Content-Length past 64 bits",
            post("Content-Length: 99999999999999999999999\r\n", HIDDEN),
            &[400],
            &[400],
        ),
        case("Content-Length with trailing junk", post(&format!("Content-Length: {n} x\r\n"), HIDDEN), &[400], &[400]),
        // chunked not last: hyper refuses the request, nginx says it does
        // not implement the coding. Neither reads a body.
        case(
            "Transfer-Encoding: chunked, identity",
            post(&format!("Transfer-Encoding: chunked, identity\r\nContent-Length: {n}\r\n"), HIDDEN),
            &[400],
            &[501],
        ),
        case("Transfer-Encoding: identity", post("Transfer-Encoding: identity\r\n", HIDDEN), &[400], &[501]),
        case(
            "Transfer-Encoding in HTTP/1.0",
            format!(
                "POST /gw/shop/a HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n{}",
                chunked(HIDDEN)
            ),
            &[400],
            &[400],
        ),
        case(
            "whitespace before the colon",
            post(&format!("Transfer-Encoding : chunked\r\nContent-Length: {n}\r\n"), &chunked(HIDDEN)),
            &[400],
            &[400],
        ),
        case(
            "an obs-folded Transfer-Encoding",
            post(&format!("Content-Length: {n}\r\nTransfer-Encoding: identity\r\n chunked\r\n"), HIDDEN),
            &[400],
            &[400],
        ),
        case("a NUL in a header value", post("X-A: a\0b\r\nContent-Length: 0\r\n", ""), &[400], &[400]),
        // nginx passes it on, and the instance (hyper) refuses it; herald
        // refuses it itself.
        case("a control byte in a header value", post("X-A: a\x01b\r\nContent-Length: 0\r\n", ""), &[400], &[400, 200]),
        case("a space in a header name", post(&format!("Content Length: {n}\r\n"), HIDDEN), &[400], &[400]),
        case(
            "a bad chunk size",
            post("Transfer-Encoding: chunked\r\n", &format!("+5\r\nhello\r\n0\r\n\r\n{HIDDEN}")),
            &[400],
            &[400],
        ),
        case(
            "a chunk size past 64 bits",
            post("Transfer-Encoding: chunked\r\n", &format!("1ffffffffffffffff\r\nx\r\n0\r\n\r\n{HIDDEN}")),
            &[400],
            &[400],
        ),
        // Bare LF ends lines for both (RFC 9112 §2.2 allows it); the head
        // goes upstream written again with CRLF.
        case("bare LF line ends", "GET /gw/shop/a HTTP/1.1\nHost: localhost\n\n".into(), &[200, 200], &[200, 200]),
        case(
            "pipelined requests, one carrying a request as its body",
            format!(
                "GET /gw/shop/a HTTP/1.1\r\nHost: localhost\r\n\r\nHEAD /gw/shop/b HTTP/1.1\r\nHost: localhost\r\n\r\n{}",
                post(&format!("Content-Length: {n}\r\n"), HIDDEN)
            ),
            &[200, 200, 200, 200],
            &[200, 200, 200, 200],
        ),
    ]
}

/// The statuses answered to `bytes` + [`LAST`] on one connection to
/// `addr`, read until the server closes it.
async fn statuses(addr: &str, bytes: &str) -> Vec<u16> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("{bytes}{LAST}");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 16384];
        // A reset after the answer is a close too.
        while let Ok(n @ 1..) = tcp.read(&mut chunk).await {
            buf.extend_from_slice(&chunk[..n]);
        }
    });
    read.await.unwrap_or_else(|_| panic!("{addr} closes the connection within 10 s: {bytes:?}"));
    answers(&buf, request.contains("HEAD "))
}

/// The statuses of the answers in `buf`. Only the pipelined case sends a
/// `HEAD`, second on its connection: when `heads`, the second answer has
/// no body.
fn answers(mut buf: &[u8], heads: bool) -> Vec<u16> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let head_only = heads && out.len() == 1;
        let Some(((status, ..), used)) = parse(buf, head_only) else {
            panic!("not a whole answer: {:?}", String::from_utf8_lossy(buf))
        };
        out.push(status);
        buf = &buf[used..];
    }
    out
}

#[tokio::test]
async fn hostile_framing_is_answered_as_hyper_answers_it_and_nothing_hidden_gets_through() {
    let a = Upstream::start("a");
    let express = herald(&[&a], |_| {}).await;
    let hyper = herald(&[&a], |c| c.gateway.express = false).await;
    let dir = tempfile::tempdir().unwrap();
    let nginx_at = format!("127.0.0.1:{}", free_port());
    let conf = format!(
        "upstream shop {{ server {}; keepalive 4; }}\n\
         server {{ listen {nginx_at}; location /gw/shop/ {{ proxy_pass http://shop/; \
         proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}",
        a.url.trim_start_matches("http://")
    );
    let _nginx = Nginx::start(dir.path(), &conf, &nginx_at)
        .unwrap()
        .expect("nginx is installed (apt-get install nginx): each case is compared with it");

    let mut differ = Vec::new();
    for case in cases() {
        let lane = statuses(express.url.trim_start_matches("http://"), &case.bytes).await;
        let plain = statuses(hyper.url.trim_start_matches("http://"), &case.bytes).await;
        assert_eq!(lane, plain, "{}: the express lane (left) answers as the hyper path (right)", case.what);
        if lane != case.herald {
            differ.push(format!("{}: herald answered {lane:?}, not {:?}", case.what, case.herald));
        }
        let seen = statuses(&nginx_at, &case.bytes).await;
        if seen != case.nginx {
            differ.push(format!("{}: nginx answered {seen:?}, not {:?}", case.what, case.nginx));
        }
        let calls = a.calls().await;
        assert!(!calls.contains_key("/smuggled"), "{}: a hidden request reached the instance: {calls:?}", case.what);
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
