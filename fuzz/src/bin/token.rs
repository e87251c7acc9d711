//! Callback-token verification. The input is the secret's length byte,
//! the secret, then the presented token: it never opens a step (a forgery
//! would need the HMAC), and a token herald issues opens its own step, for
//! its attempt, and no other step or operation.

use herald_core::Time;
use herald_engine::tokens::{Refused, Tokens};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&n, rest)) = data.split_first() else { return };
        let (secret, token) = rest.split_at((n as usize).min(rest.len()));
        let t = Tokens::new(secret.to_vec());
        let now = at(1_000);
        let token = String::from_utf8_lossy(token);
        assert!(t.verify_at("op_1", "charge", &token, now).is_err(), "forged: {token:?}");
        assert_eq!(t.verify("op_1", "charge", &token).ok(), None);

        // The presented bytes as an attempt number and expiry: the token
        // issued for them verifies as issued, and only there.
        let attempt = u32::from(n) + token.len() as u32;
        let expires = at(1_000 + i64::from(n) - 64);
        let issued = t.issue("op_1", "charge", attempt, expires);
        let verdict = t.verify_at("op_1", "charge", &issued, now);
        if expires >= now {
            assert_eq!(verdict, Ok(attempt));
        } else {
            assert_eq!(verdict, Err(Refused::Expired));
        }
        assert_eq!(t.verify_at("op_1", &token, &issued, now).ok().filter(|_| *token != *"charge"), None);
        assert_eq!(t.verify_at(&token, "charge", &issued, now).ok().filter(|_| *token != *"op_1"), None);
    });
}

fn at(secs: i64) -> Time {
    Time::from_timestamp(secs, 0).expect("in range")
}
