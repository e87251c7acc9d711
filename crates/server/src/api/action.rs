//! Actions on a resource, written as a custom method after its name
//! (`/v1/operations/{id}:cancel`, as Google's AIP-136): one reading of
//! `{name}:{verb}` for every route that takes one.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use herald_http::problem::ApiError;

/// An action is a resource of its own, which only POST takes. Its path
/// reaches the route of the resource it acts on (`/v1/operations/{id}`
/// for `/v1/operations/{id}:cancel`), whose other methods are not the
/// action's: so any other method is answered here, before the route's
/// methods are looked at. A `:` in the raw path is the action's; one in a
/// name comes encoded.
pub async fn post_only(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let action = path.starts_with("/v1/") && is_action(path);
    if action && req.method() != Method::POST {
        return not_allowed("POST");
    }
    next.run(req).await
}

/// For a resource whose POST takes only its actions
/// (`/v1/operations/{id}`, whose POST is `{id}:cancel`): on the resource
/// itself POST is no method, and `allow` (its own methods) is what a 405
/// names, rather than the route's methods, which include the actions' POST.
pub async fn resource(State(allow): State<&'static str>, req: Request, next: Next) -> Response {
    if is_action(req.uri().path()) {
        return next.run(req).await;
    }
    if req.method() == Method::POST {
        return not_allowed(allow);
    }
    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    resp
}

/// Whether the last segment of a raw path holds a `:verb`.
fn is_action(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|last| last.contains(':'))
}

/// 405, saying which methods the resource takes.
pub fn not_allowed(allow: &'static str) -> Response {
    let mut resp = ApiError::MethodNotAllowed.into_response();
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

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
