//! Headers every answer of herald's own carries, so a browser treats it
//! safely: no sniffing a JSON body into a script or page, no framing (a
//! page of another site cannot lay herald's buttons under its own), and a
//! Content-Security-Policy allowing only herald's own scripts, styles and
//! connections (the demo page's script and styles are same-origin files:
//! nothing inline runs). Answers the gateway relays keep their services'
//! headers.

use axum::{
    http::{HeaderMap, HeaderName, HeaderValue, header},
    response::Response,
};

/// `data:` images: the page's empty favicon.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// (name, value) of each header; a route that sets its own keeps it.
pub const HEADERS: [(HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
];

/// Adds [`HEADERS`] to an answer (a layer over every route, merged ones included).
pub async fn headers(mut resp: Response) -> Response {
    add(resp.headers_mut());
    resp
}

pub fn add(headers: &mut HeaderMap) {
    for (name, value) in HEADERS {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
}
