//! A request written byte for byte, for what a client library would not
//! send (a forged `Host`, a malformed head) or would hide (the exact
//! headers of the answer).

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Herald;

/// An answer read off a connection of its own.
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The problem document's `type`, if the body is one.
    pub fn problem_type(&self) -> String {
        let body: Value = serde_json::from_slice(&self.body).unwrap_or_default();
        body["type"].as_str().unwrap_or_default().to_string()
    }
}

/// Sends `request` (raw HTTP/1.1 with `Connection: close`, so any header,
/// `Host` included, is as written) on a new connection to herald, and reads
/// the answer until herald closes it (within 10 s).
pub async fn raw(app: &Herald, request: impl AsRef<[u8]>) -> RawAnswer {
    let mut tcp = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    tcp.write_all(request.as_ref()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf))
        .await
        .expect("herald closes the connection after its answer")
        .unwrap();
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(head) = resp.parse(&buf).unwrap() else { panic!("a partial answer: {buf:?}") };
    RawAnswer {
        status: resp.code.unwrap(),
        headers: resp
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        body: buf[head..].to_vec(),
    }
}
