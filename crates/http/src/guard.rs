//! Requests a web page on another site could make through a user's
//! browser, refused while herald trusts callers without a token.
//!
//! With no `[auth]` (every caller an admin) or with `auth.anonymous`, the
//! browser of anyone who can reach herald is a way in: a page elsewhere can
//! POST to it (a form needs no permission), and a name of the attacker's
//! that resolves to herald's address (DNS rebinding) makes even reads
//! same-origin for that page. So in those modes a request must name herald
//! itself in `Host` (loopback, or the host of `listen` / `public_url`), and
//! a request that changes something must not come from another origin.
//! With real credentials none of this applies: browsers do not send bearer
//! tokens by themselves.

use std::net::{IpAddr, SocketAddr};

use crate::problem::ApiError;

/// The rule as configured: `None` when herald asks for credentials.
pub struct Guard {
    hosts: Option<Vec<String>>,
}

/// What the rule looks at in a request, as raw header values.
#[derive(Clone, Copy)]
pub struct Seen<'a> {
    pub method: &'a str,
    pub host: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    pub fetch_site: Option<&'a [u8]>,
}

impl<'a> Seen<'a> {
    pub fn of(method: &'a axum::http::Method, headers: &'a axum::http::HeaderMap) -> Self {
        let get = |name: &str| headers.get(name).map(|v| v.as_bytes());
        Seen { method: method.as_str(), host: get("host"), origin: get("origin"), fetch_site: get("sec-fetch-site") }
    }
}

impl Guard {
    /// `trusting`: callers without a token are let in. The names herald
    /// answers to besides loopback come from `listen` and `public_url`.
    pub fn new(trusting: bool, listen: SocketAddr, public_url: Option<&str>) -> Self {
        if !trusting {
            return Guard { hosts: None };
        }
        let mut hosts = Vec::new();
        if !listen.ip().is_unspecified() {
            hosts.push(listen.ip().to_string());
        }
        if let Some((_, host, _)) = public_url.and_then(|u| origin_parts(u.as_bytes())) {
            hosts.push(host.to_ascii_lowercase());
        }
        Guard { hosts: Some(hosts) }
    }

    /// Whether any request can be refused (the express lane asks first, to
    /// stay cheap when not).
    pub fn active(&self) -> bool {
        self.hosts.is_some()
    }

    pub fn admit(&self, req: Seen<'_>) -> Result<(), ApiError> {
        if !self.active() {
            return Ok(());
        }
        self.admit_host(req.host)?;
        if matches!(req.method, "GET" | "HEAD" | "OPTIONS") {
            return Ok(());
        }
        match req.origin {
            Some(origin) if same_origin(origin, req.host) => Ok(()),
            Some(origin) => Err(ApiError::OriginNotAllowed(format!(
                "a page from `{}` may not change anything here: herald takes callers without a token, so only its own pages may",
                String::from_utf8_lossy(origin)
            ))),
            None if req.fetch_site.is_some_and(|s| s.eq_ignore_ascii_case(b"cross-site")) => {
                Err(ApiError::OriginNotAllowed(
                    "a page from another site may not change anything here: herald takes callers without a token"
                        .into(),
                ))
            }
            None => Ok(()),
        }
    }

    /// The `Host` check alone (a request that changes nothing).
    pub fn admit_host(&self, host: Option<&[u8]>) -> Result<(), ApiError> {
        let Some(hosts) = &self.hosts else { return Ok(()) };
        // Browsers always send `Host`; a client that does not is no page's tool.
        let Some(raw) = host else { return Ok(()) };
        let known = text(raw).and_then(authority).is_some_and(|(name, _)| {
            let name = name.strip_suffix('.').unwrap_or(name);
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
                || hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
        });
        if known {
            return Ok(());
        }
        Err(ApiError::OriginNotAllowed(format!(
            "`Host: {}` is not a name of this server: herald takes callers without a token, so it answers only to \
             localhost, its loopback addresses and the host of its `listen` or `public_url`",
            String::from_utf8_lossy(raw)
        )))
    }
}

fn text(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw).ok().map(str::trim)
}

/// `host[:port]` (IPv6 in brackets) → (host without brackets, port).
fn authority(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/?#@[]".contains(c)) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse().ok()?),
    };
    Some((host, port))
}

/// `scheme://host[:port]` → (scheme, host, port or the scheme's default).
/// Whatever follows the authority (a `public_url`'s path) is ignored.
fn origin_parts(raw: &[u8]) -> Option<(&str, &str, u16)> {
    let (scheme, rest) = text(raw)?.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, port) = authority(&rest[..end])?;
    Some((scheme, host, port.or_else(|| default_port(scheme))?))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Does `Origin` name the host the request was sent to? (`Origin: null`,
/// from sandboxed frames and the like, never does.)
fn same_origin(origin: &[u8], host: Option<&[u8]>) -> bool {
    let (Some((scheme, o_host, o_port)), Some((h_host, h_port))) =
        (origin_parts(origin), host.and_then(text).and_then(authority))
    else {
        return false;
    };
    let h_port = h_port.or_else(|| default_port(scheme));
    o_host.eq_ignore_ascii_case(h_host) && Some(o_port) == h_port
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Guard {
        Guard::new(true, "10.0.0.5:7070".parse().unwrap(), Some("https://herald.example.com/base"))
    }

    fn seen<'a>(method: &'a str, host: &'a str, origin: Option<&'a str>, site: Option<&'a str>) -> Seen<'a> {
        Seen {
            method,
            host: Some(host.as_bytes()),
            origin: origin.map(str::as_bytes),
            fetch_site: site.map(str::as_bytes),
        }
    }

    #[test]
    fn loopback_names_and_the_configured_hosts_are_answered_with_any_port() {
        let g = open();
        for host in [
            "localhost",
            "LOCALHOST:7070",
            "127.0.0.1",
            "127.0.0.1:9",
            "[::1]",
            "[::1]:7070",
            "10.0.0.5:7070",
            "herald.example.com",
            "herald.example.com:443",
        ] {
            assert!(g.admit(seen("GET", host, None, None)).is_ok(), "{host}");
        }
    }

    #[test]
    fn other_names_are_refused_as_a_rebinding_would_send_them() {
        let g = open();
        for host in ["evil.example", "evil.example:7070", "localhost.evil.example", "10.0.0.6", "[::2]:7070", "", "a b"]
        {
            let e = g.admit(seen("GET", host, None, None)).unwrap_err();
            assert!(matches!(e, ApiError::OriginNotAllowed(_)), "{host}: {e:?}");
        }
    }

    #[test]
    fn a_change_from_another_origin_is_refused_and_one_from_the_same_origin_is_not() {
        let g = open();
        assert!(g.admit(seen("POST", "127.0.0.1:7070", Some("http://127.0.0.1:7070"), None)).is_ok());
        assert!(g.admit(seen("POST", "localhost", Some("http://localhost"), None)).is_ok());
        assert!(g.admit(seen("DELETE", "herald.example.com", Some("https://herald.example.com"), None)).is_ok());
        for origin in ["http://evil.example", "http://127.0.0.1:7071", "https://127.0.0.1", "null", "garbage"] {
            assert!(g.admit(seen("POST", "127.0.0.1:7070", Some(origin), None)).is_err(), "{origin}");
        }
        assert!(g.admit(seen("PUT", "localhost:7070", None, Some("cross-site"))).is_err());
        assert!(g.admit(seen("POST", "localhost:7070", None, Some("same-origin"))).is_ok());
        assert!(g.admit(seen("POST", "localhost:7070", None, None)).is_ok(), "curl sends no Origin");
        assert!(g.admit(seen("GET", "localhost:7070", Some("http://evil.example"), Some("cross-site"))).is_ok());
    }

    #[test]
    fn with_credentials_required_nothing_is_refused() {
        let g = Guard::new(false, "127.0.0.1:7070".parse().unwrap(), None);
        assert!(!g.active());
        assert!(g.admit(seen("POST", "evil.example", Some("http://evil.example"), Some("cross-site"))).is_ok());
    }
}
