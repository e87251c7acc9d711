//! Who is calling: an end user (a JWT whose `sub` is their subject), a
//! service or an admin (static bearer tokens from the configuration).
//! DESIGN.md invariant 9: end users see only their own operations; for
//! anything else the answer is 404, never a hint that it exists.

use std::collections::HashSet;

use axum::{extract::FromRequestParts, http::request::Parts};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{
    api::{AppState, problem::ApiError},
    config::{AuthConfig, JwtAlgorithm, StaticRole},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin(String),
    Service(String),
    /// An end user; the string is their subject.
    User(String),
}

impl Caller {
    /// May this caller see an operation about `subject`?
    pub fn may_see(&self, subject: Option<&str>) -> bool {
        match self {
            Caller::Admin(_) | Caller::Service(_) => true,
            Caller::User(sub) => subject == Some(sub.as_str()),
        }
    }

    /// The subject an end user is limited to; `None` for services and admins.
    pub fn own_subject(&self) -> Option<&str> {
        match self {
            Caller::User(sub) => Some(sub),
            _ => None,
        }
    }
}

/// The checks built once from the configuration.
pub struct Auth {
    open: bool,
    anonymous: Option<StaticRole>,
    users: Option<(DecodingKey, Validation)>,
    /// (sha256 of the token, holder, role): compared by digest, so the
    /// comparison's time says nothing about the token.
    tokens: Vec<([u8; 32], String, StaticRole)>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl Auth {
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        let users = match &config.users {
            None => None,
            Some(u) => {
                let (key, alg) = match u.algorithm {
                    JwtAlgorithm::HS256 => {
                        let secret = u.secret.as_deref().filter(|s| s.len() >= 32).ok_or_else(|| {
                            anyhow::anyhow!("auth.users: HS256 needs a `secret` of at least 32 characters")
                        })?;
                        (DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256)
                    }
                    JwtAlgorithm::EdDSA => {
                        let pem = u
                            .public_key
                            .as_deref()
                            .ok_or_else(|| anyhow::anyhow!("auth.users: EdDSA needs `public_key` (PEM)"))?;
                        (DecodingKey::from_ed_pem(pem.as_bytes())?, Algorithm::EdDSA)
                    }
                };
                let mut v = Validation::new(alg);
                v.set_required_spec_claims(&["exp", "sub"]);
                v.leeway = 30;
                if let Some(iss) = &u.issuer {
                    v.set_issuer(&[iss]);
                }
                match &u.audience {
                    Some(aud) => v.set_audience(&[aud]),
                    None => v.validate_aud = false,
                }
                Some((key, v))
            }
        };
        let mut seen = HashSet::new();
        let mut tokens = Vec::new();
        for t in &config.tokens {
            anyhow::ensure!(t.token.len() >= 16, "auth.tokens `{}`: a token needs at least 16 characters", t.name);
            anyhow::ensure!(seen.insert(t.token.clone()), "auth.tokens `{}`: this token is given twice", t.name);
            tokens.push((digest(&t.token), t.name.clone(), t.role));
        }
        let open = users.is_none() && tokens.is_empty();
        if open {
            tracing::warn!("no [auth] configured: every caller is treated as an admin");
        } else if let Some(role) = config.anonymous {
            tracing::warn!(?role, "callers without a token are let in (auth.anonymous)");
        }
        Ok(Auth { open, anonymous: config.anonymous, users, tokens })
    }

    /// Does a request without a token get in? (No `[auth]`, or `auth.anonymous`.)
    pub fn lets_in_without_token(&self) -> bool {
        self.open || self.anonymous.is_some()
    }

    /// The caller a bearer token (or its absence) stands for.
    pub fn identify(&self, bearer: Option<&str>) -> Result<Caller, ApiError> {
        let Some(token) = bearer.map(str::trim).filter(|t| !t.is_empty()) else {
            return match (self.open, self.anonymous) {
                (true, _) | (_, Some(StaticRole::Admin)) => Ok(Caller::Admin("anonymous".into())),
                (false, Some(StaticRole::Service)) => Ok(Caller::Service("anonymous".into())),
                (false, None) => Err(ApiError::Unauthorized("send `Authorization: Bearer <token>`".into())),
            };
        };
        let d = digest(token);
        if let Some((_, name, role)) = self.tokens.iter().find(|(t, _, _)| *t == d) {
            return Ok(match role {
                StaticRole::Admin => Caller::Admin(name.clone()),
                StaticRole::Service => Caller::Service(name.clone()),
            });
        }
        match &self.users {
            Some((key, validation)) => match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) if !data.claims.sub.is_empty() => Ok(Caller::User(data.claims.sub)),
                Ok(_) => Err(ApiError::Unauthorized("the token has an empty `sub`".into())),
                Err(e) => Err(ApiError::Unauthorized(format!("the token is not valid: {}", reason(&e)))),
            },
            None if self.open => Ok(Caller::Admin("anonymous".into())),
            None => Err(ApiError::Unauthorized("the token is not valid".into())),
        }
    }
}

/// A reason a client can act on, without echoing the token.
fn reason(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        ExpiredSignature => "it has expired",
        ImmatureSignature => "it is not valid yet",
        InvalidSignature => "its signature does not match",
        InvalidIssuer => "it is from another issuer",
        InvalidAudience => "it is for another audience",
        MissingRequiredClaim(_) => "it lacks `sub` or `exp`",
        InvalidAlgorithm => "it is signed with another algorithm",
        _ => "it is malformed",
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The bearer token of a request: `Authorization: Bearer …`, or (for event
/// streams, which browsers open without headers) `?access_token=…`.
pub fn bearer<'a>(authorization: Option<&'a str>, query: Option<&'a str>) -> Option<&'a str> {
    authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| query?.split('&').find_map(|kv| kv.strip_prefix("access_token=")))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let authorization = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        app.auth.identify(bearer(authorization, parts.uri.query()))
    }
}

/// Admin endpoints.
pub fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Admin(_) => Ok(()),
        _ => Err(ApiError::Forbidden("this needs an admin token".into())),
    }
}

/// Only services and admins start operations and use admin endpoints.
pub fn require_service(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::User(_) => {
            Err(ApiError::Forbidden("end users reach this through the application, not directly".into()))
        }
        _ => Ok(()),
    }
}
