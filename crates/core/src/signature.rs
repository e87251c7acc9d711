//! Signed requests: `Herald-Signature: t=<unix seconds>,v2=<hex>` where the
//! hex is HMAC-SHA256 with the shared secret over
//!
//! ```text
//! <t>\n<METHOD>\n<path-and-query>\n<body>
//! ```
//!
//! `<path-and-query>` is the request target as sent on the request line
//! (`/payment/charge?x=1`), so a signed body cannot be replayed to another
//! endpoint or with another method. Newlines separate the parts because
//! none of the first three can hold one; a `.` could appear in a path and
//! let one signed string read as two different requests. A receiver
//! recomputes the MAC, compares in constant time, and refuses a timestamp
//! further from now than its tolerance, so a captured request cannot be
//! replayed later. Only `v2` is accepted: the earlier `v1` (over
//! `<t>.<body>` alone) is neither sent nor verified.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "herald-signature";

/// How far from now, either way, a signed request may be dated before
/// [`verify`] refuses it (a replay, or one made to be replayed later).
pub const TOLERANCE_SECS: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, method: &str, target: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    for part in [timestamp.to_string().as_bytes(), method.as_bytes(), target.as_bytes()] {
        mac.update(part);
        mac.update(b"\n");
    }
    mac.update(body);
    mac
}

/// The header value for `body` sent as `method target` (the path and
/// query as on the request line) at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, method: &str, target: &str, body: &[u8]) -> String {
    let mac = mac(secret, timestamp, method, target, body);
    format!("t={timestamp},v2={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is malformed or has no v2 signature")]
    Malformed,
    #[error("the signature does not match the request")]
    Mismatch,
    #[error("the request is older than the tolerance: a replay")]
    TooOld,
    #[error("the request is dated further ahead than the tolerance")]
    FromTheFuture,
}

/// Checks a received `Herald-Signature` against the request it came
/// with: its method, its path and query as received, and its body, at
/// time `now` (unix seconds).
pub fn verify(
    secret: &[u8],
    header: &str,
    method: &str,
    target: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v2", v)) => signatures.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed)?;
    // A part holding a newline could pass for another split of the parts.
    if signatures.is_empty() || method.contains('\n') || target.contains('\n') {
        return Err(VerifyError::Malformed);
    }
    let ok = signatures.iter().any(|s| mac(secret, timestamp, method, target, body).verify_slice(s).is_ok());
    if !ok {
        return Err(VerifyError::Mismatch);
    }
    // Either way: a signature dated ahead could be replayed until then.
    // (`abs_diff`: a timestamp near i64's ends must not overflow.)
    if now.abs_diff(timestamp) > TOLERANCE_SECS.unsigned_abs() {
        return Err(if timestamp < now { VerifyError::TooOld } else { VerifyError::FromTheFuture });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHARGE: &str = "/payment/charge";

    #[test]
    fn a_signed_body_verifies_and_a_tampered_one_does_not() {
        let header = sign(b"s3cret", 1_000, "POST", CHARGE, b"{\"a\":1}");
        assert_eq!(verify(b"s3cret", &header, "POST", CHARGE, b"{\"a\":1}", 1_010), Ok(()));
        assert_eq!(verify(b"s3cret", &header, "POST", CHARGE, b"{\"a\":2}", 1_010), Err(VerifyError::Mismatch));
        assert_eq!(verify(b"other", &header, "POST", CHARGE, b"{\"a\":1}", 1_010), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_body_signed_for_one_endpoint_does_not_verify_at_another_or_with_another_method() {
        let body = b"{\"amount\":100}";
        let header = sign(b"s3cret", 1_000, "POST", CHARGE, body);
        assert_eq!(verify(b"s3cret", &header, "POST", "/payment/refund", body, 1_000), Err(VerifyError::Mismatch));
        assert_eq!(verify(b"s3cret", &header, "PUT", CHARGE, body, 1_000), Err(VerifyError::Mismatch));
        assert_eq!(verify(b"s3cret", &header, "POST", "/payment/charge?x=1", body, 1_000), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_dot_moved_between_path_and_body_does_not_verify() {
        let header = sign(b"s3cret", 1_000, "POST", "/x", b"5.0");
        assert_eq!(verify(b"s3cret", &header, "POST", "/x.5", b"0", 1_000), Err(VerifyError::Mismatch));
        assert_eq!(verify(b"s3cret", &header, "POST", "/x\n5.0", b"", 1_000), Err(VerifyError::Malformed));
    }

    #[test]
    fn a_v1_signature_is_not_accepted() {
        let v1 = sign(b"s3cret", 1_000, "POST", CHARGE, b"x").replace("v2=", "v1=");
        assert_eq!(verify(b"s3cret", &v1, "POST", CHARGE, b"x", 1_000), Err(VerifyError::Malformed));
    }

    #[test]
    fn an_old_signature_is_a_replay_and_junk_is_malformed() {
        let header = sign(b"s3cret", 1_000, "POST", "/", b"x");
        let late = 1_000 + TOLERANCE_SECS + 1;
        assert_eq!(verify(b"s3cret", &header, "POST", "/", b"x", late), Err(VerifyError::TooOld));
        assert_eq!(verify(b"s3cret", "v2=zz", "POST", "/", b"x", 1_000), Err(VerifyError::Malformed));
        assert_eq!(verify(b"s3cret", "t=1000", "POST", "/", b"x", 1_000), Err(VerifyError::Malformed));
    }

    #[test]
    fn a_signature_dated_ahead_of_the_tolerance_is_refused_and_extreme_times_do_not_overflow() {
        let ahead = sign(b"s3cret", 1_000 + TOLERANCE_SECS + 1, "POST", "/", b"x");
        assert_eq!(verify(b"s3cret", &ahead, "POST", "/", b"x", 1_000), Err(VerifyError::FromTheFuture));
        let skewed = sign(b"s3cret", 1_000 + 30, "POST", "/", b"x");
        assert_eq!(verify(b"s3cret", &skewed, "POST", "/", b"x", 1_000), Ok(()), "a little clock skew is fine");
        for t in [i64::MIN, i64::MAX] {
            let header = sign(b"s3cret", t, "POST", "/", b"x");
            assert!(verify(b"s3cret", &header, "POST", "/", b"x", 1_000).is_err());
        }
    }
}
