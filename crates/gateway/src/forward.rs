//! What the gateway passes on and what it adds: hop-by-hop headers stay
//! behind (RFC 9110 §7.6.1), the client's address and protocol travel in
//! `X-Forwarded-*` and `Forwarded` (RFC 7239), and every request carries a
//! W3C `traceparent` and a correlation id, forwarded when valid, made when not.
//! A client's `Herald-*` headers never pass (instances trust them as
//! herald's own), nor the `Authorization` herald itself checked: the
//! instance learns who called from `Herald-Caller` instead.

use std::net::IpAddr;

use herald_core::trace::TraceParent;
use rand::Rng;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

// Names made once: a name given as text is parsed again at every use.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const HERALD_CALLER: HeaderName = HeaderName::from_static("herald-caller");

/// Does a client's header stay behind: one of herald's own names, or the
/// `Authorization` herald checked (`checked`)?
pub fn withheld(name: &[u8], checked: bool) -> bool {
    name.get(..7).is_some_and(|p| p.eq_ignore_ascii_case(b"herald-"))
        || (checked && name.eq_ignore_ascii_case(b"authorization"))
}

// A static, not a const: a const array of names is made (and dropped) at every use.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, and any the `Connection` header names.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named = connection_named(h);
    // Most answers carry none: looking costs less than removing each.
    if named.is_empty() && !h.keys().any(is_hop_by_hop) {
        return;
    }
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        h.remove(name);
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// As sent on the wire (any case): is `name` hop-by-hop, or named so by
/// one of the `connection` header values?
pub fn is_hop_by_hop_raw<'a>(name: &[u8], connection: impl IntoIterator<Item = &'a [u8]>) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h.as_str().as_bytes())) || names(connection, name)
}

/// Do these comma-separated list values (`Connection`'s, say) name
/// `token`, in any case?
pub fn names<'a>(values: impl IntoIterator<Item = &'a [u8]>, token: &[u8]) -> bool {
    values.into_iter().any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token)))
}

/// The headers a `Connection` header names as hop-by-hop.
fn connection_named(h: &HeaderMap) -> Vec<HeaderName> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !is_hop_by_hop(n))
        .collect()
}

/// The client's address as forwarding headers write it, made once per
/// client connection.
#[derive(Clone)]
pub struct Peer {
    ip: String,
    /// `Forwarded`'s node: IPv6 quoted in brackets (RFC 7239 §6).
    node: String,
    /// The scheme the client came in by.
    proto: &'static [u8],
}

impl Peer {
    /// The client at `ip`, connected over TLS when `secure`.
    pub fn new(ip: IpAddr, secure: bool) -> Peer {
        let node = if ip.is_ipv6() { format!("\"[{ip}]\"") } else { ip.to_string() };
        Peer { ip: ip.to_string(), node, proto: if secure { b"https" } else { b"http" } }
    }

    pub fn ip(&self) -> &str {
        &self.ip
    }
}

/// The headers sent upstream for a request from `peer`, by `caller` (the
/// `Herald-Caller` value, when herald checked who it is). Built by hand
/// rather than with `format!`: this runs for every proxied request.
pub fn upstream(
    incoming: &HeaderMap,
    peer: Option<&Peer>,
    correlation: &HeaderName,
    caller: Option<&str>,
) -> HeaderMap {
    let named = connection_named(incoming);
    let mut h = HeaderMap::with_capacity(incoming.len() + 7);
    for (name, value) in incoming {
        if name != header::HOST
            && !is_hop_by_hop(name)
            && !named.contains(name)
            && !withheld(name.as_str().as_bytes(), caller.is_some())
        {
            h.append(name.clone(), value.clone());
        }
    }
    if let Some(v) = caller.and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert(HERALD_CALLER, v);
    }
    let get = |name: &HeaderName| incoming.get(name).map(HeaderValue::as_bytes);
    let seen = Seen {
        xff: get(&X_FORWARDED_FOR),
        forwarded: get(&header::FORWARDED),
        host: get(&header::HOST),
        traceparent: get(&TRACEPARENT),
        correlation: incoming.contains_key(correlation),
    };
    seen.added(peer).each(correlation, |name, value| {
        if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value.concat())) {
            h.insert(name.clone(), v);
        }
    });
    h
}

/// The incoming headers the added ones depend on.
pub struct Seen<'a> {
    pub xff: Option<&'a [u8]>,
    pub forwarded: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
    pub traceparent: Option<&'a [u8]>,
    /// The correlation header came in.
    pub correlation: bool,
}

/// What the gateway adds to a request, replacing any it had of these.
pub struct Added<'a> {
    peer: Option<&'a Peer>,
    /// The lists a client's `X-Forwarded-For` and `Forwarded` came with.
    xff: Option<&'a [u8]>,
    forwarded: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
    traceparent: Option<[u8; 55]>,
    correlation: Option<[u8; 32]>,
}

impl<'a> Seen<'a> {
    pub fn added(self, peer: Option<&'a Peer>) -> Added<'a> {
        // A list passed on must be text; else it starts anew.
        let list = |v: Option<&'a [u8]>| v.filter(|v| !v.is_empty() && std::str::from_utf8(v).is_ok());
        let valid = self.traceparent.and_then(|v| std::str::from_utf8(v).ok()).and_then(TraceParent::parse).is_some();
        let mut rng = rand::rng();
        let traceparent = (!valid).then(|| {
            let mut tp = *b"00-00000000000000000000000000000000-0000000000000000-01";
            hex(&mut tp[3..35], rng.random::<u128>() | 1);
            hex(&mut tp[36..52], u128::from(rng.random::<u64>() | 1));
            tp
        });
        let correlation = (!self.correlation).then(|| {
            let mut id = [0u8; 32];
            hex(&mut id, rng.random::<u128>());
            id
        });
        Added {
            peer,
            xff: list(self.xff),
            forwarded: list(self.forwarded),
            host: self.host.filter(|h| !h.is_empty()),
            traceparent,
            correlation,
        }
    }
}

impl Added<'_> {
    /// Each added header, in order, its value in pieces to be joined (so
    /// none is put together twice).
    pub fn each(&self, correlation: &HeaderName, mut put: impl FnMut(&HeaderName, &[&[u8]])) {
        if let Some(peer) = self.peer {
            // Empty pieces where a part is missing.
            let [before, comma]: [&[u8]; 2] = self.xff.map_or([b"", b""], |b| [b, b", "]);
            put(&X_FORWARDED_FOR, &[before, comma, peer.ip.as_bytes()]);
            let [before, comma]: [&[u8]; 2] = self.forwarded.map_or([b"", b""], |b| [b, b", "]);
            let host = self.host.filter(|h| std::str::from_utf8(h).is_ok());
            let [open, host, close]: [&[u8]; 3] = host.map_or([b"", b"", b""], |h| [b";host=\"", h, b"\""]);
            let node = peer.node.as_bytes();
            put(&header::FORWARDED, &[before, comma, b"for=", node, b";proto=", peer.proto, open, host, close]);
        }
        put(&X_FORWARDED_PROTO, &[self.peer.map_or(b"http", |p| p.proto)]);
        if let Some(v) = self.host {
            put(&X_FORWARDED_HOST, &[v]);
        }
        if let Some(v) = &self.traceparent {
            put(&TRACEPARENT, &[v]);
        }
        if let Some(v) = &self.correlation {
            put(correlation, &[v]);
        }
    }

    /// Does an added header take the place of the incoming `name`?
    pub fn replaces(&self, name: &[u8]) -> bool {
        let is = |h: &HeaderName| name.eq_ignore_ascii_case(h.as_str().as_bytes());
        (self.peer.is_some() && (is(&X_FORWARDED_FOR) || is(&header::FORWARDED)))
            || is(&X_FORWARDED_PROTO)
            || (self.host.is_some() && is(&X_FORWARDED_HOST))
            || (self.traceparent.is_some() && is(&TRACEPARENT))
    }
}

/// Writes the low `out.len()` hex digits of `v`, lower case.
fn hex(out: &mut [u8], mut v: u128) {
    for b in out.iter_mut().rev() {
        *b = b"0123456789abcdef"[(v & 0xf) as usize];
        v >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_stay_behind_and_the_client_is_named() {
        let incoming = headers(&[
            ("host", "shop.example"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("x-forwarded-for", "10.0.0.1"),
            ("authorization", "Bearer t"),
        ]);
        let peer = Peer::new("192.0.2.7".parse().unwrap(), false);
        let out = upstream(&incoming, Some(&peer), &HeaderName::from_static("x-correlation-id"), None);
        for gone in ["connection", "x-secret-hop", "transfer-encoding", "host"] {
            assert!(!out.contains_key(gone), "{gone} was passed on");
        }
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(out["forwarded"], "for=192.0.2.7;proto=http;host=\"shop.example\"");
        assert_eq!(out["x-forwarded-host"], "shop.example");
        assert_eq!(out["authorization"], "Bearer t", "end to end headers pass");
        assert!(TraceParent::parse(out["traceparent"].to_str().unwrap()).is_some());
        assert_eq!(out["x-correlation-id"].len(), 32);
    }

    #[test]
    fn a_valid_trace_context_and_correlation_id_are_kept() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let incoming = headers(&[("traceparent", tp), ("x-correlation-id", "abc")]);
        let out = upstream(&incoming, None, &HeaderName::from_static("x-correlation-id"), None);
        assert_eq!(out["traceparent"], tp);
        assert_eq!(out["x-correlation-id"], "abc");
        let broken = headers(&[("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")]);
        let out = upstream(&broken, None, &HeaderName::from_static("x-correlation-id"), None);
        assert_ne!(out["traceparent"], broken["traceparent"], "an all-zero trace id is replaced");
    }

    #[test]
    fn repeated_headers_pass_whole_and_an_ipv6_client_over_tls_is_quoted_and_https() {
        let incoming = headers(&[("accept", "text/plain"), ("accept", "application/json")]);
        let peer = Peer::new("2001:db8::1".parse().unwrap(), true);
        let out = upstream(&incoming, Some(&peer), &HeaderName::from_static("x-correlation-id"), None);
        assert_eq!(out.get_all("accept").iter().count(), 2);
        assert_eq!(out["x-forwarded-for"], "2001:db8::1");
        assert_eq!(out["forwarded"], "for=\"[2001:db8::1]\";proto=https");
        assert_eq!(out["x-forwarded-proto"], "https");
    }

    #[test]
    fn answers_lose_only_their_hop_by_hop_headers() {
        let mut h = headers(&[
            ("content-type", "text/plain"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["content-type"]);
        let mut plain = headers(&[("content-type", "text/plain"), ("x-hop", "1")]);
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain.len(), 2, "a header not named by Connection stays");
    }
}
