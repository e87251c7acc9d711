//! One request through to an instance. The request body is streamed
//! upstream and the answer streamed back; neither is ever held whole. A
//! request may be tried again on another instance only when that is safe —
//! an idempotent method, or an `Idempotency-Key` — and its body small
//! enough to be kept while it is sent, and only while the service's retry
//! budget lasts.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{
        Method, Uri, header,
        uri::{self, PathAndQuery},
    },
    response::Response,
};
use futures::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::{Client, Gateway, affinity, forward};
use crate::{
    api::problem::ApiError,
    registry::{Lease, Service, settings::Protocol},
};

/// How long an answer's headers may take when the service sets no `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

enum Outgoing {
    /// Kept whole: can be sent again.
    Kept(Bytes),
    /// Streamed once; `too_large` turns true if it passed the limit.
    Streamed(Option<Body>, Arc<AtomicBool>),
}

pub async fn forward(
    gw: &Gateway,
    svc: Arc<Service>,
    path: String,
    client: &Client,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let limit = gw.config.max_body_bytes;
    let length = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes")));
    }
    let safe = is_idempotent(&parts.method) || parts.headers.contains_key("idempotency-key");
    let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
    let small = !chunked && length.unwrap_or(0) <= gw.config.retry_buffer_bytes;
    let mut outgoing = if safe && small {
        let bytes = axum::body::to_bytes(body, gw.config.retry_buffer_bytes as usize)
            .await
            .map_err(|e| ApiError::BadRequest(format!("the request body could not be read: {e}")))?;
        Outgoing::Kept(bytes)
    } else {
        let too_large = Arc::new(AtomicBool::new(false));
        Outgoing::Streamed(Some(capped(body, limit, too_large.clone())), too_large)
    };
    let mut headers = forward::upstream(&parts.headers, Some(&client.peer), &gw.correlation);
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) else {
        return Err(ApiError::BadRequest("the path is not a valid URI".into()));
    };
    let timeout = svc.settings.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut tried: Vec<String> = Vec::new();
    loop {
        let mut lease = match svc.pick(&tried) {
            Ok(l) => l,
            Err(no) if tried.is_empty() => {
                return Err(ApiError::NoInstance {
                    service: svc.name.clone(),
                    retry_after: no.retry_after.map_or(1, |d| d.as_secs() + 1),
                });
            }
            // Tried every instance that could take it.
            Err(_) => return Err(ApiError::BadGateway(format!("no instance of {} could answer", svc.name))),
        };
        let body = match &mut outgoing {
            Outgoing::Kept(bytes) => Body::from(bytes.clone()),
            Outgoing::Streamed(body, _) => body.take().expect("a streamed body is sent once"),
        };
        let retryable = matches!(outgoing, Outgoing::Kept(_));
        let mut req = Request::new(body);
        *req.method_mut() = parts.method.clone();
        // Kept for another attempt only when there can be one.
        *req.headers_mut() = if retryable { headers.clone() } else { std::mem::take(&mut headers) };
        let answer = tokio::time::timeout(timeout, send(&svc, &lease, client, req, &path_and_query)).await;
        let failure = match answer {
            Ok(Ok(resp)) if !resp.status().is_server_error() || !retryable => {
                lease.record(!resp.status().is_server_error());
                return Ok(respond(resp, lease));
            }
            Ok(Ok(resp)) => {
                // A 5xx from this instance: another may do better.
                lease.record(false);
                Failure::Answered(resp)
            }
            Ok(Err(e)) => {
                lease.record(false);
                if let Outgoing::Streamed(_, too_large) = &outgoing
                    && too_large.load(Ordering::Relaxed)
                {
                    return Err(ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes")));
                }
                Failure::Unreachable(e.to_string())
            }
            Err(_) => {
                lease.record(false);
                Failure::TimedOut
            }
        };
        tried.push(lease.instance_id().to_string());
        if !(retryable && svc.allow_retry()) {
            return match failure {
                Failure::Answered(resp) => Ok(respond(resp, lease)),
                Failure::Unreachable(e) => {
                    tracing::debug!(service = %svc.name, error = %e, "an instance could not be reached");
                    Err(ApiError::BadGateway(format!("{} could not be reached", svc.name)))
                }
                Failure::TimedOut => Err(ApiError::GatewayTimeout(format!(
                    "{} did not answer within {}",
                    svc.name,
                    humantime::format_duration(timeout)
                ))),
            };
        }
    }
}

/// One attempt: over the client connection's own connection to the
/// instance when it may have one, else through the shared pool.
async fn send(
    svc: &Arc<Service>,
    lease: &Lease,
    client: &Client,
    mut req: Request,
    path_and_query: &PathAndQuery,
) -> Result<hyper::Response<Incoming>, affinity::Error> {
    let instance = lease.instance();
    if let (Some(origin), Protocol::Http1) = (&instance.origin, svc.settings.protocol) {
        *req.uri_mut() = if origin.prefix.is_empty() {
            let mut parts = uri::Parts::default();
            parts.path_and_query = Some(path_and_query.clone());
            Uri::from_parts(parts)?
        } else {
            format!("{}{path_and_query}", origin.prefix).parse()?
        };
        req.headers_mut().insert(header::HOST, origin.host.clone());
        match client.affinity.send(svc, instance, req).await {
            Ok(answer) => return answer,
            Err(back) => req = back,
        }
    }
    *req.uri_mut() = format!("{}{path_and_query}", lease.base()).parse()?;
    Ok(svc.proxy().request(req).await?)
}

enum Failure {
    Answered(hyper::Response<Incoming>),
    Unreachable(String),
    TimedOut,
}

fn is_idempotent(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}

/// The request body, failing once more than `limit` bytes went through.
fn capped(body: Body, limit: u64, too_large: Arc<AtomicBool>) -> Body {
    let mut seen = 0u64;
    let stream = TryStreamExt::map_err(body.into_data_stream(), std::io::Error::other).and_then(move |chunk| {
        seen += chunk.len() as u64;
        let over = seen > limit;
        if over {
            too_large.store(true, Ordering::Relaxed);
        }
        async move { if over { Err(std::io::Error::other("the body is too large")) } else { Ok(chunk) } }
    });
    Body::from_stream(stream)
}

/// The instance's answer, streamed back as it comes; the lease lives
/// until the last of it is sent.
fn respond(resp: hyper::Response<Incoming>, lease: Lease) -> Response {
    let (mut parts, body) = resp.into_parts();
    forward::strip_hop_by_hop(&mut parts.headers);
    let body = body.map_frame(move |frame| {
        let _held = &lease;
        frame
    });
    Response::from_parts(parts, Body::new(body))
}
