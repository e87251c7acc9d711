//! Who is calling, as an extractor: the bearer token in `Authorization`,
//! or on the two event streams an end user's `?access_token=`.

use axum::{extract::FromRequestParts, http::request::Parts};
use herald_http::auth::{Caller, bearer, is_stream};

use crate::state::AppState;
use herald_http::problem::ApiError;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let authorization = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if is_stream(parts.uri.path()) {
            app.auth.identify_stream(authorization, parts.uri.query())
        } else {
            app.auth.identify(bearer(authorization))
        }
    }
}
