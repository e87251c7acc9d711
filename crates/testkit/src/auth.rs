//! End users' tokens as the secured tests issue them: HS256 on a shared
//! secret, checked by a herald configured with [`hs256`].

use herald_server::config::{JwtAlgorithm, UserTokens};
use serde_json::Value;

/// `[auth.users]` taking tokens signed with `secret`, no issuer or audience required.
pub fn hs256(secret: &str) -> UserTokens {
    UserTokens {
        algorithm: JwtAlgorithm::HS256,
        secret: Some(secret.into()),
        public_key: None,
        issuer: None,
        audience: None,
    }
}

/// `claims` signed with `secret` (HS256).
pub fn hs256_jwt(secret: &str, claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).unwrap()
}
