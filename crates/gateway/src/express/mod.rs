//! The express lane: plain HTTP/1.1 requests through the gateway, read and
//! written by herald itself.
//!
//! Why not hyper for these too: carried by hyper's server and client, a
//! proxied request cost ~30,000 CPU instructions before herald did any
//! work of its own, where nginx proxies one in ~18,000. Here a request's
//! bytes are read once, its head rewritten as bytes rather than parsed into
//! maps and written out again, and the answer relayed with its framing
//! unchanged. Parsing is httparse's (hyper's own parser); the lane only
//! decides what passes.
//!
//! hyper serves everything the lane does not take ([`request`] says which):
//! at the first such request a connection goes to hyper, with its unread
//! bytes, and stays there. Balancing, timeouts, retries, circuits, rate
//! limits and forwarding headers are the same code on both paths.
//!
//! - `request` — a client's request: taken or not, and what goes upstream.
//! - `answer` — connections to instances; the answer's head and body.
//! - `chunked` — where a chunked body ends.
//! - `socket` — reads and writes with the lane's timeouts and readiness.

mod answer;
mod chunked;
/// For fuzz/ only (its targets reach the private readers through it).
#[doc(hidden)]
pub mod fuzzing;
mod request;
mod socket;

use std::{future::Future, io::Write, pin::Pin, time::Duration};

use axum::response::IntoResponse;
use bytes::{Buf, BytesMut};
use tokio::{
    io::AsyncWriteExt,
    net::TcpStream,
    time::{Instant, Sleep},
};
use tokio_util::sync::CancellationToken;

use super::{Client, attempts::Attempts};
use herald_http::{conn::idle::Idle, problem::ApiError};

use crate::{Gateway, registry::Origin};
use request::{Read, Request};
use socket::{read, write};

/// How a client connection left the lane.
pub enum End {
    Closed,
    /// hyper takes it from here; the unread bytes are in the buffer.
    Hyper,
}

/// What is to become of the client connection after an exchange.
enum Flow {
    Keep,
    Close,
    Hyper,
}

/// Serves the client connection's requests while the lane takes them.
/// `buf` holds what was read of it so far.
pub async fn serve(gw: &Gateway, client: &Client, idle: &Idle, tcp: &mut TcpStream, buf: &mut BytesMut) -> End {
    let mut lane = Lane::default();
    let stopping = gw.around.stopping.clone();
    loop {
        let mut deadline = None;
        let req = loop {
            match request::read(buf, gw, &client.peer, &mut lane.headers) {
                Read::Take(r) => break r,
                Read::Hyper => return End::Hyper,
                Read::Partial if fill(&stopping, idle, tcp, buf, &mut deadline).await => {}
                Read::Partial => return End::Closed,
            }
        };
        while buf.len() < req.len {
            buf.reserve(req.len - buf.len());
            let got = tokio::time::timeout(herald_http::conn::BODY_TIMEOUT, read(tcp, buf)).await;
            if !matches!(got, Ok(Ok(n)) if n > 0) {
                return End::Closed;
            }
        }
        match lane.exchange(&req, buf, tcp).await {
            Flow::Hyper => return End::Hyper,
            Flow::Keep if !req.close => buf.advance(req.len),
            Flow::Keep | Flow::Close => {
                let _ = tcp.shutdown().await;
                return End::Closed;
            }
        }
    }
}

/// Reads more of a request head: `false` when the connection is done.
/// An idle connection waits as [`Idle`] lets it; a head once begun must be
/// complete within the head timeout.
async fn fill(
    stopping: &CancellationToken,
    idle: &Idle,
    tcp: &TcpStream,
    buf: &mut BytesMut,
    deadline: &mut Option<Instant>,
) -> bool {
    buf.reserve(4096);
    let read = if buf.is_empty() {
        match idle.wait(stopping, read(tcp, buf)).await {
            Some(n) => n,
            None => return false,
        }
    } else {
        let at = *deadline.get_or_insert_with(|| Instant::now() + herald_http::conn::HEAD_TIMEOUT);
        match tokio::time::timeout_at(at, read(tcp, buf)).await {
            Ok(n) => n,
            Err(_) => return false,
        }
    };
    matches!(read, Ok(n) if n > 0)
}

/// A client connection's buffers and connections to instances, kept from
/// one request to the next.
#[derive(Default)]
struct Lane {
    pool: answer::Pool,
    /// The request's headers as sent upstream.
    headers: Vec<u8>,
    /// The whole request as sent to one instance.
    request: Vec<u8>,
    /// What is written to the client next.
    out: Vec<u8>,
    timer: Timer,
}

/// One timer for all of a connection's attempts, moved on for each: a
/// later deadline only updates the entry (tokio's fast path), where a
/// timer per attempt would be put into and taken out of the runtime's
/// timer wheel every time.
#[derive(Default)]
struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// `fut`'s output, or `None` if it takes longer than `limit`.
    async fn within<F: Future>(&mut self, limit: Duration, fut: F) -> Option<F::Output> {
        let deadline = Instant::now() + limit;
        let sleep = match &mut self.0 {
            Some(s) => {
                s.as_mut().reset(deadline);
                s
            }
            none => none.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        tokio::select! {
            biased;
            out = fut => Some(out),
            _ = sleep => None,
        }
    }
}

impl Lane {
    /// One request through to an instance and its answer back.
    async fn exchange(&mut self, req: &Request, buf: &[u8], client: &mut TcpStream) -> Flow {
        if let Some(secs) = req.refused {
            return self.problem(ApiError::TooManyRequests(secs), req.close, client).await;
        }
        let mut attempts = Attempts::new(req.svc.clone(), req.retryable);
        loop {
            let lease = match attempts.next().await {
                Ok(l) => l,
                Err(e) => return self.problem(e, req.close, client).await,
            };
            let (Some(origin), Some(up)) = (&lease.instance().origin, self.pool.upstream(&req.svc, lease.instance()))
            else {
                return Flow::Hyper; // nothing was sent yet: hyper can take it whole
            };
            self.compose(req, buf, origin);
            let sent = answer::send(&req.svc, up, &self.request, req.head, req.close, &mut self.out);
            let outcome = self.timer.within(attempts.timeout(), sent).await;
            let (answer, lease) = match attempts.judge(lease, outcome) {
                Ok(Some(given)) => given,
                Ok(None) => continue,
                Err(e) => return self.problem(e, req.close, client).await,
            };
            let closes = answer.closes();
            let relayed = answer::relay(answer, &mut self.out, client).await;
            drop(lease); // the call is over once its answer is through
            return match relayed {
                Ok(up) => {
                    if let Some(up) = up {
                        self.pool.keep(up);
                    }
                    if closes { Flow::Close } else { Flow::Keep }
                }
                Err(_) => Flow::Close,
            };
        }
    }

    /// The request as `origin` gets it: its base path before the target.
    fn compose(&mut self, req: &Request, buf: &[u8], origin: &Origin) {
        let r = &mut self.request;
        r.clear();
        r.extend_from_slice(&buf[req.method.clone()]);
        r.push(b' ');
        r.extend_from_slice(origin.prefix.as_bytes());
        if req.slash {
            r.push(b'/');
        }
        r.extend_from_slice(&buf[req.target.clone()]);
        r.extend_from_slice(b" HTTP/1.1\r\n");
        request::line(r, b"Host", &[origin.host.as_bytes()]);
        r.extend_from_slice(&self.headers);
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(&buf[req.body.clone()]);
    }

    /// Answers with a problem, as the API would.
    async fn problem(&mut self, e: ApiError, close: bool, client: &mut TcpStream) -> Flow {
        let (parts, body) = e.into_response().into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        let out = &mut self.out;
        out.clear();
        answer::status_line(out, parts.status.as_u16(), parts.status.canonical_reason().unwrap_or(""));
        for (name, value) in parts.headers.iter().filter(|(n, _)| *n != axum::http::header::CONTENT_LENGTH) {
            request::line(out, name.as_str().as_bytes(), &[value.as_bytes()]);
        }
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        match write(client, out).await {
            Ok(()) if !close => Flow::Keep,
            _ => Flow::Close,
        }
    }
}
