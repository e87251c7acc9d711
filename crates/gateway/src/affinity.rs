//! Connection affinity: a client connection keeps its own HTTP/1.1
//! connections to the instances it uses, driven inside the client
//! connection's own task.
//!
//! Why not hyper's shared pool for everything: a pooled connection runs in
//! a task of its own, so each proxied request crossed tasks (and often
//! threads) on the way out and back, and checked a connection out of a
//! locked pool. Here the request, the upstream connection and the answer
//! all move in one task. A client connection's requests come one at a time
//! (HTTP/1.1), so one connection per instance is all it needs.
//!
//! A service's affine connections are capped ([`MAX_PER_SERVICE`]); past
//! that, and for h2c services, requests use the shared pool.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, atomic::Ordering},
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use futures::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use hyper::{Request, Response, body::Incoming, client::conn::http1};
use hyper_util::rt::TokioIo;

use crate::registry::{Instance, Origin, Service};

/// Affine upstream connections per service, across all client connections.
const MAX_PER_SERVICE: usize = 1024;
/// Instances one client connection keeps a connection to.
pub const PER_CLIENT: usize = 4;
/// Connect timeout when the service sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One client connection's upstream connections.
#[derive(Default)]
pub struct Affinity {
    held: Mutex<Vec<(Arc<Instance>, http1::SendRequest<Body>)>>,
    /// Opened and not yet picked up by [`Driven`].
    opened: Mutex<Vec<BoxFuture<'static, ()>>>,
}

impl Affinity {
    /// Sends `req` (origin-form URI) to `instance` over this client
    /// connection's own connection to it. `Err(req)` when it has none and
    /// may not open one: the caller uses the shared pool.
    pub async fn send(
        &self,
        svc: &Arc<Service>,
        instance: &Arc<Instance>,
        mut req: Request<Body>,
    ) -> Result<Result<Response<Incoming>, Error>, Request<Body>> {
        if let Some(mut sender) = self.take(instance)
            && sender.ready().await.is_ok()
        {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.keep(instance, sender);
                    return Ok(Ok(resp));
                }
                // The instance closed the idle connection before the
                // request went out: it is safe to send on a new one.
                Err(mut e) => match e.take_message() {
                    Some(back) => req = back,
                    None => return Ok(Err(e.into_error().into())),
                },
            }
        }
        let Some(origin) = &instance.origin else { return Err(req) };
        let Some(slot) = Slot::take(svc) else { return Err(req) };
        let tcp = match connect(svc, origin).await {
            Ok(tcp) => tcp,
            Err(e) => return Ok(Err(e.into())),
        };
        let (mut sender, conn) = match http1::handshake(TokioIo::new(tcp)).await {
            Ok(pair) => pair,
            Err(e) => return Ok(Err(e.into())),
        };
        self.opened.lock().expect("opened").push(Box::pin(async move {
            let _ = conn.await;
            drop(slot);
        }));
        let answer = sender.send_request(req).await;
        if answer.is_ok() {
            self.keep(instance, sender);
        }
        Ok(answer.map_err(Into::into))
    }

    fn take(&self, instance: &Arc<Instance>) -> Option<http1::SendRequest<Body>> {
        let mut held = self.held.lock().expect("held");
        held.retain(|(_, s)| !s.is_closed());
        let at = held.iter().position(|(i, _)| Arc::ptr_eq(i, instance))?;
        Some(held.swap_remove(at).1)
    }

    fn keep(&self, instance: &Arc<Instance>, sender: http1::SendRequest<Body>) {
        let mut held = self.held.lock().expect("held");
        if held.len() >= PER_CLIENT {
            held.remove(0); // the least recently used; its connection closes
        }
        held.push((instance.clone(), sender));
    }
}

/// A new connection to an instance, within the service's connect timeout.
pub async fn connect(svc: &Service, origin: &Origin) -> std::io::Result<tokio::net::TcpStream> {
    let connect = tokio::net::TcpStream::connect(origin.authority.as_str());
    let tcp = tokio::time::timeout(svc.settings.connect_timeout.unwrap_or(CONNECT_TIMEOUT), connect)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"))??;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// One of a service's affine connections; given back when it closes.
pub struct Slot(Arc<Service>);

impl Slot {
    /// `None` when the service has all it may.
    pub fn take(svc: &Arc<Service>) -> Option<Slot> {
        if svc.affine.fetch_add(1, Ordering::Relaxed) >= MAX_PER_SERVICE {
            svc.affine.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Slot(svc.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.affine.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A client connection's future, driving its upstream connections beside
/// it. When the client connection ends, so do they.
pub struct Driven<F> {
    conn: Pin<Box<F>>,
    affinity: Arc<Affinity>,
    upstream: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl<F: Future> Driven<F> {
    pub fn new(conn: F, affinity: Arc<Affinity>) -> Self {
        Driven { conn: Box::pin(conn), affinity, upstream: FuturesUnordered::new() }
    }

    /// The client connection itself (to shut it down gracefully).
    pub fn inner(&mut self) -> Pin<&mut F> {
        self.conn.as_mut()
    }
}

impl<F: Future> Future for Driven<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        loop {
            // Upstream first: an answer that arrived is then ready for the
            // client connection in the same turn.
            while let Poll::Ready(Some(())) = this.upstream.poll_next_unpin(cx) {}
            if let Poll::Ready(out) = this.conn.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            let opened = std::mem::take(&mut *this.affinity.opened.lock().expect("opened"));
            if opened.is_empty() {
                return Poll::Pending;
            }
            this.upstream.extend(opened);
        }
    }
}
