//! The `Host` rules of RFC 9112 §3.2: an HTTP/1.1 request carries exactly
//! one `Host` header, and it is a valid authority; any other is answered
//! 400, never routed or proxied.

use axum::http::{HeaderMap, Version, header, uri::Authority};

use crate::problem::ApiError;

/// Does a request of `version` with these `Host` values keep the rules?
pub fn valid<'a>(version: Version, mut hosts: impl Iterator<Item = &'a [u8]>) -> bool {
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => false,
        (None, _) => version != Version::HTTP_11,
        (Some(v), None) => v.is_empty() && version != Version::HTTP_11 || Authority::try_from(v).is_ok(),
    }
}

/// The refusal of a request that breaks them.
pub fn check(version: Version, headers: &HeaderMap) -> Result<(), ApiError> {
    if valid(version, headers.get_all(header::HOST).iter().map(|v| v.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::BadRequest("an HTTP/1.1 request needs exactly one valid `Host` header".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_valid_host_on_http_1_1_and_at_most_one_before() {
        let v11 = Version::HTTP_11;
        assert!(valid(v11, [&b"shop.example:8080"[..]].into_iter()));
        assert!(!valid(v11, std::iter::empty()));
        assert!(!valid(v11, [&b"a"[..], &b"a"[..]].into_iter()));
        assert!(!valid(v11, [&b"a b"[..]].into_iter()));
        assert!(!valid(v11, [&b""[..]].into_iter()));
        assert!(valid(Version::HTTP_10, std::iter::empty()));
        assert!(!valid(Version::HTTP_10, [&b"a"[..], &b"b"[..]].into_iter()));
    }
}
