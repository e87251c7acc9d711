//! The gateway workload: the same upstream (the worker's `GET /ok`)
//! reached directly, through herald's gateway, and through nginx
//! (`proxy_pass` with upstream keepalive), in one run: at fixed rates, flat
//! out, and with 10,000 connections held open.
//!
//! The load generator is ours: one bare HTTP/1.1 connection per task
//! (hyper), requests sent at their scheduled times. Each is timed from its
//! send (the timer's millisecond grain would otherwise swamp what is
//! measured); sends that fell more than 5 ms behind their schedule are
//! counted, so a stall of the target cannot hide.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, client::conn::http1};
use hyper_util::rt::TokioIo;
use serde::Serialize;

use crate::stats::{Latency, histogram, latency};

#[derive(Serialize, Clone)]
pub struct Target {
    pub name: String,
    /// `host:port`
    pub authority: String,
    pub path: String,
}

#[derive(Serialize, Default)]
pub struct Paced {
    pub rate: u32,
    pub sent: u64,
    pub errors: u64,
    /// Sends more than 5 ms behind schedule (the connection was still busy).
    pub late: u64,
    pub latency: Latency,
    /// (percentile, ms) points, for the chart.
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
}

/// A send this far behind its schedule counts as late.
const LATE: Duration = Duration::from_millis(5);

#[derive(Serialize, Default)]
pub struct TargetReport {
    pub name: String,
    pub paced: Vec<Paced>,
    /// Requests a second with `connections` sending back to back.
    pub max_per_s: f64,
    pub held_connections: usize,
    pub held_errors: u64,
}

type Conn = http1::SendRequest<Empty<Bytes>>;

async fn connect(authority: &str) -> anyhow::Result<Conn> {
    let tcp = tokio::net::TcpStream::connect(authority).await.with_context(|| format!("connecting to {authority}"))?;
    tcp.set_nodelay(true)?;
    let (send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    Ok(send)
}

async fn get(conn: &mut Conn, t: &Target) -> anyhow::Result<()> {
    let req = Request::get(t.path.as_str()).header(hyper::header::HOST, t.authority.as_str()).body(Empty::new())?;
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let ok = resp.status().is_success();
    resp.into_body().collect().await?;
    if !ok {
        bail!("answered an error");
    }
    Ok(())
}

/// `rate` requests a second for `secs`, over `conns` connections.
pub async fn paced(t: &Target, rate: u32, secs: u64, conns: usize) -> anyhow::Result<Paced> {
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs(secs);
    let interval = Duration::from_secs_f64(conns as f64 / f64::from(rate));
    let (errors, late) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks = (0..conns).map(|i| {
        let (t, errors, late) = (t.clone(), errors.clone(), late.clone());
        tokio::spawn(async move {
            let mut conn = connect(&t.authority).await?;
            let mut took = Vec::new();
            let mut next = start + interval.mul_f64(i as f64 / conns as f64);
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                let sent = Instant::now();
                if sent.duration_since(next) > LATE {
                    late.fetch_add(1, Ordering::Relaxed);
                }
                if get(&mut conn, &t).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    conn = connect(&t.authority).await?;
                }
                took.push(sent.elapsed().as_micros() as u64);
                next += interval;
            }
            anyhow::Ok(took)
        })
    });
    let mut all = Vec::new();
    for task in futures::future::join_all(tasks).await {
        all.extend(task??);
    }
    let h = histogram(all.iter().copied());
    Ok(Paced {
        rate,
        sent: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        late: late.load(Ordering::Relaxed),
        latency: latency(&h),
        curve: crate::stats::curve(&h),
    })
}

/// Requests a second with `conns` connections sending back to back for `secs`.
pub async fn flat_out(t: &Target, secs: u64, conns: usize) -> anyhow::Result<f64> {
    let end = Instant::now() + Duration::from_secs(secs);
    let done = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let tasks = (0..conns).map(|_| {
        let (t, done) = (t.clone(), done.clone());
        tokio::spawn(async move {
            let mut conn = connect(&t.authority).await?;
            while Instant::now() < end {
                get(&mut conn, &t).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        })
    });
    for task in futures::future::join_all(tasks).await {
        task??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / began.elapsed().as_secs_f64())
}

/// Opens `conns` connections at once and sends a request on each, every
/// second, for `secs`; answers the failed requests.
pub async fn hold(t: &Target, conns: usize, secs: u64) -> anyhow::Result<u64> {
    let errors = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(tokio::sync::Semaphore::new(0));
    let tasks: Vec<_> = (0..conns)
        .map(|i| {
            let (t, errors, opened) = (t.clone(), errors.clone(), opened.clone());
            tokio::spawn(async move {
                let conn = connect(&t.authority).await;
                opened.add_permits(1);
                let Ok(mut conn) = conn else {
                    errors.fetch_add(secs, Ordering::Relaxed);
                    return;
                };
                // Spread over the second, so the load is steady.
                tokio::time::sleep(Duration::from_millis((i % 1000) as u64)).await;
                for _ in 0..secs {
                    if get(&mut conn, &t).await.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        })
        .collect();
    let _all_open = opened.acquire_many(conns as u32).await?;
    for task in tasks {
        task.await?;
    }
    Ok(errors.load(Ordering::Relaxed))
}

/// nginx in front of the same upstream, from a config of its own in `dir`.
pub struct Nginx {
    _nginx: herald_testkit::nginx::Nginx,
    pub authority: String,
}

pub fn nginx(dir: &Path, upstream: &str) -> anyhow::Result<Option<Nginx>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let authority = format!("127.0.0.1:{port}");
    let http = format!(
        r#"    upstream worker {{ server {upstream}; keepalive 256; }}
    server {{
        listen {authority} backlog=16384;
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://worker;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}"#
    );
    let started = herald_testkit::nginx::Nginx::start(dir, &http, &authority)?;
    Ok(started.map(|nginx| Nginx { _nginx: nginx, authority }))
}
