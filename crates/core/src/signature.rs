//! Signed webhooks: `Herald-Signature: t=<unix seconds>,v1=<hex>` where the
//! hex is HMAC-SHA256 with the shared secret over `"<t>.<body>"`. A
//! receiver recomputes it, compares in constant time, and refuses a
//! timestamp older than its tolerance, so a captured request cannot be
//! replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "herald-signature";

/// How far from now, either way, a signed request may be dated before
/// [`verify`] refuses it (a replay, or one made to be replayed later).
pub const TOLERANCE_SECS: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the request is older than the tolerance: a replay")]
    TooOld,
    #[error("the request is dated further ahead than the tolerance")]
    FromTheFuture,
}

/// Checks a received `Herald-Signature` against the body, at time `now`
/// (unix seconds).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed)?;
    if signatures.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let ok = signatures.iter().any(|s| mac(secret, timestamp, body).verify_slice(s).is_ok());
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

    #[test]
    fn a_signed_body_verifies_and_a_tampered_one_does_not() {
        let header = sign(b"s3cret", 1_000, b"{\"a\":1}");
        assert_eq!(verify(b"s3cret", &header, b"{\"a\":1}", 1_010), Ok(()));
        assert_eq!(verify(b"s3cret", &header, b"{\"a\":2}", 1_010), Err(VerifyError::Mismatch));
        assert_eq!(verify(b"other", &header, b"{\"a\":1}", 1_010), Err(VerifyError::Mismatch));
    }

    #[test]
    fn an_old_signature_is_a_replay_and_junk_is_malformed() {
        let header = sign(b"s3cret", 1_000, b"x");
        assert_eq!(verify(b"s3cret", &header, b"x", 1_000 + TOLERANCE_SECS + 1), Err(VerifyError::TooOld));
        assert_eq!(verify(b"s3cret", "v1=zz", b"x", 1_000), Err(VerifyError::Malformed));
        assert_eq!(verify(b"s3cret", "t=1000", b"x", 1_000), Err(VerifyError::Malformed));
    }

    #[test]
    fn a_signature_dated_ahead_of_the_tolerance_is_refused_and_extreme_times_do_not_overflow() {
        let ahead = sign(b"s3cret", 1_000 + TOLERANCE_SECS + 1, b"x");
        assert_eq!(verify(b"s3cret", &ahead, b"x", 1_000), Err(VerifyError::FromTheFuture));
        let skewed = sign(b"s3cret", 1_000 + 30, b"x");
        assert_eq!(verify(b"s3cret", &skewed, b"x", 1_000), Ok(()), "a little clock skew is fine");
        for t in [i64::MIN, i64::MAX] {
            let header = sign(b"s3cret", t, b"x");
            assert!(verify(b"s3cret", &header, b"x", 1_000).is_err());
        }
    }
}
