//! Who may call a service through the gateway, and which of its paths.
//!
//! A service says who may call it (`gateway = "off" | "public" | "user" |
//! "service" | "admin"`, `service` unless said), and path prefixes may say
//! otherwise (`gateway_paths`). The paths herald's own steps and
//! compensations call stay out of reach unless a prefix names them: they
//! are herald's to call, signed, not a client's.
//!
//! A path is checked as the instance will read it. herald refuses, rather
//! than normalizes, a path with dot segments (`.`, `..`, also encoded),
//! empty segments, `;`, backslashes or encoded slashes: a client that sends one
//! means to be read two ways, and refusing means the path checked is the
//! path sent. Other percent-escapes are decoded for the check only, so
//! `/ch%61rge` is `/charge`.

use std::{borrow::Cow, collections::BTreeMap};

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use herald_http::{auth::Caller, problem::ApiError};

/// Who may call through the gateway, from none to the fewest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Nobody: not served through the gateway.
    Off,
    /// Anyone, with or without a token; the request goes on as it came.
    Public,
    /// An end user's valid token (or a service's, or an admin's).
    User,
    /// A service's token or an admin's.
    #[default]
    Service,
    /// An admin's token.
    Admin,
}

/// A service's access, by path prefix.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    default: Access,
    /// Longest prefix first.
    paths: Vec<(String, Access)>,
}

impl Rules {
    pub fn parse(default: Access, paths: &BTreeMap<String, Access>) -> Result<Rules, String> {
        let mut rules = Vec::new();
        for (prefix, access) in paths {
            if !prefix.starts_with('/') || checked(prefix).is_err() || prefix.contains('?') {
                return Err(format!(
                    "`{prefix}` is not a path prefix: it starts with `/` and has no `.` or `..` segments"
                ));
            }
            rules.push((prefix.trim_end_matches('/').to_string(), *access));
        }
        rules.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(Rules { default, paths: rules })
    }

    /// The access for a checked path, and how long a prefix gave it (0:
    /// the service's own).
    fn find(&self, path: &str) -> (Access, usize) {
        self.paths.iter().find(|(p, _)| under(path, p)).map_or((self.default, 0), |(p, a)| (*a, p.len().max(1)))
    }
}

/// Is `path` `prefix` or below it, segment by segment?
fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty() || path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The path as it is checked (`raw` without its query), or why it is refused.
pub fn checked(raw: &str) -> Result<Cow<'_, str>, ApiError> {
    let path = raw.split('?').next().unwrap_or(raw);
    let bad = |why: &str| Err(ApiError::BadRequest(format!("the path {why}: herald does not pass it on")));
    let encoded_slash = path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && (w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f') || w[1] == b'5' && w[2].eq_ignore_ascii_case(&b'c'))
    });
    if path.contains('\\') || encoded_slash {
        return bad("has a backslash or an encoded slash");
    }
    if path.contains('#') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return bad("has characters a path may not have");
    }
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    if decoded.split('/').any(|segment| segment == "." || segment == "..") {
        return bad("has a `.` or `..` segment");
    }
    if decoded.contains("//") {
        return bad("has an empty segment (`//`)");
    }
    // Some servers cut `;params` off a segment: `/charge;x` would be `/charge` to them.
    if decoded.contains(';') {
        return bad("has a `;`");
    }
    Ok(decoded)
}

/// Who may call `path` (after `/gw/{service}`, as [`checked`] gives it) of a
/// service with these rules, whose steps call it at `called`: its access,
/// or the refusal.
pub fn decide<'a>(rules: &Rules, called: impl IntoIterator<Item = &'a String>, path: &str) -> Result<Access, ApiError> {
    let (access, by) = rules.find(path);
    let hidden = || called.into_iter().any(|c| under(path, c.trim_end_matches('/')) && by < c.len());
    if access == Access::Off || hidden() {
        return Err(ApiError::NotFound("nothing is served at this path through the gateway".into()));
    }
    Ok(access)
}

/// Does `caller` meet `access`? The refusal is 403: they are known.
pub fn allows(access: Access, caller: &Caller) -> Result<(), ApiError> {
    let ok = match access {
        Access::Off => false,
        Access::Public | Access::User => true,
        Access::Service => !matches!(caller, Caller::User(..)),
        Access::Admin => matches!(caller, Caller::Admin(_)),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("this path of the service is for callers with {} access", access.name())))
    }
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Off => "no",
            Access::Public => "public",
            Access::User => "user",
            Access::Service => "service",
            Access::Admin => "admin",
        }
    }
}

/// `Herald-Caller` as the gateway sends it upstream: `user:alice`,
/// `service:shop` or `admin:ops`, the name percent-encoded. Clients'
/// `Herald-*` headers never pass, so this one is herald's.
pub fn caller_header(caller: &Caller) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let (kind, name) = match caller {
        Caller::User(sub, _) => ("user", sub.as_str()),
        Caller::Service(s) => ("service", s.name.as_str()),
        Caller::Admin(name) => ("admin", name.as_str()),
    };
    format!("{kind}:{}", utf8_percent_encode(name, NON_ALPHANUMERIC))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`decide`] for a path as a client sends it.
    fn decide_raw(rules: &Rules, called: &[String], raw: &str) -> Result<Access, ApiError> {
        decide(rules, called, &checked(raw)?)
    }

    fn rules(default: Access, paths: &[(&str, Access)]) -> Rules {
        Rules::parse(default, &paths.iter().map(|(p, a)| (p.to_string(), *a)).collect()).unwrap()
    }

    #[test]
    fn the_longest_prefix_decides_segment_by_segment() {
        let r = rules(Access::Service, &[("/catalog", Access::Public), ("/catalog/admin", Access::Admin)]);
        let at = |p| decide_raw(&r, &[], p).ok();
        assert_eq!(at("/catalog"), Some(Access::Public));
        assert_eq!(at("/catalog/shoes?size=9"), Some(Access::Public));
        assert_eq!(at("/catalog/admin/x"), Some(Access::Admin));
        assert_eq!(at("/catalogue"), Some(Access::Service), "a prefix ends at a segment");
        assert_eq!(at("/orders"), Some(Access::Service));
    }

    #[test]
    fn step_paths_are_hidden_unless_a_prefix_names_them() {
        let called = ["/charge".to_string(), "/refund".to_string()];
        let open = rules(Access::Public, &[]);
        for p in ["/charge", "/charge/", "/charge/x?y=1", "/ch%61rge", "/refund"] {
            assert!(decide_raw(&open, &called, p).is_err(), "{p} is reachable");
        }
        assert!(decide_raw(&open, &called, "/charges").is_ok());
        let named = rules(Access::Public, &[("/charge", Access::Service)]);
        assert_eq!(decide_raw(&named, &called, "/charge").ok(), Some(Access::Service));
        assert!(decide_raw(&named, &called, "/refund").is_err(), "only the path named");
        let root = rules(Access::Off, &[("/", Access::Public)]);
        assert!(decide_raw(&root, &called, "/charge").is_err(), "`/` names no step path");
    }

    #[test]
    fn paths_read_two_ways_are_refused() {
        for p in [
            "/x/../v1",
            "/..",
            "/%2e%2e/v1",
            "/.%2E/x",
            "/./x",
            "/a%2fb",
            "/a%5Cb",
            "/a\\b",
            "//x",
            "/a//b",
            "/a/%2F",
            "/charge;x",
        ] {
            assert!(checked(p).is_err(), "{p} passed");
        }
        for p in ["/", "/a", "/a/", "/a.b/..c/...", "/caf%C3%A9", "/a?b=../c"] {
            assert!(checked(p).is_ok(), "{p} refused");
        }
    }

    #[test]
    fn off_is_off_everywhere_and_levels_admit_stronger_callers() {
        assert!(decide_raw(&rules(Access::Off, &[]), &[], "/").is_err());
        let user = Caller::User("alice".into(), None);
        let admin = Caller::Admin("ops".into());
        assert!(allows(Access::User, &user).is_ok());
        assert!(allows(Access::Service, &user).is_err());
        assert!(allows(Access::Service, &admin).is_ok());
        assert!(allows(Access::Admin, &user).is_err());
        assert_eq!(caller_header(&Caller::User("a b\r\n".into(), None)), "user:a%20b%0D%0A");
    }
}
