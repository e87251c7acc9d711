//! What the gateway passes on and what it adds: hop-by-hop headers stay
//! behind (RFC 9110 §7.6.1), the client's address and protocol travel in
//! `X-Forwarded-*` and `Forwarded` (RFC 7239), and every request carries a
//! W3C `traceparent` and a correlation id, forwarded when valid, made when not.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

const HOP_BY_HOP: [HeaderName; 8] = [
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
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        h.remove(name);
    }
}

/// The headers sent upstream for a request from `peer`.
pub fn upstream(incoming: &HeaderMap, peer: Option<IpAddr>, correlation: &HeaderName) -> HeaderMap {
    let mut h = incoming.clone();
    strip_hop_by_hop(&mut h);
    let host = h.remove(header::HOST);
    let text = |v: &HeaderValue| v.to_str().unwrap_or("").to_string();
    if let Some(ip) = peer {
        let chain = match h.get("x-forwarded-for").map(text) {
            Some(before) if !before.is_empty() => format!("{before}, {ip}"),
            _ => ip.to_string(),
        };
        insert(&mut h, "x-forwarded-for", &chain);
        let node = if ip.is_ipv6() { format!("\"[{ip}]\"") } else { ip.to_string() };
        let mut element = format!("for={node};proto=http");
        if let Some(host) = host.as_ref().map(text).filter(|h| !h.is_empty()) {
            element.push_str(&format!(";host=\"{host}\""));
        }
        let forwarded = match h.get(header::FORWARDED).map(text) {
            Some(before) if !before.is_empty() => format!("{before}, {element}"),
            _ => element,
        };
        insert(&mut h, "forwarded", &forwarded);
    }
    insert(&mut h, "x-forwarded-proto", "http");
    if let Some(host) = host {
        h.insert("x-forwarded-host", host);
    }
    if !h.get("traceparent").and_then(|v| v.to_str().ok()).is_some_and(valid_traceparent) {
        let fresh = format!("00-{:032x}-{:016x}-01", rand::random::<u128>() | 1, rand::random::<u64>() | 1);
        insert(&mut h, "traceparent", &fresh);
    }
    if !h.contains_key(correlation) {
        let id = format!("{:032x}", rand::random::<u128>());
        if let Ok(v) = HeaderValue::from_str(&id) {
            h.insert(correlation.clone(), v);
        }
    }
    h
}

fn insert(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, ids not all zero.
fn valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.trim().split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    matches!(parts.as_slice(), [ver, trace, parent, flags]
        if hex(ver, 2) && *ver != "ff" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2)
            && trace.bytes().any(|b| b != b'0') && parent.bytes().any(|b| b != b'0'))
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
        let out = upstream(&incoming, Some("192.0.2.7".parse().unwrap()), &HeaderName::from_static("x-correlation-id"));
        for gone in ["connection", "x-secret-hop", "transfer-encoding", "host"] {
            assert!(!out.contains_key(gone), "{gone} was passed on");
        }
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(out["forwarded"], "for=192.0.2.7;proto=http;host=\"shop.example\"");
        assert_eq!(out["x-forwarded-host"], "shop.example");
        assert_eq!(out["authorization"], "Bearer t", "end to end headers pass");
        assert!(valid_traceparent(out["traceparent"].to_str().unwrap()));
        assert_eq!(out["x-correlation-id"].len(), 32);
    }

    #[test]
    fn a_valid_trace_context_and_correlation_id_are_kept() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let incoming = headers(&[("traceparent", tp), ("x-correlation-id", "abc")]);
        let out = upstream(&incoming, None, &HeaderName::from_static("x-correlation-id"));
        assert_eq!(out["traceparent"], tp);
        assert_eq!(out["x-correlation-id"], "abc");
        let broken = headers(&[("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")]);
        let out = upstream(&broken, None, &HeaderName::from_static("x-correlation-id"));
        assert_ne!(out["traceparent"], broken["traceparent"], "an all-zero trace id is replaced");
    }
}
