//! The instance's side: a client connection's own connections to the
//! instances it uses, a request sent, the answer's head read and rewritten
//! for the client, and its body relayed as it arrives, framing unchanged.

use std::{
    io::{self, ErrorKind},
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, BytesMut};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use super::{
    chunked::Chunked,
    request::{self, line},
    socket,
};
use crate::{
    affinity::{self, PER_CLIENT, Slot},
    attempts, forward,
    registry::{Instance, Service},
};

/// Largest answer head read.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// Buffer first given to a connection, and the most it keeps between
/// answers (a long body is relayed through a larger one).
const SMALL: usize = 4 * 1024;
const RELAY: usize = 64 * 1024;

/// A connection to an instance (not yet opened when `tcp` is `None`).
pub struct Upstream {
    instance: Arc<Instance>,
    tcp: Option<TcpStream>,
    buf: BytesMut,
    _slot: Slot,
}

/// A client connection's connections to instances, the least recently
/// used first.
#[derive(Default)]
pub struct Pool {
    held: Vec<Upstream>,
}

impl Pool {
    /// The connection to `instance`: the one held, else a new one if the
    /// service may open another. `None`: the lane cannot reach it (not
    /// plain HTTP, or the service has all the connections it may).
    pub fn upstream(&mut self, svc: &Arc<Service>, instance: &Arc<Instance>) -> Option<Upstream> {
        if let Some(at) = self.held.iter().position(|u| Arc::ptr_eq(&u.instance, instance)) {
            return Some(self.held.remove(at));
        }
        instance.origin.as_ref()?;
        let slot = Slot::take(svc)?;
        Some(Upstream { instance: instance.clone(), tcp: None, buf: BytesMut::with_capacity(SMALL), _slot: slot })
    }

    pub fn keep(&mut self, mut up: Upstream) {
        if self.held.len() >= PER_CLIENT {
            self.held.remove(0);
        }
        if up.buf.capacity() > RELAY {
            up.buf = BytesMut::with_capacity(SMALL);
        }
        self.held.push(up);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Ends when the instance closes the connection.
    Close,
}

/// An answer whose head was read; its body follows in `up`.
pub struct Answer {
    up: Upstream,
    status: u16,
    framing: Framing,
    /// The connection may carry another request after this answer.
    reusable: bool,
}

impl attempts::Answer for Answer {
    fn status(&self) -> u16 {
        self.status
    }
}

impl Answer {
    /// The client connection must close after this answer.
    pub fn closes(&self) -> bool {
        self.framing == Framing::Close
    }
}

/// Sends `request` over `up` and reads the answer's head; the head the
/// client gets is written to `out`.
pub async fn send(
    svc: &Service,
    mut up: Upstream,
    request: &[u8],
    head_only: bool,
    close: bool,
    out: &mut Vec<u8>,
) -> io::Result<Answer> {
    let reused = up.tcp.as_ref().is_some_and(|tcp| !closed_while_idle(tcp));
    if !reused {
        let origin = up.instance.origin.as_ref().ok_or(ErrorKind::Unsupported)?;
        up.tcp = Some(affinity::connect(svc, origin).await?);
        up.buf.clear();
    }
    let tcp = up.tcp.as_mut().expect("connected");
    tcp.write_all(request).await?;
    loop {
        if let Some((status, framing, reusable)) = head(&mut up.buf, head_only, close, out)? {
            return Ok(Answer { up, status, framing, reusable });
        }
        if up.buf.len() >= MAX_HEAD {
            return Err(io::Error::new(ErrorKind::InvalidData, "the answer's head is too large"));
        }
        up.buf.reserve(SMALL);
        if socket::read(tcp, &mut up.buf).await? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Did the instance close (or write to) this idle connection? Asks the
/// readiness the runtime already has, so a quiet connection costs no call.
fn closed_while_idle(tcp: &TcpStream) -> bool {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    match tcp.poll_read_ready(&mut cx) {
        Poll::Pending => false,
        Poll::Ready(Err(_)) => true,
        Poll::Ready(Ok(())) => !matches!(tcp.try_read(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock),
    }
}

/// Reads a final answer head at the start of `buf` (passing over interim
/// 1xx ones) and writes the client's version of it to `out`.
fn head(
    buf: &mut BytesMut,
    head_only: bool,
    close: bool,
    out: &mut Vec<u8>,
) -> io::Result<Option<(u16, Framing, bool)>> {
    let invalid = |what: &str| io::Error::new(ErrorKind::InvalidData, what.to_string());
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut slots);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(invalid(&e.to_string())),
        };
        let (Some(version), Some(status)) = (resp.version, resp.code) else { return Err(invalid("no status")) };
        if status == 101 {
            return Err(invalid("an upgrade nobody asked for"));
        }
        if status < 200 {
            buf.advance(len);
            continue;
        }
        let headers = &*resp.headers;
        let is = |h: &&httparse::Header, n: &str| h.name.eq_ignore_ascii_case(n);
        let connection = || headers.iter().filter(|h| is(h, "connection")).map(|h| h.value);
        let token = |t: &str| forward::names(connection(), t.as_bytes());
        let mut length = None;
        for h in headers.iter().filter(|h| is(h, "content-length")) {
            match (length, request::digits(h.value)) {
                (_, None) => return Err(invalid("a broken Content-Length")),
                (Some(a), Some(b)) if a != b => return Err(invalid("Content-Length given twice")),
                (_, n) => length = n,
            }
        }
        let coding = headers.iter().rev().find(|h| is(h, "transfer-encoding")).map(|h| h.value);
        let framing = match (coding, length) {
            _ if head_only || status == 204 || status == 304 => Framing::Empty,
            (Some(c), _)
                if c.rsplit(|&b| b == b',').next().is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked")) =>
            {
                Framing::Chunked
            }
            (Some(_), _) | (None, None) => Framing::Close,
            (None, Some(n)) => Framing::Length(n),
        };
        let reusable = framing != Framing::Close && !token("close") && (version == 1 || token("keep-alive"));
        out.clear();
        status_line(out, status, resp.reason.unwrap_or(""));
        for h in headers {
            // The body is relayed as framed, so its coding is told as it
            // came; a length beside a coding is not (RFC 9112 §6.3).
            let pass = if is(&h, "transfer-encoding") {
                true
            } else if is(&h, "content-length") {
                coding.is_none()
            } else {
                !forward::is_hop_by_hop_raw(h.name.as_bytes(), connection())
            };
            if pass {
                line(out, h.name.as_bytes(), &[h.value]);
            }
        }
        if close || framing == Framing::Close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        buf.advance(len);
        return Ok(Some((status, framing, reusable)));
    }
}

/// `HTTP/1.1 200 OK\r\n`.
pub fn status_line(out: &mut Vec<u8>, status: u16, reason: &str) {
    let digit = |d: u16| b'0' + (d % 10) as u8;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[digit(status / 100), digit(status / 10), digit(status), b' ']);
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Relays the answer — `out` (its head) first, then the body — to the
/// client. The instance's connection comes back when it can carry another
/// request.
pub async fn relay(answer: Answer, out: &mut Vec<u8>, client: &mut TcpStream) -> io::Result<Option<Upstream>> {
    let Answer { mut up, framing, reusable, .. } = answer;
    let mut left = match framing {
        Framing::Empty => 0,
        Framing::Length(n) => n,
        Framing::Chunked | Framing::Close => u64::MAX,
    };
    let mut chunked = Chunked::default();
    let tcp = up.tcp.as_mut().expect("connected");
    loop {
        let take = match framing {
            Framing::Chunked => match chunked.feed(&up.buf) {
                Ok(Some(end)) => {
                    left = 0;
                    end
                }
                Ok(None) => up.buf.len(),
                Err(_) => return Err(io::Error::new(ErrorKind::InvalidData, "broken chunked framing")),
            },
            Framing::Close => up.buf.len(),
            _ => {
                let take = left.min(up.buf.len() as u64);
                left -= take;
                take as usize
            }
        };
        out.extend_from_slice(&up.buf[..take]);
        up.buf.advance(take);
        if !out.is_empty() {
            socket::write(client, out).await?;
            out.clear();
        }
        if left == 0 {
            break;
        }
        up.buf.reserve(RELAY);
        if socket::read(tcp, &mut up.buf).await? == 0 {
            if framing == Framing::Close {
                return Ok(None);
            }
            return Err(ErrorKind::UnexpectedEof.into());
        }
    }
    // Bytes past the answer's end: the instance is not to be trusted with another.
    Ok((reusable && up.buf.is_empty()).then_some(up))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head as the client gets it, its framing and whether the
    /// instance's connection may be used again; `rest` is what follows.
    fn read(answer: &str, head_only: bool) -> (String, Framing, bool, String) {
        let mut buf = BytesMut::from(answer);
        let mut out = Vec::new();
        let (_, framing, reusable) = head(&mut buf, head_only, false, &mut out).unwrap().unwrap();
        (String::from_utf8(out).unwrap(), framing, reusable, String::from_utf8(buf.to_vec()).unwrap())
    }

    #[test]
    fn interim_answers_pass_over_and_hop_by_hop_headers_stay_behind() {
        let (out, framing, reusable, rest) = read(
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\n\
             Keep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nhi",
            false,
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
        assert_eq!((framing, reusable, rest.as_str()), (Framing::Length(2), true, "hi"));
    }

    #[test]
    fn a_coding_wins_over_a_length_and_the_length_is_not_passed_on() {
        let (out, framing, ..) =
            read("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n", false);
        assert_eq!(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(framing, Framing::Chunked);
        let (out, framing, reusable, _) = read("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false);
        assert!(out.ends_with("Connection: close\r\n\r\n"), "read to the close, so the client is told: {out}");
        assert_eq!((framing, reusable), (Framing::Close, false));
    }

    #[test]
    fn bodiless_answers_and_old_instances_are_framed_as_they_must_be() {
        assert_eq!(read("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).1, Framing::Empty, "HEAD");
        assert_eq!(read("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false).1, Framing::Empty);
        let (_, framing, reusable, _) = read("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false);
        assert_eq!((framing, reusable), (Framing::Length(1), false), "HTTP/1.0 closes unless kept alive");
        let (_, _, reusable, _) = read("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", false);
        assert!(reusable);
    }

    #[test]
    fn broken_heads_are_refused() {
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ] {
            assert!(head(&mut BytesMut::from(bad), false, false, &mut Vec::new()).is_err(), "{bad}");
        }
    }
}
