//! Who is calling: an end user (a JWT whose `sub` is their subject), a
//! service or an admin (static bearer tokens from the configuration).
//! DESIGN.md invariant 9: end users see only their own operations; for
//! anything else the answer is 404, never a hint that it exists. A
//! service's token speaks for the services it names, and for no other.
//!
//! Tokens come in the `Authorization` header only, except on the two event
//! streams, which browsers open without headers: there `?access_token=`
//! may carry an end user's token (never a static one, which would end up
//! in logs and browser history).

use std::{collections::HashSet, sync::Arc};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub mod config;

use config::{AuthConfig, JwtAlgorithm, StaticRole};

use crate::problem::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin(String),
    Service(Speaker),
    /// An end user: their subject, and the language their token names
    /// (its `lang` claim), if it does.
    User(String, Option<String>),
}

impl Caller {
    /// May this caller see an operation about `subject`?
    pub fn may_see(&self, subject: Option<&str>) -> bool {
        match self {
            Caller::Admin(_) | Caller::Service(_) => true,
            Caller::User(sub, _) => subject == Some(sub.as_str()),
        }
    }

    /// The language an end user's token names.
    pub fn lang(&self) -> Option<&str> {
        match self {
            Caller::User(_, lang) => lang.as_deref(),
            _ => None,
        }
    }

    /// The subject an end user is limited to; `None` for services and admins.
    pub fn own_subject(&self) -> Option<&str> {
        match self {
            Caller::User(sub, _) => Some(sub),
            _ => None,
        }
    }
}

/// A service's token: who holds it, and the services it speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speaker {
    pub name: String,
    pub services: Arc<[String]>,
}

impl Speaker {
    pub fn speaks_for(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

/// The checks built once from the configuration.
pub struct Auth {
    open: bool,
    anonymous: Option<StaticRole>,
    users: Option<(DecodingKey, Validation)>,
    /// (sha256 of the token, who it stands for): compared by digest, so
    /// the comparison's time says nothing about the token.
    tokens: Vec<([u8; 32], Caller)>,
    /// Digests of the tokens that read `/metrics` and nothing else: no
    /// caller at all on any other route.
    scrapers: Vec<[u8; 32]>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    lang: Option<String>,
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
                v.validate_nbf = true;
                if let Some(iss) = &u.issuer {
                    v.set_issuer(&[iss]);
                }
                match &u.audience {
                    Some(aud) => v.set_audience(&[aud]),
                    None => {
                        tracing::warn!(
                            "auth.users.audience is unset: a token your issuer made for another application is \
                             accepted here too"
                        );
                        v.validate_aud = false
                    }
                }
                Some((key, v))
            }
        };
        let mut seen = HashSet::new();
        let (mut tokens, mut scrapers) = (Vec::new(), Vec::new());
        for t in &config.tokens {
            anyhow::ensure!(t.token.len() >= 16, "auth.tokens `{}`: a token needs at least 16 characters", t.name);
            anyhow::ensure!(seen.insert(t.token.clone()), "auth.tokens `{}`: this token is given twice", t.name);
            let caller = match (t.role, &t.services) {
                (StaticRole::Admin, None) => Caller::Admin(t.name.clone()),
                (StaticRole::Admin, Some(_)) => {
                    anyhow::bail!("auth.tokens `{}`: an admin speaks for every service; drop `services`", t.name)
                }
                (StaticRole::Service, services) => {
                    let services = services.clone().unwrap_or_else(|| vec![t.name.clone()]);
                    Caller::Service(Speaker { name: t.name.clone(), services: services.into() })
                }
                (StaticRole::Metrics, None) => {
                    scrapers.push(digest(&t.token));
                    continue;
                }
                (StaticRole::Metrics, Some(_)) => {
                    anyhow::bail!("auth.tokens `{}`: a metrics token speaks for no service; drop `services`", t.name)
                }
            };
            tokens.push((digest(&t.token), caller));
        }
        let open = users.is_none() && tokens.is_empty() && scrapers.is_empty();
        if open {
            tracing::warn!("no [auth] configured: every caller is treated as an admin");
        } else if let Some(role) = config.anonymous {
            tracing::warn!(?role, "callers without a token are let in (auth.anonymous)");
        }
        Ok(Auth { open, anonymous: config.anonymous, users, tokens, scrapers })
    }

    /// Is nothing configured, so every caller is an admin and no token is checked?
    pub fn is_open(&self) -> bool {
        self.open
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
                (false, Some(StaticRole::Service)) => {
                    Ok(Caller::Service(Speaker { name: "anonymous".into(), services: Arc::new([]) }))
                }
                (false, None | Some(StaticRole::Metrics)) => {
                    Err(ApiError::Unauthorized("send `Authorization: Bearer <token>`".into()))
                }
            };
        };
        let d = digest(token);
        if let Some((_, caller)) = self.tokens.iter().find(|(t, _)| *t == d) {
            return Ok(caller.clone());
        }
        self.user(token)
    }

    /// May this bearer read `/metrics`? A metrics token, an admin's, or
    /// none where callers without one are admins or scrapers.
    pub fn may_scrape(&self, bearer: Option<&str>) -> Result<(), ApiError> {
        let token = bearer.map(str::trim).filter(|t| !t.is_empty());
        match token {
            None if self.anonymous == Some(StaticRole::Metrics) => return Ok(()),
            Some(t) if self.scrapers.contains(&digest(t)) => return Ok(()),
            _ => {}
        }
        match self.identify(bearer)? {
            Caller::Admin(_) => Ok(()),
            _ => Err(ApiError::Forbidden("/metrics needs a metrics or an admin token".into())),
        }
    }

    /// The end user a JWT stands for.
    fn user(&self, token: &str) -> Result<Caller, ApiError> {
        match &self.users {
            Some((key, validation)) => match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) if !data.claims.sub.is_empty() => {
                    // A claim that is no language tag is ignored, not refused: the token is still theirs.
                    let lang = data.claims.lang.filter(|l| herald_core::lang::valid_tag(l));
                    Ok(Caller::User(data.claims.sub, lang))
                }
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

/// The bearer token of an `Authorization` header.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization?.strip_prefix("Bearer ")
}

impl Auth {
    /// The caller of an event stream: as any request's, or (browsers'
    /// `EventSource` sends no headers) an end user's token in
    /// `?access_token=`.
    pub fn identify_stream(&self, authorization: Option<&str>, query: Option<&str>) -> Result<Caller, ApiError> {
        let in_query = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")));
        match (bearer(authorization), in_query) {
            (None, Some(token)) if !token.is_empty() => self.user(token).map_err(|_| {
                ApiError::Unauthorized(
                    "`access_token` takes an end user's valid token, and only on event streams".into(),
                )
            }),
            (header, _) => self.identify(header),
        }
    }
}

/// The two routes browsers open as `EventSource`s.
pub fn is_stream(path: &str) -> bool {
    path == "/v1/me/notifications/stream"
        || path
            .strip_prefix("/v1/operations/")
            .is_some_and(|rest| rest.ends_with("/events") && rest.matches('/').count() == 1)
}

/// Admin endpoints.
pub fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Admin(_) => Ok(()),
        _ => Err(ApiError::Forbidden("this needs an admin token".into())),
    }
}

/// A service's token may act for the services it names; an admin's for any.
pub fn require_speaks_for(caller: &Caller, service: &str) -> Result<(), ApiError> {
    match caller {
        Caller::Admin(_) => Ok(()),
        Caller::Service(s) if s.speaks_for(service) => Ok(()),
        Caller::Service(s) => Err(ApiError::Forbidden(format!(
            "the token `{}` does not speak for the service `{service}` (see `services` of auth.tokens)",
            s.name
        ))),
        Caller::User(..) => Err(ApiError::Forbidden("this needs a service's token".into())),
    }
}

/// Only services and admins start operations and use admin endpoints.
pub fn require_service(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::User(..) => {
            Err(ApiError::Forbidden("end users reach this through the application, not directly".into()))
        }
        _ => Ok(()),
    }
}
