//! Actions on a resource, written as a custom method after its name
//! (`/v1/operations/{id}:cancel`, as Google's AIP-136): one reading of
//! `{name}:{verb}` for every route that takes one.

use herald_http::problem::ApiError;

/// The name and the verb of `target`, the last segment of `path`'s
/// resource; 404 naming the path when it has no verb.
pub fn split<'a>(path: &str, target: &'a str) -> Result<(&'a str, &'a str), ApiError> {
    target.rsplit_once(':').ok_or_else(|| ApiError::NotFound(format!("no action at {path}/{target}")))
}

/// The name of `target` when its verb is `verb`; 404 otherwise.
pub fn only<'a>(path: &str, target: &'a str, verb: &str) -> Result<&'a str, ApiError> {
    match split(path, target)? {
        (name, v) if v == verb => Ok(name),
        _ => Err(ApiError::NotFound(format!("no action at {path}/{target}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verb_follows_the_last_colon() {
        assert_eq!(split("/v1/x", "a:b:pull").unwrap(), ("a:b", "pull"));
        assert!(split("/v1/x", "plain").is_err());
        assert_eq!(only("/v1/x", "op_1:cancel", "cancel").unwrap(), "op_1");
        assert!(only("/v1/x", "op_1:redrive", "cancel").is_err());
    }
}
