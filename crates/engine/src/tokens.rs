//! Callback tokens: `<attempt>.<expiry>.<hex>`, the hex HMAC-SHA256 with
//! the server's stored secret over `<operation>/<step>/<attempt>/<expiry>`
//! (expiry in unix seconds). Only the service we called can complete the
//! step, only for the attempt it was called for (the state machine refuses
//! an attempt that is over), and only until the token expires.
//!
//! A step that answers 202 waits for its callback until its deadline or
//! its operation's, whichever comes first: that is when the token expires,
//! plus [`SLACK`]. Without either deadline nothing else would ever end the
//! wait, so the token lasts [`WITHOUT_DEADLINE`] from the call.

use chrono::Duration;
use herald_core::{Operation, Span, Time};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Past a deadline, for clocks of other nodes that run a little behind:
/// the deadline itself ends the step, so a late token opens nothing.
pub const SLACK: Duration = Duration::seconds(60);

/// How long a token lasts when neither the step nor its operation has a deadline.
pub const WITHOUT_DEADLINE: Duration = Duration::days(7);

/// Why a token does not open a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Malformed, forged, or for another operation or step.
    Invalid,
    Expired,
}

#[derive(Clone)]
pub struct Tokens {
    secret: Vec<u8>,
}

impl Tokens {
    pub fn new(secret: Vec<u8>) -> Self {
        Tokens { secret }
    }

    fn mac(&self, op: &str, step: &str, attempt: u32, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(format!("{op}/{step}/{attempt}/{expires}").as_bytes());
        mac
    }

    /// A token for `attempt` of `step`, good until `expires`.
    pub fn issue(&self, op: &str, step: &str, attempt: u32, expires: Time) -> String {
        let expires = expires.timestamp();
        let mac = hex::encode(self.mac(op, step, attempt, expires).finalize().into_bytes());
        format!("{attempt}.{expires}.{mac}")
    }

    /// The attempt a presented token was issued for, checked now.
    pub fn verify(&self, op: &str, step: &str, token: &str) -> Result<u32, Refused> {
        self.verify_at(op, step, token, chrono::Utc::now())
    }

    /// As [`Tokens::verify`], at `now`. The MAC is checked first, in
    /// constant time, so a forged token is told nothing about its expiry.
    pub fn verify_at(&self, op: &str, step: &str, token: &str, now: Time) -> Result<u32, Refused> {
        let mut parts = token.splitn(3, '.');
        let (Some(attempt_text), Some(expires_text), Some(mac_text)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Refused::Invalid);
        };
        let (Ok(attempt), Ok(expires), Ok(mac)) =
            (attempt_text.parse::<u32>(), expires_text.parse::<i64>(), hex::decode(mac_text))
        else {
            return Err(Refused::Invalid);
        };
        // One spelling per token, as issued: no sign, no leading zero,
        // lowercase hex.
        let as_issued = attempt_text == attempt.to_string()
            && expires_text == expires.to_string()
            && !mac_text.bytes().any(|b| b.is_ascii_uppercase());
        if !as_issued {
            return Err(Refused::Invalid);
        }
        self.mac(op, step, attempt, expires).verify_slice(&mac).map_err(|_| Refused::Invalid)?;
        if now.timestamp() > expires {
            return Err(Refused::Expired);
        }
        Ok(attempt)
    }
}

/// When a token for `step` of `op`, issued at `now`, expires (see the module's words).
pub fn expiry(op: &Operation, step: &str, step_deadline: Option<Span>, now: Time) -> Time {
    let started = op.step(step).and_then(|(_, s)| s.started_at);
    let step_ends = step_deadline.zip(started).and_then(|(d, started)| started.checked_add_signed(d.as_chrono()));
    match step_ends.into_iter().chain(op.deadline_at).min() {
        Some(end) => end.checked_add_signed(SLACK).unwrap_or(end),
        None => now + WITHOUT_DEADLINE,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(secs: i64) -> Time {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn a_token_opens_only_its_own_step_and_names_its_attempt() {
        let t = Tokens::new(b"secret".to_vec());
        let token = t.issue("op_1", "charge", 2, at(2_000));
        assert_eq!(t.verify_at("op_1", "charge", &token, at(1_000)), Ok(2));
        assert_eq!(t.verify_at("op_1", "reserve", &token, at(1_000)), Err(Refused::Invalid));
        assert_eq!(t.verify_at("op_2", "charge", &token, at(1_000)), Err(Refused::Invalid));
        assert_eq!(t.verify_at("op_1", "charge", "zz", at(1_000)), Err(Refused::Invalid));
        assert_eq!(t.verify_at("op_1", "charge", "2.2000.zz", at(1_000)), Err(Refused::Invalid));
    }

    #[test]
    fn a_token_with_its_attempt_or_expiry_changed_is_forged() {
        let t = Tokens::new(b"secret".to_vec());
        let token = t.issue("op_1", "charge", 1, at(2_000));
        let mac = token.rsplit('.').next().unwrap();
        assert_eq!(t.verify_at("op_1", "charge", &format!("2.2000.{mac}"), at(1_000)), Err(Refused::Invalid));
        assert_eq!(t.verify_at("op_1", "charge", &format!("1.9999.{mac}"), at(1_000)), Err(Refused::Invalid));
        for respelled in
            [format!("+1.2000.{mac}"), format!("01.2000.{mac}"), format!("1.+2000.{mac}"), format!("1.02000.{mac}")]
        {
            assert_eq!(t.verify_at("op_1", "charge", &respelled, at(1_000)), Err(Refused::Invalid), "{respelled}");
        }
    }

    proptest::proptest! {
        /// Any text, and any one-byte change of a real token, is refused,
        /// and never panics.
        #[test]
        fn nothing_but_the_token_issued_opens_a_step(junk in "[ -~]{0,80}", pos in 0usize..64, byte in 0u8..128) {
            let t = Tokens::new(b"secret".to_vec());
            let token = t.issue("op_1", "charge", 3, at(2_000));
            proptest::prop_assert_eq!(t.verify_at("op_1", "charge", &junk, at(1_000)), Err(Refused::Invalid));
            let mut changed = token.clone().into_bytes();
            let i = pos % changed.len();
            proptest::prop_assume!(changed[i] != byte);
            changed[i] = byte;
            let changed = String::from_utf8_lossy(&changed).into_owned();
            proptest::prop_assert!(t.verify_at("op_1", "charge", &changed, at(1_000)).is_err(), "{}", changed);
        }
    }

    fn op(toml: &str, now: Time) -> Operation {
        let wf = herald_core::workflow::from_toml(toml).unwrap();
        let mut op = Operation::new(
            &wf,
            herald_core::OperationId::new(now, rand::random()),
            serde_json::json!({}),
            None,
            None,
            &Default::default(),
            now,
        );
        op.steps[0].started_at = Some(now);
        op
    }

    #[test]
    fn a_token_expires_at_the_first_deadline_plus_the_slack_or_a_week_after_the_call() {
        let (now, later) = (at(1_000), at(1_500));
        let step = "[[steps]]\nname = \"s\"\ncall = { service = \"x\", path = \"/s\" }\n";
        let bare = op(&format!("name = \"w\"\n{step}"), now);
        assert_eq!(expiry(&bare, "s", None, later), later + WITHOUT_DEADLINE);
        let with_op_deadline = op(&format!("name = \"w\"\ndeadline = \"1h\"\n{step}"), now);
        assert_eq!(expiry(&with_op_deadline, "s", None, later), now + Duration::hours(1) + SLACK);
        let step_deadline = Some(Span::from_millis(60_000));
        assert_eq!(expiry(&with_op_deadline, "s", step_deadline, later), now + Duration::minutes(1) + SLACK);
    }

    #[test]
    fn a_token_past_its_expiry_is_refused() {
        let t = Tokens::new(b"secret".to_vec());
        let token = t.issue("op_1", "charge", 1, at(2_000));
        assert_eq!(t.verify_at("op_1", "charge", &token, at(2_000)), Ok(1), "good until the second it names");
        assert_eq!(t.verify_at("op_1", "charge", &token, at(2_001)), Err(Refused::Expired));
    }
}
