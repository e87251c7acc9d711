//! The demo page (`GET /`), the operator page (`GET /operator`), and their
//! scripts and styles, embedded in the binary. They are separate files so the page's Content-Security-Policy
//! ([`super::hardening`]) can forbid inline scripts and styles.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

pub async fn index() -> Response {
    file("text/html; charset=utf-8", include_str!("../ui/index.html"))
}

pub async fn script() -> Response {
    file("text/javascript; charset=utf-8", include_str!("../ui/app.js"))
}

pub async fn styles() -> Response {
    file("text/css; charset=utf-8", include_str!("../ui/app.css"))
}

/// The operator page: its data needs an admin token (or no `[auth]`).
pub async fn operator() -> Response {
    file("text/html; charset=utf-8", include_str!("../ui/operator.html"))
}

pub async fn operator_script() -> Response {
    file("text/javascript; charset=utf-8", include_str!("../ui/operator.js"))
}

pub async fn operator_styles() -> Response {
    file("text/css; charset=utf-8", include_str!("../ui/operator.css"))
}

/// no-cache: a browser revalidates, so a new herald's page is never mixed
/// with an old script.
fn file(content_type: &'static str, text: &'static str) -> Response {
    let mut r = text.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
