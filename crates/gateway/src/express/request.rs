//! A client's request, read from the connection's buffered bytes: whether
//! the express lane takes it, and what is sent upstream.
//!
//! The lane takes only the plain case: HTTP/1.1, a registered HTTP/1.1
//! service the caller may call at that path, no `Transfer-Encoding`,
//! `Upgrade` or `Expect`, tracing off, a body small enough to be kept whole (so an
//! attempt can be made again), and nothing the [`crate::guard`] refuses.
//! Anything
//! else — and anything malformed — goes to hyper, which answers it as the
//! API does.

use std::{ops::Range, sync::Arc};

use axum::http::HeaderName;

use herald_http::guard::Seen;

use crate::{
    Gateway, access, forward,
    proxy::is_idempotent,
    registry::{Protocol, Service},
    split,
};

/// Most header lines the lane reads; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;

pub enum Read {
    /// The head is not complete yet.
    Partial,
    /// Not the lane's: hyper takes the connection from here.
    Hyper,
    Take(Request),
}

pub struct Request {
    pub svc: Arc<Service>,
    /// Head and body: what the request takes of the buffer.
    pub len: usize,
    pub method: Range<usize>,
    /// The target after `/gw/{service}`, query included.
    pub target: Range<usize>,
    /// The target lacked the `/` after the service's name.
    pub slash: bool,
    pub body: Range<usize>,
    /// The client asked to close the connection after the answer.
    pub close: bool,
    /// A `HEAD` request: its answer has no body.
    pub head: bool,
    /// Safe to send again: an idempotent method or an `Idempotency-Key`.
    pub retryable: bool,
    /// Over the client's rate: seconds until it may try again.
    pub refused: Option<u64>,
}

/// Reads the request at the start of `buf`. The headers to send upstream
/// (all but `Host` and the request line) are written to `headers`.
pub fn read(buf: &[u8], gw: &Gateway, peer: &forward::Peer, headers: &mut Vec<u8>) -> Read {
    // A traced request gets its span on the hyper path: the lane stays
    // what it is with tracing off.
    if gw.tracing() {
        return Read::Hyper;
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < herald_http::conn::MAX_HEAD => return Read::Partial,
        _ => return Read::Hyper,
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else { return Read::Hyper };
    let Some(after) = path.strip_prefix("/gw/") else { return Read::Hyper };
    let Ok(checked) = access::checked(path) else { return Read::Hyper };
    let (service, rest) = split(path.split('?').next().unwrap_or(path));
    if gw.async_route(service, rest, method).is_some() {
        return Read::Hyper;
    }
    let Some(svc) = gw.reachable(service).filter(|s| s.settings.protocol == Protocol::Http1) else {
        return Read::Hyper;
    };
    let headers_in = &*req.headers;
    let hosts = headers_in.iter().filter(|h| h.name.eq_ignore_ascii_case("host")).map(|h| h.value);
    if !herald_http::conn::host::valid(axum::http::Version::HTTP_11, hosts) {
        return Read::Hyper; // refused there, as the API refuses it
    }
    // Without credentials, a request the guard refuses goes to hyper, which
    // answers the refusal as for every path; with them, this is one branch.
    if gw.guard().active() {
        let raw = |name: &str| headers_in.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
        let seen = Seen { method, host: raw("host"), origin: raw("origin"), fetch_site: raw("sec-fetch-site") };
        if gw.guard().admit(seen).is_err() {
            return Read::Hyper;
        }
    }
    let is = |h: &httparse::Header, name: &HeaderName| h.name.eq_ignore_ascii_case(name.as_str());
    let get = |name: &HeaderName| headers_in.iter().find(|h| is(h, name)).map(|h| h.value);
    let mut length = None;
    let mut connection = Vec::new();
    for h in headers_in {
        if h.name.eq_ignore_ascii_case("content-length") {
            match (length, digits(h.value)) {
                (None, Some(n)) => length = Some(n),
                _ => return Read::Hyper,
            }
        } else if ["transfer-encoding", "upgrade", "expect"].iter().any(|n| h.name.eq_ignore_ascii_case(n)) {
            return Read::Hyper;
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection.push(h.value);
        }
    }
    let body_len = length.unwrap_or(0);
    if body_len > gw.config.retry_buffer_bytes.min(gw.config.max_body_bytes) {
        return Read::Hyper; // streamed by hyper, and never tried twice
    }
    let close = forward::names(connection.iter().copied(), b"close");
    // A refusal is hyper's to answer, as the API answers it.
    let Ok(caller) = gw.authorize(&svc, split(&checked).1, get(&axum::http::header::AUTHORIZATION)) else {
        return Read::Hyper;
    };
    let refused = gw.admit(get, peer).err();
    headers.clear();
    if refused.is_none() {
        let added = forward::Seen {
            xff: get(&forward::X_FORWARDED_FOR),
            forwarded: get(&axum::http::header::FORWARDED),
            host: get(&axum::http::header::HOST),
            traceparent: get(&forward::TRACEPARENT),
            correlation: get(&gw.correlation).is_some(),
        }
        .added(Some(peer));
        for h in headers_in {
            if !(h.name.eq_ignore_ascii_case("host")
                || forward::is_hop_by_hop_raw(h.name.as_bytes(), connection.iter().copied())
                || forward::withheld(h.name.as_bytes(), caller.is_some())
                || added.replaces(h.name.as_bytes()))
            {
                line(headers, h.name.as_bytes(), &[h.value]);
            }
        }
        if let Some(c) = &caller {
            line(headers, forward::HERALD_CALLER.as_str().as_bytes(), &[access::caller_header(c).as_bytes()]);
        }
        added.each(&gw.correlation, |name, value| line(headers, name.as_str().as_bytes(), value));
    }
    let offset = |s: &str| s.as_ptr() as usize - buf.as_ptr() as usize;
    let target = offset(after) + service.len()..offset(path) + path.len();
    let body = head_len..head_len + body_len as usize;
    Read::Take(Request {
        svc,
        len: body.end,
        method: offset(method)..offset(method) + method.len(),
        slash: !buf[target.clone()].starts_with(b"/"),
        target,
        body,
        close,
        head: method == "HEAD",
        retryable: method.parse().is_ok_and(|m| is_idempotent(&m)) || get(&forward::IDEMPOTENCY_KEY).is_some(),
        refused,
    })
}

/// `name: value\r\n`, the value given in pieces.
pub fn line(out: &mut Vec<u8>, name: &[u8], value: &[&[u8]]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    value.iter().for_each(|v| out.extend_from_slice(v));
    out.extend_from_slice(b"\r\n");
}

/// A `Content-Length` value: digits only, and not absurdly many.
pub fn digits(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}
