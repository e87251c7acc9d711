//! One request through to an instance. The request body is streamed
//! upstream and the answer streamed back; neither is ever held whole. A
//! request may be tried again on another instance only when that is safe —
//! an idempotent method, or an `Idempotency-Key` — and its body small
//! enough to be kept while it is sent, and only while the service's retry
//! budget lasts.

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
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

use super::{Client, Gateway, affinity, attempts::Attempts, forward};
use herald_http::problem::ApiError;

use crate::registry::{Lease, Service, settings::Protocol};

enum Outgoing {
    /// Kept whole: can be sent again.
    Kept(Bytes),
    /// Streamed once; the fault says if the client's side of it failed.
    Streamed(Option<Body>, Arc<ClientFault>),
}

/// How a streamed body failed on the client's side, if it did: the
/// client's fault, answered as such, not the instance's (a 502).
#[derive(Default)]
struct ClientFault(AtomicU8);

impl ClientFault {
    const TOO_LARGE: u8 = 1;
    const UNREADABLE: u8 = 2;

    fn set(&self, fault: u8) {
        let _ = self.0.compare_exchange(0, fault, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn error(&self, limit: u64) -> Option<ApiError> {
        match self.0.load(Ordering::Relaxed) {
            Self::TOO_LARGE => Some(ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes"))),
            Self::UNREADABLE => Some(ApiError::BadRequest(
                "the request body could not be read: its framing is broken, or it stopped".into(),
            )),
            _ => None,
        }
    }
}

pub async fn forward(
    gw: &Gateway,
    svc: Arc<Service>,
    path: String,
    client: &Client,
    req: Request,
    caller: Option<&herald_http::auth::Caller>,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let limit = gw.config.max_body_bytes;
    let length = herald_http::conn::announced_length(&parts.headers, limit)?;
    let safe = is_idempotent(&parts.method) || parts.headers.contains_key(forward::IDEMPOTENCY_KEY);
    let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
    let small = !chunked && length.unwrap_or(0) <= gw.config.retry_buffer_bytes;
    let mut outgoing = if safe && small {
        let bytes = axum::body::to_bytes(body, gw.config.retry_buffer_bytes as usize)
            .await
            .map_err(|e| ApiError::BadRequest(format!("the request body could not be read: {e}")))?;
        Outgoing::Kept(bytes)
    } else {
        let fault = Arc::new(ClientFault::default());
        Outgoing::Streamed(Some(capped(body, limit, fault.clone())), fault)
    };
    let caller = caller.map(super::access::caller_header);
    let mut headers = forward::upstream(&parts.headers, Some(&client.peer), &gw.correlation, caller.as_deref());
    if let Some(span) = parts.extensions.get::<crate::traced::GatewaySpan>() {
        span.carry(&mut headers);
    }
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) else {
        return Err(ApiError::BadRequest("the path is not a valid URI".into()));
    };
    let retryable = matches!(outgoing, Outgoing::Kept(_));
    let mut attempts = Attempts::new(svc.clone(), retryable);
    loop {
        let lease = attempts.next().await?;
        let body = match &mut outgoing {
            Outgoing::Kept(bytes) => Body::from(bytes.clone()),
            Outgoing::Streamed(body, _) => body.take().expect("a streamed body is sent once"),
        };
        let mut req = Request::new(body);
        *req.method_mut() = parts.method.clone();
        // Kept for another attempt only when there can be one.
        *req.headers_mut() = if retryable { headers.clone() } else { std::mem::take(&mut headers) };
        let outcome =
            tokio::time::timeout(attempts.timeout(), send(&svc, &lease, client, req, &path_and_query)).await.ok();
        if let (Some(Err(_)), Outgoing::Streamed(_, fault)) = (&outcome, &outgoing)
            && let Some(e) = fault.error(limit)
        {
            drop(lease);
            return Err(e);
        }
        if let Some((resp, lease)) = attempts.judge(lease, outcome)? {
            return Ok(respond(resp, lease));
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

pub(super) fn is_idempotent(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}

/// The request body, failing once more than `limit` bytes went through;
/// `fault` says which way it failed on the client's side.
fn capped(body: Body, limit: u64, fault: Arc<ClientFault>) -> Body {
    let mut seen = 0u64;
    let unreadable = fault.clone();
    let read = TryStreamExt::map_err(body.into_data_stream(), move |e| {
        unreadable.set(ClientFault::UNREADABLE);
        std::io::Error::other(e)
    });
    let stream = read.and_then(move |chunk| {
        seen += chunk.len() as u64;
        let over = seen > limit;
        if over {
            fault.set(ClientFault::TOO_LARGE);
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
