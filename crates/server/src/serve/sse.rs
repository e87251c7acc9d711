//! Server-Sent Events written straight to the socket, for connections
//! whose first request is a timeline stream.
//!
//! Why not through hyper like everything else: a watcher is a connection
//! held open for minutes, and hyper keeps an 8 KiB read and an 8 KiB write
//! buffer per connection that cannot be made smaller. With thousands of
//! watchers that is most of herald's memory. Here a watcher costs its
//! socket and its place in the timeline. The answers (200 stream, 204, a
//! problem document) are the same as the routed handler's, which serves a
//! stream asked for on a connection already in use.

use std::fmt::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::events::{self, KEEP_ALIVE};
use crate::state::AppState;
use herald_http::problem::ApiError;

/// The one request this path takes, as parsed from the first bytes.
pub struct Request {
    /// `/v1/operations/{id}/events`, with any query.
    pub target: String,
    pub last_event_id: Option<String>,
    pub authorization: Option<String>,
    pub host: Option<String>,
}

/// `Some` if the parsed request is a timeline stream this path serves.
pub fn recognise(req: &httparse::Request<'_, '_>) -> Option<Request> {
    let target = req.path?;
    let path = target.split('?').next().unwrap_or(target);
    let is_stream = req.method == Some("GET")
        && req.version == Some(1)
        && path.starts_with("/v1/operations/")
        && path.ends_with("/events")
        && path.matches('/').count() == 4;
    if !is_stream {
        return None;
    }
    let raw = |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let header = |name: &str| raw(name).and_then(|v| std::str::from_utf8(v).ok()).map(str::to_string);
    Some(Request {
        target: target.to_string(),
        // Kept even when not UTF-8, to be refused as what it is.
        last_event_id: raw("last-event-id").map(|v| String::from_utf8_lossy(v).into_owned()),
        authorization: header("authorization"),
        host: header("host"),
    })
}

pub async fn serve(mut tcp: impl super::Socket, app: AppState, req: Request) {
    // A stream changes nothing: only the name it was asked under matters.
    if let Err(e) = app.guard.admit_host(req.host.as_deref().map(str::as_bytes)) {
        return problem(&mut tcp, e).await;
    }
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let raw_id = path.trim_start_matches("/v1/operations/").trim_end_matches("/events");
    let after = match query.split('&').find_map(|kv| kv.strip_prefix("after=")) {
        None => None,
        Some(v) => match v.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                return problem(&mut tcp, ApiError::BadRequest(format!("`after` must be an event number, not `{v}`")))
                    .await;
            }
        },
    };
    let after = match events::resume_point(req.last_event_id.as_deref(), after) {
        Ok(after) => after,
        Err(e) => return problem(&mut tcp, e).await,
    };
    let caller = match app.auth.identify_stream(req.authorization.as_deref(), Some(query)) {
        Ok(c) => c,
        Err(e) => return problem(&mut tcp, e).await,
    };
    let opened = match crate::api::parse_id(raw_id) {
        Ok(id) => events::open(&app, &caller, id, after).await,
        Err(e) => Err(e),
    };
    let mut feed = match opened {
        Ok(Some(feed)) => feed,
        Ok(None) => {
            let head = format!("HTTP/1.1 204 No Content\r\n{}connection: close\r\n\r\n", hardening());
            return write_all(&mut tcp, head.as_bytes()).await;
        }
        Err(e) => return problem(&mut tcp, e).await,
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n{}connection: close\r\n\r\n",
        hardening()
    );
    if tcp.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let (mut rd, mut wr) = tokio::io::split(tcp);
    let mut probe = [0u8; 1];
    let mut frame = String::new();
    loop {
        frame.clear();
        tokio::select! {
            e = feed.next() => match e {
                Some(e) => {
                    let _ = write!(frame, "id: {}\ndata: {}\n\n", e.seq, events::data(&e));
                }
                None => break,
            },
            _ = tokio::time::sleep(KEEP_ALIVE) => frame.push_str(":\n\n"),
            // The client hung up (or broke the protocol): stop.
            _ = rd.read(&mut probe) => break,
        }
        // A client that reads nothing is let go.
        let written = tokio::time::timeout(herald_http::conn::WRITE_TIMEOUT, wr.write_all(frame.as_bytes())).await;
        if !matches!(written, Ok(Ok(()))) {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

/// The error as the routed handler answers it: its status, its headers
/// (`WWW-Authenticate`, `Retry-After`) and its problem document.
async fn problem(tcp: &mut impl super::Socket, e: ApiError) {
    use axum::response::IntoResponse;
    let (parts, body) = e.into_response().into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut head = format!("HTTP/1.1 {} {}\r\n", parts.status.as_u16(), parts.status.canonical_reason().unwrap_or(""));
    for (name, value) in parts.headers.iter().filter(|(n, _)| *n != axum::http::header::CONTENT_LENGTH) {
        let _ = write!(head, "{}: {}\r\n", name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    let _ = write!(head, "content-length: {}\r\n{}connection: close\r\n\r\n", body.len(), hardening());
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    write_all(tcp, &out).await;
}

/// The headers every answer carries for browsers, as head lines (written
/// out once).
fn hardening() -> &'static str {
    static LINES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        crate::api::hardening::HEADERS.iter().fold(String::new(), |mut out, (name, value)| {
            let _ = write!(out, "{}: {value}\r\n", name.as_str());
            out
        })
    });
    &LINES
}

async fn write_all(tcp: &mut impl super::Socket, bytes: &[u8]) {
    let _ = tcp.write_all(bytes).await;
    let _ = tcp.shutdown().await;
}
