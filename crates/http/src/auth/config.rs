//! `[auth]`: who may call herald.

use serde::Deserialize;

/// Who may call herald. With nothing configured every caller is an admin
/// (a warning says so at start-up): fine on a laptop, never in production.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How end users' bearer tokens (JWTs whose `sub` is their subject) are checked.
    pub users: Option<UserTokens>,
    /// Bearer tokens of services and admins.
    pub tokens: Vec<StaticToken>,
    /// What a caller with no token is. Unset: refused (once anything above
    /// is configured). For local demos only.
    pub anonymous: Option<StaticRole>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTokens {
    pub algorithm: JwtAlgorithm,
    /// The shared secret, for HS256.
    #[serde(default)]
    pub secret: Option<String>,
    /// The issuer's public key (PEM), for EdDSA.
    #[serde(default)]
    pub public_key: Option<String>,
    /// When set, tokens must carry this `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// When set, tokens must carry this `aud`. Set it: unset, a token your
    /// issuer made for another application works here too (a warning
    /// says so at start).
    #[serde(default)]
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    EdDSA,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticToken {
    /// Who holds it, for logs.
    pub name: String,
    pub token: String,
    pub role: StaticRole,
    /// The services a service's token speaks for: it may register their
    /// instances and subscriptions that push to them. Unset: the one
    /// named `name`.
    #[serde(default)]
    pub services: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaticRole {
    /// Starts operations and reads any of them.
    Service,
    /// Everything.
    Admin,
    /// Reads `/metrics`, nothing else: what a Prometheus scraper holds.
    Metrics,
}
