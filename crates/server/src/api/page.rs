//! The demo page (`GET /`), the operator page (`GET /operator`), and their
//! scripts and styles (`GET /ui/{file}`), embedded in the binary. They are
//! separate files so the pages' Content-Security-Policy
//! ([`super::hardening`]) can forbid inline scripts and styles.

use axum::{
    extract::Path,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use herald_http::problem::ApiError;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file under `/ui/`: its name, type and text. A name not here is a
/// 404: nothing is read from the disk, so no path can climb out.
const ASSETS: &[(&str, &str, &str)] = &[
    // The demo page's modules; app.js imports the others.
    ("app.js", JS, include_str!("../ui/app.js")),
    ("decide.js", JS, include_str!("../ui/decide.js")),
    ("dom.js", JS, include_str!("../ui/dom.js")),
    ("inbox.js", JS, include_str!("../ui/inbox.js")),
    ("mail.js", JS, include_str!("../ui/mail.js")),
    ("order.js", JS, include_str!("../ui/order.js")),
    ("recent.js", JS, include_str!("../ui/recent.js")),
    ("view.js", JS, include_str!("../ui/view.js")),
    ("words.js", JS, include_str!("../ui/words.js")),
    // The package's built file, not a copy: the page uses the client any
    // front end would (`dist/` is committed, so building herald needs no node).
    ("herald.js", JS, include_str!("../../../../clients/js/dist/herald.js")),
    ("app.css", CSS, include_str!("../ui/app.css")),
    ("operator.js", JS, include_str!("../ui/operator.js")),
    ("operator.css", CSS, include_str!("../ui/operator.css")),
];

pub async fn index() -> Response {
    file("text/html; charset=utf-8", include_str!("../ui/index.html"))
}

/// The operator page: its data needs an admin token (or no `[auth]`).
pub async fn operator() -> Response {
    file("text/html; charset=utf-8", include_str!("../ui/operator.html"))
}

/// A script or style of the pages.
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, kind, text) =
        ASSETS.iter().find(|(n, ..)| *n == name).ok_or_else(|| ApiError::NotFound("no such file".into()))?;
    Ok(file(kind, text))
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
