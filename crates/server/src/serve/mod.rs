//! The listener loop.
//!
//! Written out (rather than `axum::serve`) to choose what each connection
//! costs: herald holds thousands of idle or streaming connections (SSE
//! watchers). The protocol-sniffing auto builder plus its buffers came to
//! ~40 KiB per idle connection; hyper's HTTP/1.1 alone to ~16 KiB; a
//! timeline stream served by [`sse`] to a few. Each connection's first
//! request is read here: a timeline stream goes to [`sse`], a gateway
//! request to the gateway's express lane while it takes the requests
//! ([`gateway::express`]); anything else, and what the lane leaves, to
//! hyper with the bytes not yet used handed back ([`rewind`]). Where herald lets callers in without a token,
//! each of these paths first puts the request to the [`crate::guard`].
//!
//! Every path closes what would otherwise hold a place forever: idle
//! connections (`herald_http::conn::idle`), heads that come too slowly, bodies that stop,
//! and clients that stop reading. Heads are capped at [`MAX_HEAD`], and
//! the `Host` rules hold (`herald_http::conn::host`).
//!
//! With `[tls]`, each connection's handshake comes first ([`tls`]); its
//! requests then take the same paths but the express lane, which reads
//! and writes the TCP socket itself: over TLS the gateway's requests go to
//! hyper.
//!
//! - [`rewind`] — a socket whose first bytes were already read.
//! - [`sse`] — timeline streams written straight to the socket.
//! - [`tls`] — the listener's certificate, reloaded on SIGHUP.

mod rewind;
mod sse;
mod tls;

pub use tls::Tls;

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use axum::{body::Body, http::Version, response::IntoResponse};
use bytes::BytesMut;
use futures::{FutureExt, future::Either};
use herald_http::conn::{BODY_TIMEOUT, HEAD_TIMEOUT, MAX_HEAD, WRITE_TIMEOUT, host, idle::Idle};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use crate::{
    api,
    gateway::{
        self,
        affinity::{Affinity, Driven},
    },
    guard::Seen,
    state::AppState,
};

/// What a connection's requests come over: TCP, or TLS on it.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Do its requests come over TLS (`https`)?
    const SECURE: bool;
    /// The TCP socket, when its bytes are the requests themselves (the
    /// express lane reads and writes it directly).
    fn plain(&mut self) -> Option<&mut TcpStream>;
}

impl Socket for TcpStream {
    const SECURE: bool = false;
    fn plain(&mut self) -> Option<&mut TcpStream> {
        Some(self)
    }
}

impl Socket for tokio_rustls::server::TlsStream<TcpStream> {
    const SECURE: bool = true;
    fn plain(&mut self) -> Option<&mut TcpStream> {
        None
    }
}

/// Serves `router` (over `tls` when given) until `shutdown` resolves, then
/// waits for open connections to finish (streams end when the engine stops).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    app: AppState,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
) {
    let places = app.limits.max_connections.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let open = Arc::new(Semaphore::new(places));
    let idle = Idle::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // At the connection limit, idle connections make room for this
        // client; until they have, the next ones wait in the backlog.
        let permit = match open.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                idle.full();
                let p = tokio::select! {
                    p = open.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                    _ = &mut shutdown => break,
                };
                idle.room();
                p
            }
        };
        let _ = tcp.set_nodelay(true);
        let (router, app, idle, tls) = (router.clone(), app.clone(), idle.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => connection(tcp, peer, router, app, idle).await,
                Some(tls) => {
                    if let Some(tls) = handshake(&tls, tcp, &app, &idle).await {
                        connection(tls, peer, router, app, idle).await
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a place until it ends.
    let _ = open.acquire_many(places as u32).await;
}

/// The TLS handshake, once the client has begun it: a client that has not
/// holds its place only while idle connections may, and one that is slow
/// to finish it is let go as a slow head is.
async fn handshake(
    tls: &Tls,
    tcp: TcpStream,
    app: &AppState,
    idle: &Idle,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let stopping = app.engine.stopping();
    idle.wait(&stopping, tcp.readable()).await?.ok()?;
    tokio::select! {
        done = tokio::time::timeout(HEAD_TIMEOUT, tls.accept(tcp)) => done.ok()?.ok(),
        _ = stopping.cancelled() => None,
    }
}

async fn connection<S: Socket>(
    mut tcp: S,
    peer: std::net::SocketAddr,
    router: axum::Router,
    app: AppState,
    idle: Idle,
) {
    let stopping = app.engine.stopping();
    // A client that connected but has not asked anything holds its place
    // only while idle connections may.
    let mut buf = BytesMut::with_capacity(1024);
    if !matches!(idle.wait(&stopping, tcp.read_buf(&mut buf)).await, Some(Ok(n)) if n > 0) {
        return;
    }
    let head = tokio::select! {
        head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut tcp, buf)) => head,
        _ = stopping.cancelled() => return,
    };
    let Ok(Ok((head, first))) = head else {
        return;
    };
    if let First::Stream(req) = first {
        return sse::serve(tcp, app, req).await;
    }
    let affinity = Arc::new(Affinity::default());
    let client = Arc::new(gateway::Client::new(peer, S::SECURE, affinity.clone()));
    let mut head = head;
    if app.gateway.config.express
        && matches!(first, First::Gateway)
        && let Some(plain) = tcp.plain()
        && let gateway::express::End::Closed =
            gateway::express::serve(&app.gateway, &client, &idle, plain, &mut head).await
    {
        return;
    }
    let mut io = tokio_io_timeout::TimeoutStream::new(tcp);
    io.set_write_timeout(Some(WRITE_TIMEOUT));
    let io = TokioIo::new(rewind::Rewind::new(head.freeze(), Box::pin(io)));
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let req = req.map(|body| Body::new(TimeoutBody::new(BODY_TIMEOUT, body)));
        // Before anything else, for every path: the Host rules, and without
        // credentials the guard.
        let refused = host::check(req.version(), req.headers()).err().or_else(|| {
            app.guard.active().then(|| app.guard.admit(Seen::of(req.method(), req.headers())).err()).flatten()
        });
        if let Some(e) = refused {
            let refused = api::hardening::headers(e.into_response());
            return Either::Left(Either::Left(refused.map(Ok::<_, Infallible>)));
        }
        if gateway::owns(req.uri().path()) {
            Either::Left(Either::Right(api::gateway::handle(app.clone(), client.clone(), req).map(Ok::<_, Infallible>)))
        } else {
            Either::Right(router.clone().oneshot(req))
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(io, service);
    let mut conn = Driven::new(conn, affinity);
    // Ends when the connection does; when herald stops or the server is
    // full, it ends once the request in progress (if any) is answered.
    let mut closing = false;
    loop {
        tokio::select! {
            _ = &mut conn => return,
            _ = stopping.cancelled(), if !closing => closing = true,
            _ = idle.pressed(), if !closing => closing = true,
        }
        conn.inner().graceful_shutdown();
    }
}

/// What a connection's first request is, and so who serves the connection.
enum First {
    /// A timeline stream: [`sse`].
    Stream(sse::Request),
    /// Under `/gw/`: the gateway's express lane, while it takes the requests.
    Gateway,
    /// Anything else (or a head too large or broken to read): hyper.
    Other,
}

/// Reads until the first request head, begun in `buf`, is complete (or too
/// large, or broken: hyper then gives the answer). Answers the bytes read,
/// and what the request is.
async fn read_head(tcp: &mut impl Socket, mut buf: BytesMut) -> std::io::Result<(BytesMut, First)> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                // A request that breaks the `Host` rules is hyper's to refuse.
                let hosts = req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("host")).map(|h| h.value);
                let version = if req.version == Some(1) { Version::HTTP_11 } else { Version::HTTP_10 };
                let first = match host::valid(version, hosts).then(|| sse::recognise(&req)).flatten() {
                    Some(stream) => First::Stream(stream),
                    None if req.path.is_some_and(gateway::owns) => First::Gateway,
                    None => First::Other,
                };
                return Ok((buf, first));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return Ok((buf, First::Other)),
        }
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}
