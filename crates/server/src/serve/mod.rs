//! The listener loop.
//!
//! Written out (rather than `axum::serve`) to choose what each connection
//! costs: herald holds thousands of idle or streaming connections (SSE
//! watchers). The protocol-sniffing auto builder plus its buffers came to
//! ~40 KiB per idle connection; hyper's HTTP/1.1 alone to ~16 KiB; a
//! timeline stream served by [`sse`] to a few. Each connection's first
//! request is read here: a timeline stream goes to [`sse`], anything else
//! to the gateway's express lane while it takes the requests
//! ([`gateway::express`]), then to hyper with the bytes not yet used
//! handed back ([`rewind`]). Where herald lets callers in without a token,
//! each of these paths first puts the request to the [`crate::guard`].
//!
//! - [`rewind`] — a socket whose first bytes were already read.
//! - [`sse`] — timeline streams written straight to the socket.

mod rewind;
mod sse;

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use axum::{body::Body, response::IntoResponse};
use bytes::BytesMut;
use futures::{FutureExt, future::Either};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::{GracefulShutdown, Watcher},
};
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tower::ServiceExt;

use crate::{
    api::{self, AppState},
    gateway::{
        self,
        affinity::{Affinity, Driven},
    },
    guard::Seen,
};

/// How long a client may take to send its request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head read before routing; hyper answers a larger one.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// Serves `router` until `shutdown` resolves, then waits for open
/// connections to finish (streams end when the engine stops).
pub async fn serve(listener: TcpListener, router: axum::Router, app: AppState, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let open = Arc::new(Semaphore::new(app.limits.max_connections.max(1)));
    loop {
        // At the connection limit, stop accepting: clients wait in the backlog.
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
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
        let _ = tcp.set_nodelay(true);
        let conn = connection(tcp, peer, router.clone(), app.clone(), graceful.watcher());
        tokio::spawn(async move {
            conn.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn connection(
    mut tcp: TcpStream,
    peer: std::net::SocketAddr,
    router: axum::Router,
    app: AppState,
    graceful: Watcher,
) {
    // A client that connected but has not asked anything must not hold up a
    // shutdown (its watcher is alive until this returns).
    let stopping = app.engine.stopping();
    let head = tokio::select! {
        head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut tcp)) => head,
        _ = stopping.cancelled() => return,
    };
    let Ok(Ok((head, stream))) = head else {
        return;
    };
    if let Some(req) = stream {
        return sse::serve(tcp, app, req).await;
    }
    let affinity = Arc::new(Affinity::default());
    let client = Arc::new(gateway::Client::new(peer, affinity.clone()));
    let mut head = head;
    if app.gateway.config.express
        && let gateway::express::End::Closed = gateway::express::serve(&app, &client, &mut tcp, &mut head).await
    {
        return;
    }
    let io = TokioIo::new(rewind::Rewind::new(head.freeze(), tcp));
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let req = req.map(Body::new);
        // Before anything else, for every path: the gateway's and the API's.
        if app.guard.active()
            && let Err(e) = app.guard.admit(Seen::of(req.method(), req.headers()))
        {
            let refused = api::hardening::headers(e.into_response());
            return Either::Left(Either::Left(refused.map(Ok::<_, Infallible>)));
        }
        if gateway::owns(req.uri().path()) {
            Either::Left(Either::Right(gateway::handle(app.clone(), client.clone(), req).map(Ok::<_, Infallible>)))
        } else {
            Either::Right(router.clone().oneshot(req))
        }
    });
    let conn =
        http1::Builder::new().timer(TokioTimer::new()).header_read_timeout(HEAD_TIMEOUT).serve_connection(io, service);
    let _ = Driven::new(graceful.watch(conn), affinity).await;
}

/// Reads until the first request head is complete (or too large, or
/// broken: hyper then gives the answer). Answers the bytes read, and the
/// request if it is a timeline stream.
async fn read_head(tcp: &mut TcpStream) -> std::io::Result<(BytesMut, Option<sse::Request>)> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let stream = sse::recognise(&req);
                return Ok((buf, stream));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            _ => return Ok((buf, None)),
        }
    }
}
