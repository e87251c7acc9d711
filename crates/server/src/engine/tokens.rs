//! Per-step callback tokens: HMAC-SHA256 over `operation/step` with the
//! server's stored secret, so only the service we called can complete it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Clone)]
pub struct Tokens {
    secret: Vec<u8>,
}

impl Tokens {
    pub fn new(secret: Vec<u8>) -> Self {
        Tokens { secret }
    }

    fn mac(&self, op: &str, step: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(op.as_bytes());
        mac.update(b"/");
        mac.update(step.as_bytes());
        mac
    }

    pub fn issue(&self, op: &str, step: &str) -> String {
        hex::encode(self.mac(op, step).finalize().into_bytes())
    }

    /// Constant-time check of a presented token.
    pub fn verify(&self, op: &str, step: &str, token: &str) -> bool {
        match hex::decode(token) {
            Ok(bytes) => self.mac(op, step).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_its_own_step() {
        let t = Tokens::new(b"secret".to_vec());
        let token = t.issue("op_1", "charge");
        assert!(t.verify("op_1", "charge", &token));
        assert!(!t.verify("op_1", "reserve", &token));
        assert!(!t.verify("op_2", "charge", &token));
        assert!(!t.verify("op_1", "charge", "zz"));
    }
}
